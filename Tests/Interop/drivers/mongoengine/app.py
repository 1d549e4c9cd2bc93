"""A small user-directory app on mongoengine (ODM over pymongo), run against StratosDB.

Every check goes through mongoengine's Document / QuerySet API where mongoengine has one. Where it
has none (unordered bulk insert, running an arbitrary command, listCollections, dropDatabase,
reading index names and options) the program uses the pymongo object mongoengine hands out
(`User._get_collection()`, `get_db()`, `get_connection()`), and a comment says so.

Prints one "ok: ..." line per check; the first failed check raises and exits non-zero.
"""
import datetime
import decimal
import os
import sys
import time

import pymongo
from bson import Decimal128, ObjectId
from bson.int64 import Int64
from pymongo import monitoring

import mongoengine
from mongoengine import (
    BinaryField, DateTimeField, Decimal128Field, DictField, Document, EmbeddedDocument,
    EmbeddedDocumentField, FloatField, IntField, ListField, LongField, NotUniqueError,
    ObjectIdField, StringField, connect, disconnect,
)
from mongoengine.connection import get_connection, get_db
from mongoengine.errors import BulkWriteError as MEBulkWriteError

URI = os.environ["MONGODB_URI"]
DB_NAME = os.environ["STRATOS_DB"]
STARTED = time.monotonic()


class CheckFailed(Exception):
    pass


def check(condition, what, detail=""):
    if not condition:
        raise CheckFailed(f"{what}{': ' + str(detail) if detail != '' else ''}")


def ok(what):
    print(f"ok: {what}", flush=True)


