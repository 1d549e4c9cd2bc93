// StratosDB interoperability program for the Java driver (mongo-java-driver 3.6, Debian libmongodb-java).
//
// A small "people directory" application: it creates indexes, inserts typed and bulk data,
// queries, counts, updates, aggregates and deletes through the driver's ordinary API, and
// checks every answer against its own computation from the data it inserted.
// Prints "ok: <what>" per check; exits 1 with "FAIL: ..." on the first failure.
//
// Reads MONGODB_URI (e.g. mongodb://127.0.0.1:PORT/) and STRATOS_DB (database to use).

import com.mongodb.MongoBulkWriteException;
import com.mongodb.MongoClient;
import com.mongodb.MongoClientOptions;
import com.mongodb.MongoClientURI;
import com.mongodb.MongoCommandException;
import com.mongodb.MongoWriteException;
import com.mongodb.ErrorCategory;
import com.mongodb.bulk.BulkWriteError;
import com.mongodb.client.MongoCollection;
import com.mongodb.client.MongoCursor;
import com.mongodb.client.MongoDatabase;
import com.mongodb.client.model.Accumulators;
import com.mongodb.client.model.Aggregates;
import com.mongodb.client.model.Filters;
import com.mongodb.client.model.FindOneAndUpdateOptions;
import com.mongodb.client.model.IndexOptions;
import com.mongodb.client.model.Indexes;
import com.mongodb.client.model.InsertManyOptions;
import com.mongodb.client.model.Projections;
import com.mongodb.client.model.ReturnDocument;
import com.mongodb.client.model.Sorts;
import com.mongodb.client.model.UpdateOptions;
import com.mongodb.client.model.Updates;
import com.mongodb.client.result.DeleteResult;
import com.mongodb.client.result.UpdateResult;
import com.mongodb.event.CommandFailedEvent;
import com.mongodb.event.CommandListener;
import com.mongodb.event.CommandStartedEvent;
import com.mongodb.event.CommandSucceededEvent;
import org.bson.BsonBinarySubType;
import org.bson.BsonDocument;
import org.bson.BsonValue;
import org.bson.Document;
import org.bson.types.Binary;
import org.bson.types.ObjectId;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Collectors;