class Recorder(monitoring.CommandListener):
    def __init__(self):
        self.commands = []

    def started(self, event):
        self.commands.append((event.command_name, event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def names(self):
        return [name for name, _ in self.commands]


RECORDER = Recorder()


class Address(EmbeddedDocument):
    street = StringField()
    city = StringField(required=True)
    geo = DictField()


class User(Document):
    email = StringField(required=True, unique=True)
    name = StringField(required=True)
    age = IntField(min_value=0)
    city = StringField()
    score = FloatField()
    big = LongField()
    balance = Decimal128Field()
    tags = ListField(StringField())
    address = EmbeddedDocumentField(Address)
    prefs = DictField()
    joined = DateTimeField()
    avatar = BinaryField()
    referrer = ObjectIdField()
    nickname = StringField(null=True)  # null=True: None is stored as BSON null, not left out
    status = StringField(default="new")
    visits = IntField(default=0)
    meta = {
        "collection": "users",
        "indexes": [
            {"fields": ["city", "-age"], "name": "city_1_age_-1"},  # compound: city asc, age desc
            "tags",
        ],
    }


class AuditEvent(Document):
    """A second collection, so listCollections has more than one name to report."""
    kind = StringField()
    at = DateTimeField()
    meta = {"collection": "audit_events"}


CITIES = ["Oslo", "Lima", "Pune", "Kyiv"]
BASE_DATE = datetime.datetime(2024, 1, 1, 8, 30, 0)


def make_user(i):
    return User(
        email=f"user{i:02d}@example.test",
        name=f"User {i}",
        age=18 + (i * 13) % 47,  # 47 distinct ages, then repeats, so the sort needs its _id tie-break
        city=CITIES[i % 4],
        score=i * 1.5 + 0.25,
        big=2**40 + i,
        balance=decimal.Decimal("1234.50") + i,
        tags=[f"t{i % 3}"] + (["vip"] if i % 5 == 0 else []),
        address=Address(street=f"{i} Main St", city=CITIES[i % 4], geo={"lat": 10.5 + i, "lng": -i * 0.5}),
        prefs={"theme": "dark" if i % 2 else "light", "limits": {"daily": i, "weekly": [i, i * 7]}},
        joined=BASE_DATE + datetime.timedelta(days=i, milliseconds=i * 7),
        avatar=bytes([i, 0, 255, i ^ 0x5A]),
        referrer=ObjectId(),
        nickname=None if i % 2 == 0 else f"nick{i}",
        status="active" if i % 3 == 0 else "new",
    )


def main():
    connect(db=DB_NAME, host=URI, serverSelectionTimeoutMS=5000, event_listeners=[RECORDER])
    # mongoengine has no drop-database call: use the pymongo client it manages.
    get_connection().drop_database(DB_NAME)

    # ---- 1. indexes -------------------------------------------------------------------------
    User.ensure_indexes()  # mongoengine creates email_1 (unique), city_1_age_-1 and tags_1
    check(User.compare_indexes() == {"missing": [], "extra": []}, "compare_indexes", User.compare_indexes())
    # mongoengine's list_indexes() reports only key lists; the names and the unique flag come from
    # pymongo's index_information() on mongoengine's collection (listIndexes).
    info = User._get_collection().index_information()
    check(set(info) == {"_id_", "email_1", "city_1_age_-1", "tags_1"}, "index names", sorted(info))
    check(info["email_1"]["key"] == [("email", 1)] and info["email_1"].get("unique") is True,
          "email_1 is a unique index on email", info["email_1"])
    check(info["city_1_age_-1"]["key"] == [("city", 1), ("age", -1)], "compound index keys", info["city_1_age_-1"])
    check(not info["city_1_age_-1"].get("unique"), "compound index is not unique", info["city_1_age_-1"])
    check(info["tags_1"]["key"] == [("tags", 1)], "tags index", info["tags_1"])
    check([("city", 1), ("age", -1)] in User.list_indexes(), "list_indexes has the compound key", User.list_indexes())
    ok("indexes: ensure_indexes made email_1 (unique), city_1_age_-1 and tags_1; names and keys listed back")

    # ---- 2. inserts and BSON types ----------------------------------------------------------
    users = [make_user(i) for i in range(60)]
    users[0].save()  # single insert (insert_one)
    check(isinstance(users[0].id, ObjectId), "save() set an ObjectId", users[0].id)
    loaded = User.objects.insert(users[1:])  # bulk insert (insert_many), returns reloaded documents
    check(len(loaded) == 59 and all(isinstance(u.id, ObjectId) for u in loaded), "bulk insert returned 59 documents")
    for u, l in zip(users[1:], loaded):
        u.id = l.id
    check(len({u.id for u in users}) == 60, "60 distinct ids")
    check(User.objects.count() == 60, "60 users stored", User.objects.count())

    sample = users[7]
    back = User.objects.get(email=sample.email)
    check(back.id == sample.id and back.name == "User 7" and back.age == sample.age, "read back fields")
    check(back.joined == sample.joined, "datetime round trip (ms precision)", (back.joined, sample.joined))
    check(back.avatar == bytes([7, 0, 255, 7 ^ 0x5A]), "binary round trip", back.avatar)
    check(back.big == 2**40 + 7, "int64 round trip", back.big)
    check(back.score == 7 * 1.5 + 0.25, "double round trip", back.score)
    check(back.balance == decimal.Decimal("1241.50"), "decimal128 round trip", back.balance)
    check(back.referrer == sample.referrer, "ObjectId field round trip")
    check(back.address.city == CITIES[7 % 4] and back.address.geo == {"lat": 17.5, "lng": -3.5},
          "embedded document round trip", back.address.to_mongo())
    check(back.prefs == {"theme": "dark", "limits": {"daily": 7, "weekly": [7, 49]}}, "nested dict", back.prefs)
    check(back.tags == ["t1"], "array round trip", back.tags)
    check(back.nickname == "nick7", "string field", back.nickname)
    check(User.objects.get(email="user08@example.test").nickname is None, "null field read back as None")
    # The raw BSON types, through mongoengine's as_pymongo() (the stored document as pymongo decodes it).
    raw = User.objects(email="user08@example.test").as_pymongo().first()
    expected_types = {
        "_id": ObjectId, "email": str, "age": int, "big": Int64, "score": float, "balance": Decimal128,
        "tags": list, "address": dict, "prefs": dict, "joined": datetime.datetime, "avatar": bytes,
        "referrer": ObjectId, "nickname": type(None), "visits": int,
    }
    for field, kind in expected_types.items():
        check(field in raw and type(raw[field]) is kind, f"BSON type of {field}",
              f"{type(raw.get(field)).__name__} {raw.get(field)!r}")
    check(type(raw["age"]) is int and not isinstance(raw["age"], Int64), "age is int32")
    check(raw["nickname"] is None and "nickname" in raw, "null stored as BSON null")
    check(raw["prefs"]["limits"]["weekly"] == [8, 56], "nested array in nested document", raw["prefs"])
    ok("inserts: save() + QuerySet.insert of 59; date, binary, ObjectId, int64, int32, double, decimal128, "
       "embedded doc, nested dict/array and null round-tripped")

    # ---- 3. filtered, sorted, skipped, limited find -----------------------------------------
    got = list(User.objects(age__gte=30).order_by("-age", "id").skip(3).limit(5))
    expected = sorted((u for u in users if u.age >= 30), key=lambda u: (-u.age, u.id.binary))[3:8]
    check([u.email for u in got] == [u.email for u in expected], "age>=30 sort -age,_id skip 3 limit 5",
          ([(u.email, u.age) for u in got], [(u.email, u.age) for u in expected]))
    # the same query through the compound index's prefix
    got = [u.email for u in User.objects(city="Lima", age__lt=50).order_by("-age", "id")]
    expected = [u.email for u in sorted((u for u in users if u.city == "Lima" and u.age < 50),
                                        key=lambda u: (-u.age, u.id.binary))]
    check(got == expected, "city=Lima age<50 sort -age", (got, expected))
    ok("find: objects(age__gte=30).order_by('-age','id').skip(3).limit(5) and a city/age query match "
       "the program's own answer")

    # ---- 4. multi-batch cursor --------------------------------------------------------------
    RECORDER.commands.clear()
    seen = [u.id for u in User.objects.order_by("email").batch_size(7)]
    getmores = [c for name, c in RECORDER.commands if name == "getMore"]
    check(len(seen) == 60 and len(set(seen)) == 60, "batch_size(7): every document once", len(seen))
    check(set(seen) == {u.id for u in users}, "batch_size(7): the right documents")
    check(len(getmores) >= 8, "batch_size(7) used getMore batches", len(getmores))
    check(all(c.get("batchSize") == 7 for c in getmores), "getMore carried batchSize 7", getmores[:1])
    ok(f"cursor: batch_size(7) over 60 users took {len(getmores)} getMores, each document once")

    # ---- 5. counts and distinct -------------------------------------------------------------
    RECORDER.commands.clear()
    total = User.objects.count()  # no filter: mongoengine uses estimated_document_count -> `count` command
    check(total == 60, "count() without a filter", total)
    check("count" in RECORDER.names(), "the unfiltered count sent the legacy count command", RECORDER.names())
    RECORDER.commands.clear()
    n_old = User.objects(age__gte=30).count()  # count_documents -> aggregate $match/$group
    check(n_old == sum(1 for u in users if u.age >= 30), "count(age>=30)", n_old)
    check("aggregate" in RECORDER.names(), "count with a filter used count_documents (aggregate)", RECORDER.names())
    n_page = User.objects(age__gte=30).skip(10).limit(7).count(with_limit_and_skip=True)
    check(n_page == min(7, max(0, n_old - 10)), "count(with_limit_and_skip)", n_page)
    check(User.objects(tags="vip").count() == 12, "count on an array element", User.objects(tags="vip").count())
    cities = User.objects.distinct("city")
    check(sorted(cities) == sorted(CITIES), "distinct city", cities)
    check(sorted(User.objects.distinct("tags")) == ["t0", "t1", "t2", "vip"], "distinct unwinds arrays",
          User.objects.distinct("tags"))
    nested = User.objects(age__gte=60).distinct("address.city")
    check(sorted(nested) == sorted({u.city for u in users if u.age >= 60}), "distinct on a nested path", nested)
    ok(f"counts: count() {total} (count command), filtered {n_old} (countDocuments), with skip/limit {n_page}; "
       "distinct on a field, an array and a nested path")

    # ---- 6. updates -------------------------------------------------------------------------
    oslo = [u for u in users if u.city == "Oslo"]
    already = [u for u in oslo if u.status == "active"]
    check(0 < len(already) < len(oslo), "test data: some Oslo users already active")
    result = User.objects(city="Oslo").update(set__status="active", full_result=True)
    check(result.matched_count == len(oslo), "update matched", result.raw_result)
    check(result.modified_count == len(oslo) - len(already), "update modified < matched", result.raw_result)
    n = User.objects(city="Pune").update(inc__visits=2)  # mongoengine returns the matched count
    check(n == 15, "update inc returned n", n)
    check(User.objects(city="Pune", visits=2).count() == 15, "$inc applied")
    check(User.objects(email="user03@example.test").update_one(push__tags="beta", inc__visits=5) == 1,
          "update_one push")
    u3 = User.objects.get(email="user03@example.test")
    check(u3.tags == ["t0", "beta"] and u3.visits == 5, "$push and $inc applied", (u3.tags, u3.visits))
    # Document.update (instance-level) and reload
    u3.update(set__nickname="three", push__tags="gamma")
    u3.reload()
    check(u3.nickname == "three" and u3.tags == ["t0", "beta", "gamma"], "Document.update + reload", u3.tags)
    # upsert of a missing user, via update_one(upsert=True)
    up = User.objects(email="new@example.test").update_one(
        upsert=True, set__name="Newcomer", set__age=41, set__city="Lima", full_result=True)
    check(up.matched_count == 0 and isinstance(up.upserted_id, ObjectId), "upsert inserted", up.raw_result)
    newcomer = User.objects.get(email="new@example.test")
    check(newcomer.id == up.upserted_id and newcomer.age == 41 and newcomer.name == "Newcomer",
          "upserted document has the upserted id and the query's email", newcomer.to_mongo())
    # upsert_one on an existing user updates it in place and returns the document
    again = User.objects(email="new@example.test").upsert_one(set__age=42)
    check(again.id == up.upserted_id and again.age == 42, "upsert_one on an existing document", again.to_mongo())
    check(User.objects(email="new@example.test").count() == 1, "upsert_one did not duplicate")
    ok(f"updates: $set matched {result.matched_count} modified {result.modified_count}; $inc; $push; "
       "Document.update; upsert id; upsert_one")

    # ---- 7. findAndModify returning the new document ----------------------------------------
    before = User.objects.get(email="user10@example.test")
    after = User.objects(email="user10@example.test").modify(new=True, inc__age=1, push__tags="promoted")
    check(after is not None and after.id == before.id, "modify(new=True) found the user")
    check(after.age == before.age + 1 and after.tags[-1] == "promoted", "modify returned the NEW document",
          (before.age, after.age, after.tags))
    old = User.objects(email="user10@example.test").modify(new=False, set__status="vip")
    check(old.status == before.status, "modify(new=False) returned the old document", old.status)
    check(User.objects.get(email="user10@example.test").status == "vip", "modify(new=False) still wrote")
    # Document.modify: a conditional findAndModify that refreshes the instance
    check(before.modify(query={"age": before.age + 1}, inc__visits=3) is True, "Document.modify matched")
    check(before.visits == after.visits + 3 and before.age == after.age, "Document.modify refreshed the instance",
          (after.visits, before.visits, before.age))
    check(before.modify(query={"age": 999}, inc__visits=3) is False, "Document.modify with no match")
    gone = User.objects(email="no-one@example.test").modify(new=True, set__age=1)
    check(gone is None, "modify on no match returns None", gone)
    ok("findAndModify: modify(new=True) returned the new document, new=False the old one; Document.modify")

    # ---- 8. duplicate keys ------------------------------------------------------------------
    try:
        make_user(5).save()
        raise CheckFailed("saving a duplicate email did not raise")
    except NotUniqueError as err:
        cause = err.__context__  # mongoengine raises NotUniqueError while handling pymongo's error
        check(isinstance(cause, pymongo.errors.DuplicateKeyError), "NotUniqueError wraps DuplicateKeyError",
              repr(cause))
        check(cause.code == 11000, "duplicate key code", cause.code)
        check(cause.details.get("keyValue") == {"email": "user05@example.test"}, "keyValue", cause.details)
        check("email_1" in str(err), "message names the index", str(err))
    try:
        User.objects(email="user06@example.test").update_one(set__email="user07@example.test")
        raise CheckFailed("an update to a duplicate email did not raise")
    except NotUniqueError as err:
        check("11000" in str(err) or "duplicate key" in str(err), "update duplicate message", str(err))
    # mongoengine's bulk insert is ordered: it stops at the duplicate and raises its BulkWriteError.
    batch = [make_user(100), make_user(6), make_user(101)]
    try:
        User.objects.insert(batch)
        raise CheckFailed("an ordered bulk insert with a duplicate did not raise")
    except MEBulkWriteError as err:
        check("11000" in str(err) and "'nInserted': 1" in str(err), "ordered bulk insert stopped at the duplicate",
              str(err)[:400])
    check(User.objects(email="user100@example.test").count() == 1, "ordered insert kept the first document")
    check(User.objects(email="user101@example.test").count() == 0, "ordered insert stopped before the third")
    # mongoengine has no unordered insert: send the documents it serialises through pymongo.
    batch = [make_user(i) for i in (102, 7, 103, 8, 104)]
    try:
        User._get_collection().insert_many([u.to_mongo() for u in batch], ordered=False)
        raise CheckFailed("an unordered bulk insert with duplicates did not raise")
    except pymongo.errors.BulkWriteError as err:
        details = err.details
        check(details["nInserted"] == 3, "unordered insert carried on past the duplicates", details)
        codes = [(e["index"], e["code"]) for e in details["writeErrors"]]
        check(codes == [(1, 11000), (3, 11000)], "one write error per duplicate", codes)
    check(User.objects(email__in=["user102@example.test", "user103@example.test", "user104@example.test"]).count()
          == 3, "all three new users stored")
    ok("duplicate key: NotUniqueError over DuplicateKeyError 11000 (save and update); ordered bulk stopped after 1; "
       "unordered bulk inserted 3 of 5")

    # ---- 9. aggregation and projection ------------------------------------------------------
    everyone = list(User.objects.as_pymongo())  # the program's own view of the data after the updates
    pipeline = [
        {"$group": {"_id": "$city", "avgAge": {"$avg": "$age"}, "n": {"$sum": 1}, "maxScore": {"$max": "$score"}}},
        {"$sort": {"avgAge": -1, "_id": 1}},
    ]
    got = list(User.objects(age__gte=25).aggregate(pipeline))  # mongoengine prepends the queryset's $match
    groups = {}
    for d in everyone:
        if d.get("age", 0) >= 25:
            groups.setdefault(d["city"], []).append(d)
    expected = sorted(((city, sum(x["age"] for x in docs) / len(docs), len(docs),
                        max((x["score"] for x in docs if "score" in x), default=None))
                       for city, docs in groups.items()), key=lambda g: (-g[1], g[0]))
    check([g["_id"] for g in got] == [e[0] for e in expected], "group order", (got, expected))
    for g, e in zip(got, expected):
        check(abs(g["avgAge"] - e[1]) < 1e-9 and g["n"] == e[2] and g["maxScore"] == e[3], f"group {e[0]}", (g, e))
    # projection: only() loads two fields; as_pymongo shows what the server sent back
    slim = User.objects(city="Kyiv").only("email", "age").order_by("email").as_pymongo()
    for d in slim:
        check(set(d) == {"_id", "email", "age"}, "only('email','age') projection", sorted(d))
    first = User.objects(city="Kyiv").only("email", "age").order_by("email").first()
    check(first.email and first.age is not None and first.name is None and first.tags == [], "only() on documents")
    no_blobs = User.objects(city="Kyiv").exclude("avatar", "prefs", "address").as_pymongo().first()
    check("avatar" not in no_blobs and "prefs" not in no_blobs and "email" in no_blobs, "exclude() projection",
          sorted(no_blobs))
    pairs = User.objects(city="Kyiv").order_by("email").values_list("email", "age")
    check(list(pairs) == sorted((d["email"], d["age"]) for d in everyone if d.get("city") == "Kyiv"),
          "values_list", list(pairs)[:3])
    ok(f"aggregate: $group/$avg/$sort over {len(got)} cities matches own computation; only/exclude/values_list "
       "projections")

    # ---- 10. delete -------------------------------------------------------------------------
    young = sum(1 for d in everyone if d.get("age", 0) < 25)
    check(young > 0, "test data: some users are under 25")
    deleted = User.objects(age__lt=25).delete()
    check(deleted == young, "delete() count", (deleted, young))
    check(User.objects(age__lt=25).count() == 0, "no young users left")
    victim = User.objects.get(email="new@example.test")
    victim.delete()
    check(User.objects(email="new@example.test").first() is None, "Document.delete()")
    check(User.objects.count() == len(everyone) - young - 1, "remaining count", User.objects.count())
    ok(f"delete: QuerySet.delete() removed {deleted} (as computed); Document.delete()")

    # ---- 11. unknown command ----------------------------------------------------------------
    # mongoengine has no API for arbitrary commands: use the pymongo Database it manages.
    try:
        get_db().command({"noSuchCommand": 1})
        raise CheckFailed("an unknown command succeeded")
    except pymongo.errors.OperationFailure as err:
        check(err.code == 59, "unknown command code", (err.code, err.details))
        check(err.details.get("codeName") == "CommandNotFound", "codeName", err.details)
    check(get_db().command("ping").get("ok") == 1.0, "ping after the error")
    check(User.objects(city="Kyiv").count() > 0, "mongoengine queries still work after the error")
    ok("unknown command: code 59 CommandNotFound; ping and queries work afterwards")

    # ---- 12. listCollections and dropDatabase -----------------------------------------------
    AuditEvent(kind="login", at=datetime.datetime(2024, 5, 1, 12, 0, 0)).save()
    # mongoengine has no listCollections or dropDatabase API: use its pymongo Database/MongoClient.
    names = set(get_db().list_collection_names())
    check(names == {"users", "audit_events"}, "listCollections", names)
    AuditEvent.drop_collection()  # mongoengine API
    check(set(get_db().list_collection_names()) == {"users"}, "drop_collection removed audit_events",
          get_db().list_collection_names())
    check(DB_NAME in get_connection().list_database_names(), "database listed before the drop")
    get_connection().drop_database(DB_NAME)
    check(DB_NAME not in get_connection().list_database_names(), "database gone after dropDatabase",
          get_connection().list_database_names())
    ok("listCollections: users + audit_events; drop_collection; dropDatabase removed the database from listDatabases")

    disconnect()
    print(f"mongoengine: all 12 checks passed in {time.monotonic() - STARTED:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as error:  # an unexpected driver/server error is a failure too
        import traceback
        traceback.print_exc()
        print(f"FAILED: unexpected {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