public final class Interop {

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String message) {
            super(message);
        }
    }

    /** A command the driver sent: its name and (truncated) JSON, copied while the event's buffer is live. */
    static final class Sent {
        final String name;
        final String json;

        Sent(String name, String json) {
            this.name = name;
            this.json = json;
        }
    }

    /** Every command the driver sends, so we can count getMores and show what was sent on failure. */
    static final List<Sent> STARTED = new CopyOnWriteArrayList<>();

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new CheckFailed(what);
        }
    }

    static void expectEq(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected)) {
            throw new CheckFailed(what + ": expected " + expected + ", got " + actual);
        }
    }

    static void ok(String what) {
        System.out.println("ok: " + what);
        System.out.flush();
    }

    static long startedSince(int mark, String name) {
        return STARTED.subList(mark, STARTED.size()).stream().filter(e -> e.name.equals(name)).count();
    }

    static List<Object> ids(Iterable<Document> docs) {
        List<Object> out = new ArrayList<>();
        for (Document d : docs) {
            out.add(d.get("_id"));
        }
        return out;
    }

    public static void main(String[] args) {
        Logger.getLogger("org.mongodb.driver").setLevel(Level.WARNING);
        String uri = System.getenv("MONGODB_URI");
        String dbName = System.getenv("STRATOS_DB");
        if (uri == null || dbName == null) {
            System.err.println("FAIL: MONGODB_URI and STRATOS_DB must be set");
            System.exit(2);
        }
        long t0 = System.nanoTime();
        MongoClientOptions.Builder options = MongoClientOptions.builder()
                .serverSelectionTimeout(5000)
                .connectTimeout(5000)
                .socketTimeout(10000)
                .addCommandListener(new CommandListener() {
                    @Override
                    public void commandStarted(CommandStartedEvent event) {
                        String json = event.getCommand().toJson();
                        STARTED.add(new Sent(event.getCommandName(), json.length() > 400 ? json.substring(0, 400) + "..." : json));
                    }

                    @Override
                    public void commandSucceeded(CommandSucceededEvent event) {
                    }

                    @Override
                    public void commandFailed(CommandFailedEvent event) {
                    }
                });
        MongoClient client = new MongoClient(new MongoClientURI(uri, options));
        int status = 0;
        String failure = null;
        try {
            run(client, dbName);
            System.out.printf("java driver (%s): all 12 checks passed in %.1f s%n",
                    System.getProperty("interop.driver", "mongo-java-driver"), (System.nanoTime() - t0) / 1e9);
        } catch (CheckFailed e) {
            failure = "FAIL: " + e.getMessage();
        } catch (RuntimeException e) {
            StackTraceElement[] trace = e.getStackTrace();
            for (int i = 0; i < Math.min(4, trace.length); i++) {
                System.err.println("    at " + trace[i]);
            }
            failure = "FAIL: driver error: " + e;
        } finally {
            if (failure != null) {
                // Context first, the FAIL line last (the runner shows the last line as the summary).
                int from = Math.max(0, STARTED.size() - 3);
                System.err.println("last commands sent:");
                for (Sent e : STARTED.subList(from, STARTED.size())) {
                    System.err.println("  " + e.json);
                }
                System.err.println(failure.replace('\n', ' '));
                status = 1;
            }
            client.close();
        }
        System.exit(status);
    }

    @SuppressWarnings("unchecked")
    static void run(MongoClient client, String dbName) {
        MongoDatabase db = client.getDatabase(dbName);
        MongoCollection<Document> people = db.getCollection("people");
        MongoCollection<Document> types = db.getCollection("types");

        db.drop();
        expectEq(((Number) db.runCommand(new Document("ping", 1)).get("ok")).doubleValue(), 1.0, "ping before starting");

        // ------------------------------------------------------------ 1. indexes
        String emailName = people.createIndex(Indexes.ascending("email"), new IndexOptions().unique(true));
        String compoundName = people.createIndex(Indexes.compoundIndex(Indexes.ascending("city"), Indexes.descending("age")));
        expectEq(Arrays.asList(emailName, compoundName), Arrays.asList("email_1", "city_1_age_-1"), "createIndex names");
        Map<String, Document> byName = new TreeMap<>();
        for (Document spec : people.listIndexes()) {
            byName.put(spec.getString("name"), spec);
        }
        expectEq(new ArrayList<>(byName.keySet()), Arrays.asList("_id_", "city_1_age_-1", "email_1"), "index names");
        expectEq(byName.get("_id_").get("key", Document.class).entrySet().toString(), "[_id=1]", "_id_ key");
        expectEq(byName.get("email_1").get("key", Document.class).entrySet().toString(), "[email=1]", "email_1 key");
        expectEq(byName.get("email_1").get("unique"), Boolean.TRUE, "email_1 unique flag");
        expectEq(byName.get("city_1_age_-1").get("key", Document.class).entrySet().toString(), "[city=1, age=-1]",
                "compound key (order matters)");
        check(!Boolean.TRUE.equals(byName.get("city_1_age_-1").get("unique")), "compound index must not be unique");
        ok("indexes: unique email_1 and compound city_1_age_-1 created and listed with their keys");

        // ------------------------------------------------------------ 2. typed + bulk inserts
        ObjectId oid = new ObjectId();
        ObjectId ref = new ObjectId("65a1b2c3d4e5f60718293a4b");
        Date when = new Date(1709251198123L); // 2024-02-29T23:59:58.123Z
        byte[] blobBytes = {0, 1, 2, (byte) 0xff, 'b', 'i', 'n'};
        Binary blob = new Binary(blobBytes);
        byte[] uuidBytes = new byte[16];
        for (int i = 0; i < 16; i++) {
            uuidBytes[i] = (byte) (0x12 + i);
        }
        Binary uuid = new Binary(BsonBinarySubType.UUID_STANDARD, uuidBytes);
        UUID uuidValue = UUID.fromString("12131415-1617-1819-1a1b-1c1d1e1f2021"); // the same 16 bytes, big-endian
        long big = 1234567890123L;
        Document nested = new Document("a", new Document("b", Arrays.asList(1, "two", new Document("c", null)))).append("n", 7);
        List<Object> arr = Arrays.asList(1, "x", 2.5, null, Collections.singletonList(3), new Document("k", "v"));
        Document typed = new Document("_id", oid).append("when", when).append("blob", blob).append("uuid", uuid)
                .append("big", big).append("small", 42).append("ratio", 3.25).append("neg", -0.5)
                .append("text", "naïve café — 東京").append("flag", true).append("nothing", null)
                .append("nested", nested).append("arr", arr).append("ref", ref);
        types.insertOne(typed);
        Document back = types.find(Filters.eq("_id", oid)).first();
        check(back != null, "typed document not found by its ObjectId");
        expectEq(new ArrayList<>(back.keySet()), new ArrayList<>(typed.keySet()), "field order of the typed document");
        check(back.get("_id") instanceof ObjectId && back.get("_id").equals(oid), "ObjectId _id round trip: " + back.get("_id"));
        check(back.get("when") instanceof Date && ((Date) back.get("when")).getTime() == 1709251198123L,
                "date round trip: " + back.get("when"));
        check(back.get("blob") instanceof Binary && ((Binary) back.get("blob")).getType() == 0
                && Arrays.equals(((Binary) back.get("blob")).getData(), blobBytes), "generic binary round trip: " + back.get("blob"));
        // The 3.6 Document codec decodes binary subtype 4 (16 bytes) as a java.util.UUID.
        expectEq(back.get("uuid"), uuidValue, "uuid binary (subtype 4) round trip");
        check(back.get("big") instanceof Long && back.getLong("big") == big, "int64 round trip: " + describe(back.get("big")));
        check(back.get("small") instanceof Integer && back.getInteger("small") == 42, "int32 round trip: " + describe(back.get("small")));
        check(back.get("ratio") instanceof Double && back.getDouble("ratio") == 3.25, "double round trip: " + describe(back.get("ratio")));
        check(back.get("neg") instanceof Double && back.getDouble("neg") == -0.5, "negative double round trip: " + describe(back.get("neg")));
        expectEq(back.getString("text"), "naïve café — 東京", "utf-8 string round trip");
        expectEq(back.get("flag"), Boolean.TRUE, "boolean round trip");
        check(back.containsKey("nothing") && back.get("nothing") == null, "null round trip");
        expectEq(back.get("nested"), nested, "nested document round trip");
        expectEq(back.get("arr"), arr, "array round trip");
        expectEq(back.get("ref"), ref, "second ObjectId round trip");

        String[] cities = {"Paris", "Oslo", "Lima", "Kyoto"};
        List<Document> model = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            model.add(new Document("_id", i).append("name", "user" + i).append("email", "user" + i + "@example.com")
                    .append("city", cities[i % 4]).append("age", 18 + (i * 17) % 50)
                    .append("score", ((i * 37) % 101) / 4.0 + 0.25).append("active", i % 3 != 0)
                    .append("tags", new ArrayList<>(Arrays.asList("t" + (i % 5), "g" + (i % 2))))
                    .append("address", new Document("street", i + " Main St").append("zip", String.format("%05d", 10000 + i)))
                    .append("joined", new Date((1700000000L + i * 86400L) * 1000L)));
        }
        // insertOne/insertMany may add fields to the documents they are given; insert copies.
        people.insertOne(new Document(model.get(0)));
        List<Document> rest = model.subList(1, 60).stream().map(Document::new).collect(Collectors.toList());
        people.insertMany(rest);
        expectEq(people.count(), 60L, "people count after inserts");
        expectEq(people.find(Filters.eq("_id", 17)).first(), model.get(17), "person 17 read back whole (nested doc, array, date, double)");
        ok("inserts: typed document (date, binary x2, ObjectId, int64, int32, doubles, nested, array, null) round-tripped; 1 + 59 people inserted");

        // ------------------------------------------------------------ 3. filtered/sorted/skipped/limited find
        List<Object> want = model.stream().filter(d -> d.getInteger("age") >= 30)
                .sorted(Comparator.comparing((Document d) -> -d.getInteger("age")).thenComparing(d -> d.getInteger("_id")))
                .skip(3).limit(5).map(d -> d.get("_id")).collect(Collectors.toList());
        List<Object> got = ids(people.find(Filters.gte("age", 30))
                .sort(Sorts.orderBy(Sorts.descending("age"), Sorts.ascending("_id"))).skip(3).limit(5));
        expectEq(got, want, "find age>=30 sort age desc,_id asc skip 3 limit 5");
        ok("find: age >= 30, sort {age:-1,_id:1}, skip 3, limit 5 -> " + got);

        // ------------------------------------------------------------ 4. multi-batch cursor
        int mark = STARTED.size();
        List<Object> seen = new ArrayList<>();
        try (MongoCursor<Document> cursor = people.find().batchSize(7).iterator()) {
            while (cursor.hasNext()) {
                seen.add(cursor.next().get("_id"));
            }
        }
        long getMores = startedSince(mark, "getMore");
        expectEq(seen.size(), 60, "documents through a batchSize 7 cursor");
        expectEq(new HashSet<>(seen).size(), 60, "distinct documents through the cursor (none twice)");
        Set<Object> all = new TreeSet<>();
        for (int i = 0; i < 60; i++) {
            all.add(i);
        }
        expectEq(new TreeSet<>(seen), all, "every document arrived");
        check(getMores >= 8, "expected at least 8 getMore commands for 60 docs in batches of 7, saw " + getMores);
        ok("cursor: 60 documents in batches of 7 (" + getMores + " getMores), none missing or repeated");

        // ------------------------------------------------------------ 5. counts and distinct
        long paris = model.stream().filter(d -> d.getString("city").equals("Paris")).count();
        long old = model.stream().filter(d -> d.getInteger("age") >= 40).count();
        expectEq(people.count(), 60L, "count (count command), no filter");
        expectEq(people.count(Filters.eq("city", "Paris")), paris, "count with a city filter");
        expectEq(people.count(Filters.gte("age", 40)), old, "count with an age filter");
        expectEq(people.count(new Document(), new com.mongodb.client.model.CountOptions().skip(10).limit(20)), 20L,
                "count with skip and limit");
        // mongo-java-driver 3.6 predates countDocuments (3.8); it is this aggregation, so run it.
        Document aggCount = people.aggregate(Arrays.asList(Aggregates.match(Filters.eq("city", "Paris")),
                Aggregates.group(1, Accumulators.sum("n", 1)))).first();
        expectEq(aggCount == null ? null : ((Number) aggCount.get("n")).longValue(), paris, "countDocuments-style $match/$group count");
        Document legacy = db.runCommand(new Document("count", "people").append("query", new Document("age", new Document("$gte", 40))));
        expectEq(((Number) legacy.get("n")).longValue(), old, "count command through runCommand");
        List<String> distinctCities = people.distinct("city", String.class).into(new ArrayList<>());
        Collections.sort(distinctCities);
        List<String> sortedCities = new ArrayList<>(Arrays.asList(cities));
        Collections.sort(sortedCities);
        expectEq(distinctCities, sortedCities, "distinct city");
        List<String> young = people.distinct("city", Filters.lt("age", 25), String.class).into(new ArrayList<>());
        Collections.sort(young);
        List<String> youngWant = model.stream().filter(d -> d.getInteger("age") < 25).map(d -> d.getString("city"))
                .distinct().sorted().collect(Collectors.toList());
        expectEq(young, youngWant, "distinct city with a filter");
        List<String> tags = people.distinct("tags", String.class).into(new ArrayList<>());
        Collections.sort(tags);
        List<String> tagsWant = model.stream().flatMap(d -> ((List<?>) d.get("tags")).stream()).map(Object::toString)
                .distinct().sorted().collect(Collectors.toList());
        expectEq(tags, tagsWant, "distinct over array elements");
        ok("counts: count=60, Paris=" + paris + ", age>=40=" + old + "; distinct cities and tags");

        // ------------------------------------------------------------ 6. updates
        UpdateResult r = people.updateOne(Filters.eq("_id", 0),
                Updates.combine(Updates.set("status", "vip"), Updates.inc("age", 1), Updates.push("tags", "new")));
        expectEq(Arrays.asList(r.getMatchedCount(), r.getModifiedCount()), Arrays.asList(1L, 1L), "updateOne matched/modified");
        Document m0 = model.get(0);
        m0.put("age", m0.getInteger("age") + 1);
        m0.put("status", "vip");
        ((List<Object>) m0.get("tags")).add("new");
        Document u0 = people.find(Filters.eq("_id", 0)).first();
        expectEq(Arrays.asList(u0.get("status"), u0.get("age"), u0.get("tags")),
                Arrays.asList(m0.get("status"), m0.get("age"), m0.get("tags")), "$set/$inc/$push results");
        List<Integer> preGold = model.stream().filter(d -> d.getString("city").equals("Paris") && d.getInteger("_id") % 8 == 0)
                .map(d -> d.getInteger("_id")).collect(Collectors.toList());
        r = people.updateMany(Filters.in("_id", preGold), Updates.set("tier", "gold"));
        expectEq(Arrays.asList(r.getMatchedCount(), r.getModifiedCount()),
                Arrays.asList((long) preGold.size(), (long) preGold.size()), "pre-setting gold tier");
        r = people.updateMany(Filters.eq("city", "Paris"), Updates.set("tier", "gold"));
        expectEq(Arrays.asList(r.getMatchedCount(), r.getModifiedCount()), Arrays.asList(paris, paris - preGold.size()),
                "updateMany matched/modified when some already hold the value");
        r = people.updateOne(Filters.eq("email", "new@example.com"), Updates.set("name", "Newcomer"), new UpdateOptions().upsert(true));
        expectEq(Arrays.asList(r.getMatchedCount(), r.getModifiedCount()), Arrays.asList(0L, 0L), "upsert matched/modified");
        BsonValue upId = r.getUpsertedId();
        check(upId != null && upId.isObjectId(), "upserted id should be an ObjectId, got " + upId);
        ObjectId upserted = upId.asObjectId().getValue();
        Document up = people.find(Filters.eq("_id", upserted)).first();
        expectEq(up, new Document("_id", upserted).append("email", "new@example.com").append("name", "Newcomer"), "upserted document");
        ok("updates: $set/$inc/$push; updateMany matched " + paris + " modified " + (paris - preGold.size()) + "; upsert id " + upserted);

        // ------------------------------------------------------------ 7. findAndModify returning the new document
        FindOneAndUpdateOptions after = new FindOneAndUpdateOptions().returnDocument(ReturnDocument.AFTER);
        Document doc = people.findOneAndUpdate(Filters.eq("_id", 5), Updates.combine(Updates.inc("visits", 1), Updates.set("seen", true)), after);
        check(doc != null, "findOneAndUpdate returned null");
        expectEq(Arrays.asList(doc.get("_id"), doc.get("visits"), doc.get("seen")), Arrays.asList(5, 1, true), "findOneAndUpdate AFTER");
        doc = people.findOneAndUpdate(Filters.eq("_id", 5), Updates.inc("visits", 1), after);
        expectEq(doc == null ? null : doc.get("visits"), 2, "second findOneAndUpdate AFTER");
        doc = people.findOneAndUpdate(Filters.eq("_id", 5), Updates.inc("visits", 1),
                new FindOneAndUpdateOptions().returnDocument(ReturnDocument.BEFORE));
        expectEq(doc == null ? null : doc.get("visits"), 2, "findOneAndUpdate BEFORE returns the old document");
        doc = people.findOneAndUpdate(Filters.eq("_id", "missing"), Updates.set("x", 1), after);
        check(doc == null, "findOneAndUpdate on no match should return null, got " + doc);
        ok("findAndModify: returns the new document (visits 1 then 2), the old one on BEFORE, null on no match");

        // ------------------------------------------------------------ 8. duplicate keys
        try {
            people.insertOne(new Document("_id", 1000).append("email", "user1@example.com"));
            throw new CheckFailed("duplicate email insert did not throw");
        } catch (MongoWriteException e) {
            expectEq(e.getCode(), 11000, "MongoWriteException.getCode() for a duplicate key");
            expectEq(e.getError().getCode(), 11000, "WriteError code");
            expectEq(e.getError().getCategory(), ErrorCategory.DUPLICATE_KEY, "WriteError category");
            check(e.getError().getMessage().startsWith("E11000 duplicate key error"), "error message: " + e.getError().getMessage());
        }
        List<Document> batch = Arrays.asList(
                new Document("_id", 100).append("email", "u100@example.com"),
                new Document("_id", 101).append("email", "user2@example.com"), // duplicate email
                new Document("_id", 102).append("email", "u102@example.com"),
                new Document("_id", 3).append("email", "u3dup@example.com"),   // duplicate _id
                new Document("_id", 103).append("email", "u103@example.com"));
        try {
            people.insertMany(batch, new InsertManyOptions().ordered(false));
            throw new CheckFailed("unordered insertMany with duplicates did not throw");
        } catch (MongoBulkWriteException e) {
            List<String> errs = new ArrayList<>();
            for (BulkWriteError w : e.getWriteErrors()) {
                errs.add(w.getIndex() + ":" + w.getCode());
            }
            expectEq(errs, Arrays.asList("1:11000", "3:11000"), "unordered bulk write errors (index:code)");
            expectEq(e.getWriteResult().getInsertedCount(), 3, "unordered bulk inserted count");
        }
        List<Object> stored = ids(people.find(Filters.in("_id", 100, 101, 102, 103)).sort(Sorts.ascending("_id")));
        expectEq(stored, Arrays.asList(100, 102, 103), "documents the unordered bulk insert stored");
        expectEq(people.find(Filters.eq("_id", 3)).first().getString("email"), "user3@example.com", "the existing _id 3 is untouched");
        ok("duplicate keys: insertOne throws MongoWriteException code 11000; unordered insertMany inserted 3 of 5 with errors at indexes 1 and 3");

        // ------------------------------------------------------------ 9. aggregation and projection
        Map<String, List<Double>> groups = new HashMap<>();
        for (Document d : model) {
            if (d.getBoolean("active")) {
                groups.computeIfAbsent(d.getString("city"), k -> new ArrayList<>()).add(d.getDouble("score"));
            }
        }
        List<Object[]> expected = new ArrayList<>();
        for (Map.Entry<String, List<Double>> g : groups.entrySet()) {
            double avg = g.getValue().stream().mapToDouble(Double::doubleValue).sum() / g.getValue().size();
            expected.add(new Object[]{g.getKey(), avg, g.getValue().size()});
        }
        expected.sort(Comparator.comparing((Object[] e) -> -(Double) e[1]).thenComparing(e -> (String) e[0]));
        List<Document> agg = people.aggregate(Arrays.asList(
                Aggregates.match(Filters.eq("active", true)),
                Aggregates.group("$city", Accumulators.avg("avgScore", "$score"), Accumulators.sum("n", 1)),
                Aggregates.sort(Sorts.orderBy(Sorts.descending("avgScore"), Sorts.ascending("_id"))))).into(new ArrayList<>());
        expectEq(agg.stream().map(d -> d.get("_id")).collect(Collectors.toList()),
                expected.stream().map(e -> e[0]).collect(Collectors.toList()), "aggregation group order");
        StringBuilder summary = new StringBuilder();
        for (int i = 0; i < agg.size(); i++) {
            Object[] e = expected.get(i);
            double avg = ((Number) agg.get(i).get("avgScore")).doubleValue();
            check(Math.abs(avg - (Double) e[1]) < 1e-9, "avgScore for " + e[0] + ": expected " + e[1] + ", got " + avg);
            expectEq(agg.get(i).get("n"), e[2], "count for " + e[0]);
            summary.append(i == 0 ? "" : ", ").append(e[0]).append(' ').append(String.format("%.3f", avg));
        }
        Document proj = people.find(Filters.eq("_id", 7))
                .projection(Projections.fields(Projections.include("name", "address.zip"), Projections.excludeId())).first();
        expectEq(proj, new Document("name", "user7").append("address", new Document("zip", "10007")), "find with inclusion projection");
        proj = people.find(Filters.eq("_id", 7)).projection(Projections.exclude("tags", "address", "joined", "score")).first();
        expectEq(new TreeSet<>(proj.keySet()), new TreeSet<>(Arrays.asList("_id", "active", "age", "city", "email", "name")),
                "find with exclusion projection");
        ok("aggregate: $match/$group/$avg/$sort by city = " + summary + "; projections");

        // ------------------------------------------------------------ 10. deleteMany
        long lima = model.stream().filter(d -> d.getString("city").equals("Lima")).count();
        DeleteResult dr = people.deleteMany(Filters.eq("city", "Lima"));
        expectEq(dr.getDeletedCount(), lima, "deleteMany deleted count");
        expectEq(people.count(Filters.eq("city", "Lima")), 0L, "no Lima documents left");
        expectEq(people.count(), 60 - lima + 1 + 3, "documents left after deleteMany");
        expectEq(people.deleteOne(Filters.eq("_id", 100)).getDeletedCount(), 1L, "deleteOne deleted count");
        ok("delete: deleteMany removed " + lima + " Lima documents; deleteOne removed 1");

        // ------------------------------------------------------------ 11. unknown command
        try {
            db.runCommand(new Document("noSuchCommand", 1));
            throw new CheckFailed("unknown command did not throw");
        } catch (MongoCommandException e) {
            expectEq(e.getErrorCode(), 59, "unknown command error code (" + e.getErrorMessage() + ")");
            expectEq(e.getCode(), 59, "MongoCommandException.getCode()");
            BsonDocument response = e.getResponse();
            expectEq(response.containsKey("codeName") ? response.getString("codeName").getValue() : null, "CommandNotFound",
                    "unknown command codeName");
        }
        expectEq(((Number) db.runCommand(new Document("ping", 1)).get("ok")).doubleValue(), 1.0, "ping after the unknown command");
        expectEq(people.find(Filters.eq("_id", 1)).first().getString("name"), "user1", "a query after the unknown command");
        ok("unknown command: MongoCommandException code 59 (CommandNotFound); connection still works");

        // ------------------------------------------------------------ 12. listCollections and dropDatabase
        List<String> names = db.listCollectionNames().into(new ArrayList<>());
        Collections.sort(names);
        expectEq(names, Arrays.asList("people", "types"), "listCollectionNames");
        List<String> listed = new ArrayList<>();
        for (Document c : db.listCollections()) {
            listed.add(c.getString("name"));
        }
        Collections.sort(listed);
        expectEq(listed, Arrays.asList("people", "types"), "listCollections names");
        check(client.listDatabaseNames().into(new ArrayList<>()).contains(dbName), dbName + " should be listed before the drop");
        db.drop();
        List<String> dbs = client.listDatabaseNames().into(new ArrayList<>());
        check(!dbs.contains(dbName), dbName + " still listed after dropDatabase: " + dbs);
        expectEq(db.listCollectionNames().into(new ArrayList<>()), Collections.emptyList(), "collections after dropDatabase");
        ok("listCollections: people, types; dropDatabase removed the database from listDatabases");
    }

    static String describe(Object v) {
        return v == null ? "null" : v + " (" + v.getClass().getSimpleName() + ")";
    }
}
