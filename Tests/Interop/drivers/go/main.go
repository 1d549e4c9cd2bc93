// StratosDB interoperability program for the official MongoDB Go driver (go.mongodb.org/mongo-driver).
//
// A small "people directory" application: it creates indexes, inserts documents of every common
// BSON type, queries, pages through a cursor, counts, updates, aggregates, deletes and drops,
// checking each answer against what the program itself computes from the data it inserted.
// It prints "ok: <what>" per check and exits 1 with a message (and the last commands the driver
// sent, with their replies) on the first failure.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readpref"
	"go.mongodb.org/mongo-driver/version"
)

// ---------------------------------------------------------------------------------------------
// Command log: the last commands the driver sent and what came back, shown when a check fails.

type logEntry struct {
	name    string
	command string
	outcome string
}

var (
	logMu      sync.Mutex
	commandLog []logEntry
	pending    = map[int64]int{}
	getMores   []int // nextBatch lengths of every getMore reply, in order
	trackBatch bool
)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func monitor() *event.CommandMonitor {
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			logMu.Lock()
			defer logMu.Unlock()
			commandLog = append(commandLog, logEntry{name: e.CommandName, command: truncate(e.Command.String(), 500)})
			if len(commandLog) > 40 {
				commandLog = commandLog[len(commandLog)-40:]
				pending = map[int64]int{}
			}
			pending[e.RequestID] = len(commandLog) - 1
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) {
			logMu.Lock()
			defer logMu.Unlock()
			if i, ok := pending[e.RequestID]; ok && i < len(commandLog) {
				commandLog[i].outcome = "reply " + truncate(e.Reply.String(), 500)
			}
			if trackBatch && e.CommandName == "getMore" {
				if arr, err := e.Reply.LookupErr("cursor", "nextBatch"); err == nil {
					values, _ := arr.Array().Values()
					getMores = append(getMores, len(values))
				}
			}
		},
		Failed: func(_ context.Context, e *event.CommandFailedEvent) {
			logMu.Lock()
			defer logMu.Unlock()
			if i, ok := pending[e.RequestID]; ok && i < len(commandLog) {
				commandLog[i].outcome = "FAILED " + e.Failure
			}
		},
	}
}

func fail(format string, args ...interface{}) {
	logMu.Lock()
	recent := commandLog
	if len(recent) > 4 {
		recent = recent[len(recent)-4:]
	}
	if len(recent) > 0 {
		fmt.Fprintln(os.Stderr, "last commands the driver sent:")
		for _, e := range recent {
			fmt.Fprintf(os.Stderr, "  -> %s\n     <- %s\n", e.command, e.outcome)
		}
	}
	logMu.Unlock()
	// Last line of the output (the harness shows it as the one-line reason).
	fmt.Fprintln(os.Stderr, "FAIL: "+fmt.Sprintf(format, args...))
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func ok(format string, args ...interface{}) {
	fmt.Printf("ok: "+format+"\n", args...)
}

// ---------------------------------------------------------------------------------------------
// The application's data, and the program's own model of it.

type person struct {
	ID      primitive.ObjectID
	Name    string
	Email   string
	City    string
	Age     int32
	Score   float64
	Status  string
	Tags    []string
	Zip     string
	Deleted bool
}

var cities = []string{"Oslo", "Lima", "Pune", "Kyiv", "Cork"}

func makePeople(n int) []*person {
	people := make([]*person, 0, n)
	for i := 0; i < n; i++ {
		status := "new"
		if i%3 == 0 {
			status = "active"
		}
		people = append(people, &person{
			ID:     primitive.NewObjectID(),
			Name:   fmt.Sprintf("person-%02d", i),
			Email:  fmt.Sprintf("p%02d@example.org", i),
			City:   cities[(i*3)%len(cities)],
			Age:    int32(18 + (i*7)%45),
			Score:  float64(i%10) + 0.25*float64(i%4),
			Status: status,
			Tags:   []string{"t" + fmt.Sprint(i%4), "all"},
			Zip:    fmt.Sprintf("%05d", 1000+i),
		})
	}
	return people
}

func (p *person) doc() bson.D {
	return bson.D{
		{Key: "_id", Value: p.ID},
		{Key: "name", Value: p.Name},
		{Key: "email", Value: p.Email},
		{Key: "city", Value: p.City},
		{Key: "age", Value: p.Age},
		{Key: "score", Value: p.Score},
		{Key: "status", Value: p.Status},
		{Key: "tags", Value: p.Tags},
		{Key: "address", Value: bson.D{{Key: "zip", Value: p.Zip}, {Key: "city", Value: p.City}}},
	}
}

func live(people []*person) []*person {
	var out []*person
	for _, p := range people {
		if !p.Deleted {
			out = append(out, p)
		}
	}
	return out
}

func idsOf(ps []*person) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID.Hex()
	}
	return out
}

func main() {
	uri := os.Getenv("MONGODB_URI")
	dbName := os.Getenv("STRATOS_DB")
	if uri == "" || dbName == "" {
		fail("MONGODB_URI and STRATOS_DB must be set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	clientOpts := options.Client().ApplyURI(uri).SetMonitor(monitor()).
		SetServerSelectionTimeout(10 * time.Second).SetAppName("stratos-interop-go")
	client, err := mongo.Connect(ctx, clientOpts)
	must(err, "mongo.Connect")
	defer client.Disconnect(context.Background())
	must(client.Ping(ctx, readpref.Primary()), "ping")

	db := client.Database(dbName)
	must(db.Drop(ctx), "dropDatabase at start")
	coll := db.Collection("people")

	// 1. Indexes -------------------------------------------------------------------------------
	names, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "city", Value: 1}, {Key: "age", Value: -1}}},
	})
	must(err, "createIndexes")
	if !reflect.DeepEqual(names, []string{"email_1", "city_1_age_-1"}) {
		fail("createIndexes returned names %v, want [email_1 city_1_age_-1]", names)
	}
	specs, err := coll.Indexes().ListSpecifications(ctx)
	must(err, "listIndexes")
	got := map[string]*mongo.IndexSpecification{}
	for _, s := range specs {
		got[s.Name] = s
	}
	wantKeys := map[string]bson.D{
		"_id_":          {{Key: "_id", Value: int32(1)}},
		"email_1":       {{Key: "email", Value: int32(1)}},
		"city_1_age_-1": {{Key: "city", Value: int32(1)}, {Key: "age", Value: int32(-1)}},
	}
	if len(specs) != 3 {
		fail("listIndexes returned %d indexes, want 3: %v", len(specs), specs)
	}
	for name, keys := range wantKeys {
		s, found := got[name]
		if !found {
			fail("index %s missing from listIndexes", name)
		}
		elems, err := s.KeysDocument.Elements()
		must(err, "index key document")
		if len(elems) != len(keys) {
			fail("index %s keys %v, want %v", name, s.KeysDocument, keys)
		}
		for i, e := range elems {
			v := e.Value()
			n, isNum := v.AsInt64OK()
			if !isNum {
				f, isDouble := v.DoubleOK()
				n, isNum = int64(f), isDouble
			}
			if e.Key() != keys[i].Key || !isNum || n != int64(keys[i].Value.(int32)) {
				fail("index %s key %d is %s:%v, want %s:%v", name, i, e.Key(), v, keys[i].Key, keys[i].Value)
			}
		}
	}
	if got["email_1"].Unique == nil || !*got["email_1"].Unique {
		fail("index email_1 is not reported unique: %v", got["email_1"])
	}
	if got["city_1_age_-1"].Unique != nil && *got["city_1_age_-1"].Unique {
		fail("index city_1_age_-1 is reported unique")
	}
	ok("1 indexes: createIndexes names %v; listIndexes has _id_, email_1 (unique), city_1_age_-1 {city:1, age:-1}", names)

	// 2. Mixed BSON types -------------------------------------------------------------------------
	misc := db.Collection("misc")
	created := time.Date(2024, 2, 29, 13, 45, 7, 123_000_000, time.UTC)
	specialID := primitive.NewObjectID()
	refID := primitive.NewObjectID()
	dec, _ := primitive.ParseDecimal128("12.5")
	blob := []byte{0, 1, 2, 0xfe, 0xff, 'x'}
	uuidBytes := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	special := bson.D{
		{Key: "_id", Value: specialID},
		{Key: "title", Value: "Zürich – 東京 ✓"},
		{Key: "when", Value: primitive.NewDateTimeFromTime(created)},
		{Key: "blob", Value: primitive.Binary{Subtype: 0x00, Data: blob}},
		{Key: "uuid", Value: primitive.Binary{Subtype: 0x04, Data: uuidBytes}},
		{Key: "ref", Value: refID},
		{Key: "big", Value: int64(1)<<42 + 7},
		{Key: "small", Value: int32(-17)},
		{Key: "ratio", Value: 0.1},
		{Key: "neg", Value: -2.5e-300},
		{Key: "price", Value: dec},
		{Key: "flag", Value: true},
		{Key: "nothing", Value: nil},
		{Key: "nested", Value: bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: int32(1)}, {Key: "c", Value: bson.A{"x", int64(2)}}}}, {Key: "z", Value: false}}},
		{Key: "mixed", Value: bson.A{int32(1), "two", 3.0, bson.D{{Key: "four", Value: int32(4)}}, bson.A{int32(5)}, nil, int64(6)}},
		{Key: "empty", Value: bson.A{}},
	}
	ins, err := misc.InsertOne(ctx, special)
	must(err, "insertOne (mixed types)")
	if ins.InsertedID != specialID {
		fail("insertOne returned id %v, want %v", ins.InsertedID, specialID)
	}
	// A bulk insert of mixed-type documents, some with driver-generated ids.
	bulkDocs := []interface{}{
		bson.D{{Key: "kind", Value: "a"}, {Key: "when", Value: primitive.NewDateTimeFromTime(created.Add(time.Hour))}, {Key: "n", Value: int64(-1) << 40}},
		bson.D{{Key: "kind", Value: "b"}, {Key: "bin", Value: primitive.Binary{Subtype: 0x80, Data: []byte("user-defined")}}, {Key: "n", Value: 2.75}},
		bson.D{{Key: "kind", Value: "c"}, {Key: "n", Value: nil}, {Key: "arr", Value: bson.A{bson.D{{Key: "k", Value: int32(1)}}, bson.D{{Key: "k", Value: int32(2)}}}}},
	}
	many, err := misc.InsertMany(ctx, bulkDocs)
	must(err, "insertMany (mixed types)")
	if len(many.InsertedIDs) != 3 {
		fail("insertMany returned %d ids, want 3", len(many.InsertedIDs))
	}
	var raw bson.Raw
	must(misc.FindOne(ctx, bson.D{{Key: "_id", Value: specialID}}).Decode(&raw), "findOne mixed-types document")
	// Field order must be preserved exactly.
	elems, err := raw.Elements()
	must(err, "read back document")
	var order []string
	for _, e := range elems {
		order = append(order, e.Key())
	}
	var wantOrder []string
	for _, e := range special {
		wantOrder = append(wantOrder, e.Key)
	}
	if !reflect.DeepEqual(order, wantOrder) {
		fail("field order %v, want %v", order, wantOrder)
	}
	typeOf := func(key ...string) bson.RawValue {
		v, err := raw.LookupErr(key...)
		if err != nil {
			fail("field %v missing from read-back document %v", key, raw)
		}
		return v
	}
	expectType := func(v bson.RawValue, t bsontype.Type, what string) {
		if v.Type != t {
			fail("%s came back as BSON type %v (%v), want %v", what, v.Type, v, t)
		}
	}
	v := typeOf("title")
	expectType(v, bsontype.String, "title")
	if v.StringValue() != "Zürich – 東京 ✓" {
		fail("title %q", v.StringValue())
	}
	v = typeOf("when")
	expectType(v, bsontype.DateTime, "when")
	if !v.Time().Equal(created) {
		fail("when = %v, want %v", v.Time().UTC(), created)
	}
	v = typeOf("blob")
	expectType(v, bsontype.Binary, "blob")
	if st, data := v.Binary(); st != 0 || !bytes.Equal(data, blob) {
		fail("blob = subtype %d %x, want subtype 0 %x", st, data, blob)
	}
	v = typeOf("uuid")
	expectType(v, bsontype.Binary, "uuid")
	if st, data := v.Binary(); st != 4 || !bytes.Equal(data, uuidBytes) {
		fail("uuid = subtype %d %x, want subtype 4 %x", st, data, uuidBytes)
	}
	v = typeOf("ref")
	expectType(v, bsontype.ObjectID, "ref")
	if v.ObjectID() != refID {
		fail("ref = %v, want %v", v.ObjectID(), refID)
	}
	v = typeOf("big")
	expectType(v, bsontype.Int64, "big")
	if v.Int64() != int64(1)<<42+7 {
		fail("big = %d", v.Int64())
	}
	v = typeOf("small")
	expectType(v, bsontype.Int32, "small")
	if v.Int32() != -17 {
		fail("small = %d", v.Int32())
	}
	v = typeOf("ratio")
	expectType(v, bsontype.Double, "ratio")
	if v.Double() != 0.1 {
		fail("ratio = %v", v.Double())
	}
	v = typeOf("neg")
	expectType(v, bsontype.Double, "neg")
	if v.Double() != -2.5e-300 {
		fail("neg = %v", v.Double())
	}
	v = typeOf("price")
	expectType(v, bsontype.Decimal128, "price")
	if v.Decimal128().String() != "12.5" {
		fail("price = %v, want 12.5", v.Decimal128())
	}
	v = typeOf("flag")
	expectType(v, bsontype.Boolean, "flag")
	if !v.Boolean() {
		fail("flag is false")
	}
	expectType(typeOf("nothing"), bsontype.Null, "nothing")
	expectType(typeOf("nested"), bsontype.EmbeddedDocument, "nested")
	v = typeOf("nested", "a", "b")
	expectType(v, bsontype.Int32, "nested.a.b")
	v = typeOf("nested", "a", "c")
	expectType(v, bsontype.Array, "nested.a.c")
	if vals, _ := v.Array().Values(); len(vals) != 2 || vals[0].StringValue() != "x" || vals[1].Type != bsontype.Int64 || vals[1].Int64() != 2 {
		fail("nested.a.c = %v", v)
	}
	expectType(typeOf("nested", "z"), bsontype.Boolean, "nested.z")
	v = typeOf("mixed")
	expectType(v, bsontype.Array, "mixed")
	vals, _ := v.Array().Values()
	wantTypes := []bsontype.Type{bsontype.Int32, bsontype.String, bsontype.Double, bsontype.EmbeddedDocument, bsontype.Array, bsontype.Null, bsontype.Int64}
	if len(vals) != len(wantTypes) {
		fail("mixed has %d elements, want %d: %v", len(vals), len(wantTypes), v)
	}
	for i, t := range wantTypes {
		if vals[i].Type != t {
			fail("mixed[%d] is %v, want %v (%v)", i, vals[i].Type, t, v)
		}
	}
	if vals[3].Document().Lookup("four").Int32() != 4 || vals[6].Int64() != 6 {
		fail("mixed values wrong: %v", v)
	}
	v = typeOf("empty")
	expectType(v, bsontype.Array, "empty")
	if ev, _ := v.Array().Values(); len(ev) != 0 {
		fail("empty array came back with %d elements", len(ev))
	}
	// The bulk-inserted documents, by their driver-generated ids.
	var b bson.Raw
	must(misc.FindOne(ctx, bson.D{{Key: "_id", Value: many.InsertedIDs[1]}}).Decode(&b), "findOne bulk document")
	if st, data := b.Lookup("bin").Binary(); st != 0x80 || string(data) != "user-defined" || b.Lookup("n").Double() != 2.75 {
		fail("bulk document b came back as %v", b)
	}
	must(misc.FindOne(ctx, bson.D{{Key: "kind", Value: "a"}}).Decode(&b), "findOne bulk document a")
	if b.Lookup("n").Type != bsontype.Int64 || b.Lookup("n").Int64() != int64(-1)<<40 || !b.Lookup("when").Time().Equal(created.Add(time.Hour)) {
		fail("bulk document a came back as %v", b)
	}
	if b.Lookup("_id").ObjectID() != many.InsertedIDs[0] {
		fail("bulk document a has _id %v, driver generated %v", b.Lookup("_id"), many.InsertedIDs[0])
	}
	n, err := misc.CountDocuments(ctx, bson.D{{Key: "n", Value: nil}})
	must(err, "countDocuments {n: null}")
	if n != 2 { // kind c has n: null, special has no n at all
		fail("countDocuments {n: null} = %d, want 2 (explicit null + missing field)", n)
	}
	ok("2 mixed BSON types: insertOne + insertMany; date, binary (subtypes 0, 4, 0x80), ObjectId, int32, int64, double, decimal128, bool, null, nested documents, arrays and field order round-tripped")

	// People: the data set for the rest of the checks.
	people := makePeople(60)
	docs := make([]interface{}, len(people))
	for i, p := range people {
		docs[i] = p.doc()
	}
	res, err := coll.InsertMany(ctx, docs)
	must(err, "insertMany people")
	if len(res.InsertedIDs) != len(people) {
		fail("insertMany people returned %d ids", len(res.InsertedIDs))
	}

	// 3. Filtered, sorted, skipped, limited find ------------------------------------------------
	var expect []*person
	for _, p := range people {
		if p.Age >= 30 {
			expect = append(expect, p)
		}
	}
	sort.SliceStable(expect, func(i, j int) bool {
		if expect[i].Age != expect[j].Age {
			return expect[i].Age > expect[j].Age
		}
		return bytes.Compare(expect[i].ID[:], expect[j].ID[:]) < 0
	})
	expect = expect[3:8]
	cur, err := coll.Find(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 30}}}},
		options.Find().SetSort(bson.D{{Key: "age", Value: -1}, {Key: "_id", Value: 1}}).SetSkip(3).SetLimit(5))
	must(err, "find sorted/skipped/limited")
	var page []struct {
		ID  primitive.ObjectID `bson:"_id"`
		Age int32              `bson:"age"`
	}
	must(cur.All(ctx, &page), "read sorted page")
	var gotIDs []string
	for _, d := range page {
		gotIDs = append(gotIDs, d.ID.Hex())
	}
	if !reflect.DeepEqual(gotIDs, idsOf(expect)) {
		fail("find age>=30 sort(age -1, _id 1) skip 3 limit 5 returned %v, want %v", gotIDs, idsOf(expect))
	}
	ok("3 find {age: {$gte: 30}} sort {age: -1, _id: 1} skip 3 limit 5 = the program's own answer (ages %d..%d)", expect[0].Age, expect[4].Age)

	// 4. Multi-batch cursor ---------------------------------------------------------------------
	logMu.Lock()
	trackBatch, getMores = true, nil
	logMu.Unlock()
	cur, err = coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(7))
	must(err, "find batchSize 7")
	firstBatch := cur.RemainingBatchLength()
	seen := map[primitive.ObjectID]int{}
	for cur.Next(ctx) {
		var d struct {
			ID primitive.ObjectID `bson:"_id"`
		}
		must(cur.Decode(&d), "decode cursor document")
		seen[d.ID]++
	}
	must(cur.Err(), "iterate cursor")
	must(cur.Close(ctx), "close cursor")
	logMu.Lock()
	trackBatch = false
	batches := append([]int(nil), getMores...)
	logMu.Unlock()
	if firstBatch != 7 {
		fail("first batch held %d documents, want 7", firstBatch)
	}
	total := firstBatch
	for _, l := range batches {
		if l > 7 {
			fail("a getMore batch held %d documents with batchSize 7 (batches %v)", l, batches)
		}
		total += l
	}
	if len(seen) != len(people) || total != len(people) {
		fail("cursor returned %d distinct of %d documents in batches 7+%v, want %d", len(seen), total, batches, len(people))
	}
	for _, p := range people {
		if seen[p.ID] != 1 {
			fail("document %s arrived %d times", p.ID.Hex(), seen[p.ID])
		}
	}
	if len(batches) < 8 {
		fail("only %d getMores for 60 documents with batchSize 7", len(batches))
	}
	ok("4 cursor with batchSize 7: %d documents, none twice, first batch 7 + %d getMores %v", len(seen), len(batches), batches)

	// 5. Counts and distinct --------------------------------------------------------------------
	wantOld := 0
	wantOslo := 0
	for _, p := range people {
		if p.Age >= 30 {
			wantOld++
		}
		if p.City == "Oslo" {
			wantOslo++
		}
	}
	n, err = coll.CountDocuments(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 30}}}})
	must(err, "countDocuments")
	if int(n) != wantOld {
		fail("countDocuments age>=30 = %d, want %d", n, wantOld)
	}
	n, err = coll.CountDocuments(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$gte", Value: 30}}}}, options.Count().SetSkip(2).SetLimit(5))
	must(err, "countDocuments with skip/limit")
	if n != 5 {
		fail("countDocuments age>=30 skip 2 limit 5 = %d, want 5", n)
	}
	// Driver 1.8 sends {aggregate, pipeline: [{$collStats: {count: {}}}, {$group: {_id: 1, n: {$sum: "$count"}}}]}
	// to servers with maxWireVersion >= 12, and the legacy `count` command to older ones.
	est := estimatedCount(ctx, coll)
	if int(est) != len(people) {
		fail("estimatedDocumentCount = %d, want %d", est, len(people))
	}
	// An existing empty collection, and one that does not exist (the driver maps error 26,
	// NamespaceNotFound, to 0 - and needs one result document otherwise).
	must(db.CreateCollection(ctx, "empty"), "create collection empty")
	if n := estimatedCount(ctx, db.Collection("empty")); n != 0 {
		fail("estimatedDocumentCount of an empty collection = %d", n)
	}
	must(db.Collection("empty").Drop(ctx), "drop collection empty")
	if n := estimatedCount(ctx, db.Collection("nosuchcollection")); n != 0 {
		fail("estimatedDocumentCount of a missing collection = %d", n)
	}
	var countReply struct {
		N  int64   `bson:"n"`
		Ok float64 `bson:"ok"`
	}
	must(db.RunCommand(ctx, bson.D{{Key: "count", Value: "people"}, {Key: "query", Value: bson.D{{Key: "city", Value: "Oslo"}}}}).Decode(&countReply), "count command")
	if int(countReply.N) != wantOslo || countReply.Ok != 1 {
		fail("{count: people, query: {city: Oslo}} = %+v, want n=%d", countReply, wantOslo)
	}
	distinct, err := coll.Distinct(ctx, "city", bson.D{})
	must(err, "distinct city")
	var gotCities []string
	for _, c := range distinct {
		s, isString := c.(string)
		if !isString {
			fail("distinct returned a %T: %v", c, c)
		}
		gotCities = append(gotCities, s)
	}
	sort.Strings(gotCities)
	wantCities := append([]string(nil), cities...)
	sort.Strings(wantCities)
	if !reflect.DeepEqual(gotCities, wantCities) {
		fail("distinct city = %v, want %v", gotCities, wantCities)
	}
	distinct, err = coll.Distinct(ctx, "tags", bson.D{{Key: "city", Value: "Oslo"}})
	must(err, "distinct tags (array field) with filter")
	wantTags := map[string]bool{"all": true}
	for _, p := range people {
		if p.City == "Oslo" {
			wantTags[p.Tags[0]] = true
		}
	}
	if len(distinct) != len(wantTags) {
		fail("distinct tags for Oslo = %v, want %v", distinct, wantTags)
	}
	for _, t := range distinct {
		if s, _ := t.(string); !wantTags[s] {
			fail("distinct tags for Oslo = %v, want %v", distinct, wantTags)
		}
	}
	ok("5 countDocuments=%d (skip/limit=5), estimatedDocumentCount=%d, count command {count, query}=%d, distinct city=%v, distinct over an array field", wantOld, est, wantOslo, gotCities)

	// 9. Aggregation and projection (before the updates change the data) -----------------------
	type cityAvg struct {
		City  string
		Avg   float64
		Count int
	}
	sums := map[string][2]float64{}
	for _, p := range people {
		s := sums[p.City]
		sums[p.City] = [2]float64{s[0] + float64(p.Age), s[1] + 1}
	}
	var wantAgg []cityAvg
	for c, s := range sums {
		wantAgg = append(wantAgg, cityAvg{c, s[0] / s[1], int(s[1])})
	}
	sort.Slice(wantAgg, func(i, j int) bool {
		if wantAgg[i].Avg != wantAgg[j].Avg {
			return wantAgg[i].Avg > wantAgg[j].Avg
		}
		return wantAgg[i].City < wantAgg[j].City
	})
	cur, err = coll.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$city"}, {Key: "avgAge", Value: bson.D{{Key: "$avg", Value: "$age"}}}, {Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}}},
		{{Key: "$sort", Value: bson.D{{Key: "avgAge", Value: -1}, {Key: "_id", Value: 1}}}},
	})
	must(err, "aggregate $group/$avg/$sort")
	var aggRows []bson.Raw
	must(cur.All(ctx, &aggRows), "read aggregate")
	if len(aggRows) != len(wantAgg) {
		fail("aggregate returned %d groups, want %d: %v", len(aggRows), len(wantAgg), aggRows)
	}
	for i, row := range aggRows {
		avg := row.Lookup("avgAge")
		nn, _ := row.Lookup("n").AsInt64OK()
		if row.Lookup("_id").StringValue() != wantAgg[i].City || avg.Type != bsontype.Double ||
			math.Abs(avg.Double()-wantAgg[i].Avg) > 1e-9 || int(nn) != wantAgg[i].Count {
			fail("aggregate row %d = %v, want {_id: %s, avgAge: %v, n: %d}", i, row, wantAgg[i].City, wantAgg[i].Avg, wantAgg[i].Count)
		}
	}
	cur, err = coll.Find(ctx, bson.D{{Key: "city", Value: "Oslo"}}, options.Find().
		SetProjection(bson.D{{Key: "name", Value: 1}, {Key: "address.zip", Value: 1}, {Key: "_id", Value: 0}}).
		SetSort(bson.D{{Key: "name", Value: 1}}))
	must(err, "find with projection")
	var projected []bson.Raw
	must(cur.All(ctx, &projected), "read projected")
	var oslo []*person
	for _, p := range people {
		if p.City == "Oslo" {
			oslo = append(oslo, p)
		}
	}
	if len(projected) != len(oslo) {
		fail("projection find returned %d documents, want %d", len(projected), len(oslo))
	}
	for i, d := range projected {
		want := fmt.Sprintf(`{"name": "%s","address": {"zip": "%s"}}`, oslo[i].Name, oslo[i].Zip)
		if d.String() != want {
			fail("projected document %d = %s, want %s", i, d.String(), want)
		}
	}
	cur, err = coll.Find(ctx, bson.D{{Key: "_id", Value: people[0].ID}}, options.Find().
		SetProjection(bson.D{{Key: "tags", Value: 0}, {Key: "address", Value: 0}, {Key: "score", Value: 0}}))
	must(err, "find with exclusion projection")
	projected = nil
	must(cur.All(ctx, &projected), "read exclusion projection")
	if len(projected) != 1 {
		fail("exclusion projection returned %d documents", len(projected))
	}
	var keys []string
	els, _ := projected[0].Elements()
	for _, e := range els {
		keys = append(keys, e.Key())
	}
	if strings.Join(keys, ",") != "_id,name,email,city,age,status" {
		fail("exclusion projection kept fields %v", keys)
	}
	ok("9 aggregate $group/$avg/$sort = own computation (%d cities, top %s %.3f); inclusion projection {name, address.zip, _id: 0} and exclusion projection", len(wantAgg), wantAgg[0].City, wantAgg[0].Avg)

	// 6. Updates --------------------------------------------------------------------------------
	target := people[5]
	ur, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: target.ID}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "status", Value: "vip"}, {Key: "address.zip", Value: "99999"}}},
		{Key: "$inc", Value: bson.D{{Key: "age", Value: 2}, {Key: "score", Value: 0.5}}},
		{Key: "$push", Value: bson.D{{Key: "tags", Value: "pushed"}}},
	})
	must(err, "updateOne $set/$inc/$push")
	if ur.MatchedCount != 1 || ur.ModifiedCount != 1 || ur.UpsertedID != nil {
		fail("updateOne result %+v, want matched 1 modified 1", ur)
	}
	target.Status, target.Zip, target.Age, target.Score = "vip", "99999", target.Age+2, target.Score+0.5
	target.Tags = append(target.Tags, "pushed")
	var back struct {
		Status  string   `bson:"status"`
		Age     int32    `bson:"age"`
		Score   float64  `bson:"score"`
		Tags    []string `bson:"tags"`
		Address struct {
			Zip  string `bson:"zip"`
			City string `bson:"city"`
		} `bson:"address"`
	}
	must(coll.FindOne(ctx, bson.D{{Key: "_id", Value: target.ID}}).Decode(&back), "read updated document")
	if back.Status != "vip" || back.Age != target.Age || back.Score != target.Score || !reflect.DeepEqual(back.Tags, target.Tags) ||
		back.Address.Zip != "99999" || back.Address.City != target.City {
		fail("after $set/$inc/$push the document is %+v", back)
	}
	var ageRaw bson.Raw
	must(coll.FindOne(ctx, bson.D{{Key: "_id", Value: target.ID}}).Decode(&ageRaw), "read updated document raw")
	if ageRaw.Lookup("age").Type != bsontype.Int32 {
		fail("$inc of an int32 by an int32 produced %v", ageRaw.Lookup("age").Type)
	}
	wantMatched, wantModified := 0, 0
	for _, p := range people {
		if p.City == "Lima" {
			wantMatched++
			if p.Status != "active" {
				wantModified++
				p.Status = "active"
			}
		}
	}
	ur, err = coll.UpdateMany(ctx, bson.D{{Key: "city", Value: "Lima"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "active"}}}})
	must(err, "updateMany")
	if int(ur.MatchedCount) != wantMatched || int(ur.ModifiedCount) != wantModified || wantModified >= wantMatched {
		fail("updateMany matched %d modified %d, want matched %d modified %d", ur.MatchedCount, ur.ModifiedCount, wantMatched, wantModified)
	}
	ur, err = coll.UpdateOne(ctx, bson.D{{Key: "email", Value: "newcomer@example.org"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "newcomer"}, {Key: "city", Value: "Cork"}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "age", Value: int32(40)}}}},
		options.Update().SetUpsert(true))
	must(err, "upsert")
	upID, isOID := ur.UpsertedID.(primitive.ObjectID)
	if ur.MatchedCount != 0 || ur.UpsertedCount != 1 || !isOID {
		fail("upsert result %+v (UpsertedID %T), want matched 0, upserted 1 with an ObjectId", ur, ur.UpsertedID)
	}
	var up bson.Raw
	must(coll.FindOne(ctx, bson.D{{Key: "_id", Value: upID}}).Decode(&up), "read upserted document")
	if up.Lookup("email").StringValue() != "newcomer@example.org" || up.Lookup("name").StringValue() != "newcomer" || up.Lookup("age").Int32() != 40 {
		fail("upserted document is %v", up)
	}
	ur, err = coll.UpdateOne(ctx, bson.D{{Key: "email", Value: "newcomer@example.org"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "city", Value: "Cork"}}}, {Key: "$setOnInsert", Value: bson.D{{Key: "age", Value: int32(99)}}}},
		options.Update().SetUpsert(true))
	must(err, "second upsert")
	if ur.MatchedCount != 1 || ur.ModifiedCount != 0 || ur.UpsertedID != nil {
		fail("repeating the upsert gave %+v, want matched 1 modified 0 and no upsert", ur)
	}
	newcomer := &person{ID: upID, Name: "newcomer", Email: "newcomer@example.org", City: "Cork", Age: 40}
	people = append(people, newcomer)
	ok("6 updateOne $set/$inc/$push read back; updateMany matched %d modified %d; upsert inserted _id %s; repeated upsert matched 1 modified 0", wantMatched, wantModified, upID.Hex())

	// 7. findAndModify returning the new document ----------------------------------------------
	fam := people[7]
	var after struct {
		ID    primitive.ObjectID `bson:"_id"`
		Age   int32              `bson:"age"`
		Score float64            `bson:"score"`
	}
	err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "email", Value: fam.Email}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}, {Key: "$set", Value: bson.D{{Key: "score", Value: 100.5}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&after)
	must(err, "findOneAndUpdate returnDocument After")
	if after.ID != fam.ID || after.Age != fam.Age+1 || after.Score != 100.5 {
		fail("findOneAndUpdate (After) returned %+v, want age %d score 100.5", after, fam.Age+1)
	}
	fam.Age++
	fam.Score = 100.5
	err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "email", Value: fam.Email}},
		bson.D{{Key: "$inc", Value: bson.D{{Key: "age", Value: 1}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.Before).SetProjection(bson.D{{Key: "age", Value: 1}})).Decode(&after)
	must(err, "findOneAndUpdate returnDocument Before")
	if after.Age != fam.Age {
		fail("findOneAndUpdate (Before) returned age %d, want %d", after.Age, fam.Age)
	}
	fam.Age++
	err = coll.FindOneAndUpdate(ctx, bson.D{{Key: "email", Value: "nobody@example.org"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}).Err()
	if !errors.Is(err, mongo.ErrNoDocuments) {
		fail("findOneAndUpdate on no match gave %v, want mongo.ErrNoDocuments", err)
	}
	ok("7 findOneAndUpdate returns the new document (age %d, score 100.5), Before returns the old one, no match gives ErrNoDocuments", fam.Age-1)

	// 8. Duplicate keys ---------------------------------------------------------------------------
	_, err = coll.InsertOne(ctx, bson.D{{Key: "name", Value: "clone"}, {Key: "email", Value: people[3].Email}})
	if err == nil {
		fail("inserting a duplicate email succeeded")
	}
	if !mongo.IsDuplicateKeyError(err) {
		fail("duplicate insert error is not a duplicate-key error: %T %v", err, err)
	}
	var we mongo.WriteException
	if !errors.As(err, &we) || len(we.WriteErrors) != 1 || we.WriteErrors[0].Code != 11000 || we.WriteErrors[0].Index != 0 {
		fail("duplicate insert error %T %+v, want WriteException with one write error code 11000", err, err)
	}
	if !strings.Contains(we.WriteErrors[0].Message, "E11000") {
		fail("duplicate-key message %q lacks E11000", we.WriteErrors[0].Message)
	}
	before, err := coll.CountDocuments(ctx, bson.D{})
	must(err, "count before unordered insert")
	extra := []*person{}
	for i := 0; i < 6; i++ {
		extra = append(extra, &person{ID: primitive.NewObjectID(), Name: fmt.Sprintf("extra-%d", i), Email: fmt.Sprintf("extra%d@example.org", i), City: "Pune", Age: int32(50 + i)})
	}
	extra[2].Email = people[10].Email // duplicate of an existing document
	extra[4].Email = extra[3].Email   // duplicate inside the batch
	docs = nil
	for _, p := range extra {
		docs = append(docs, p.doc())
	}
	res, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) {
		fail("unordered insertMany with duplicates gave %T %v, want BulkWriteException", err, err)
	}
	if !mongo.IsDuplicateKeyError(err) {
		fail("unordered insertMany error is not a duplicate-key error: %v", err)
	}
	var failedIdx []int
	for _, e := range bwe.WriteErrors {
		if e.Code != 11000 {
			fail("write error %+v has code %d, want 11000", e, e.Code)
		}
		failedIdx = append(failedIdx, e.Index)
	}
	if !reflect.DeepEqual(failedIdx, []int{2, 4}) {
		fail("unordered insertMany write errors at %v, want [2 4]", failedIdx)
	}
	after2, err := coll.CountDocuments(ctx, bson.D{})
	must(err, "count after unordered insert")
	if after2-before != 4 {
		fail("unordered insertMany inserted %d documents, want 4 (carrying on past both duplicates)", after2-before)
	}
	for _, i := range []int{0, 1, 3, 5} {
		people = append(people, extra[i])
		if c, _ := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: extra[i].ID}}); c != 1 {
			fail("document %d of the unordered batch is missing", i)
		}
	}
	// An ORDERED insert stops at the first duplicate.
	ordered := []*person{
		{ID: primitive.NewObjectID(), Name: "ord-0", Email: "ord0@example.org", City: "Kyiv", Age: 21},
		{ID: primitive.NewObjectID(), Name: "ord-1", Email: people[0].Email, City: "Kyiv", Age: 22},
		{ID: primitive.NewObjectID(), Name: "ord-2", Email: "ord2@example.org", City: "Kyiv", Age: 23},
	}
	docs = []interface{}{ordered[0].doc(), ordered[1].doc(), ordered[2].doc()}
	_, err = coll.InsertMany(ctx, docs)
	if !errors.As(err, &bwe) || len(bwe.WriteErrors) != 1 || bwe.WriteErrors[0].Index != 1 || bwe.WriteErrors[0].Code != 11000 {
		fail("ordered insertMany with a duplicate gave %T %v, want one write error at index 1 code 11000", err, err)
	}
	after3, err := coll.CountDocuments(ctx, bson.D{})
	must(err, "count after ordered insert")
	if after3-after2 != 1 {
		fail("ordered insertMany inserted %d documents, want 1 (stop at the duplicate)", after3-after2)
	}
	people = append(people, ordered[0])
	ok("8 duplicate email: IsDuplicateKeyError, WriteException code 11000; unordered insertMany inserted 4 of 6 with errors at %v; ordered insertMany stopped after 1", failedIdx)

	// 10. delete_many -----------------------------------------------------------------------------
	wantDeleted := 0
	for _, p := range people {
		if p.Age < 25 {
			wantDeleted++
			p.Deleted = true
		}
	}
	dr, err := coll.DeleteMany(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$lt", Value: 25}}}})
	must(err, "deleteMany")
	if int(dr.DeletedCount) != wantDeleted || wantDeleted == 0 {
		fail("deleteMany age<25 deleted %d, want %d", dr.DeletedCount, wantDeleted)
	}
	remaining, err := coll.CountDocuments(ctx, bson.D{})
	must(err, "count after delete")
	if int(remaining) != len(live(people)) {
		fail("after deleteMany %d documents remain, want %d", remaining, len(live(people)))
	}
	dr, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: target.ID}})
	must(err, "deleteOne")
	if dr.DeletedCount != 1 {
		fail("deleteOne deleted %d", dr.DeletedCount)
	}
	target.Deleted = true
	dr, err = coll.DeleteMany(ctx, bson.D{{Key: "age", Value: bson.D{{Key: "$lt", Value: 0}}}})
	must(err, "deleteMany nothing")
	if dr.DeletedCount != 0 {
		fail("deleteMany of nothing deleted %d", dr.DeletedCount)
	}
	ok("10 deleteMany {age: {$lt: 25}} deleted %d, %d remain; deleteOne deleted 1; deleteMany of nothing deleted 0", wantDeleted, remaining)

	// 11. Unknown command ---------------------------------------------------------------------------
	err = db.RunCommand(ctx, bson.D{{Key: "noSuchCommand", Value: 1}}).Err()
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		fail("unknown command gave %T %v, want mongo.CommandError", err, err)
	}
	if ce.Code != 59 {
		fail("unknown command gave code %d (%s: %s), want 59", ce.Code, ce.Name, ce.Message)
	}
	must(client.Ping(ctx, readpref.Primary()), "ping after unknown command")
	if c, err := coll.CountDocuments(ctx, bson.D{}); err != nil || c != remaining-1 {
		fail("count after unknown command = %d, %v", c, err)
	}
	ok("11 unknown command: CommandError code 59 (%s); ping and queries still work", ce.Name)

	// 12. listCollections and dropDatabase ---------------------------------------------------------
	collNames, err := db.ListCollectionNames(ctx, bson.D{})
	must(err, "listCollections")
	sort.Strings(collNames)
	if !reflect.DeepEqual(collNames, []string{"misc", "people"}) {
		fail("listCollections names %v, want [misc people]", collNames)
	}
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	must(err, "listDatabases")
	if !contains(dbs, dbName) {
		fail("listDatabases %v lacks %s before the drop", dbs, dbName)
	}
	must(db.Drop(ctx), "dropDatabase")
	dbs, err = client.ListDatabaseNames(ctx, bson.D{})
	must(err, "listDatabases after drop")
	if contains(dbs, dbName) {
		fail("listDatabases %v still has %s after dropDatabase", dbs, dbName)
	}
	collNames, err = db.ListCollectionNames(ctx, bson.D{})
	must(err, "listCollections after drop")
	if len(collNames) != 0 {
		fail("listCollections after dropDatabase = %v", collNames)
	}
	ok("12 listCollections = [misc people]; dropDatabase removed %s from listDatabases", dbName)

	fmt.Println("go driver " + driverVersion() + ": all 12 checks passed")
}

// estimatedCount runs EstimatedDocumentCount, turning the driver's panic on a reply without a
// result document (it indexes firstBatch[0]) into a clean failure.
func estimatedCount(ctx context.Context, c *mongo.Collection) (n int64) {
	defer func() {
		if r := recover(); r != nil {
			fail("estimatedDocumentCount on %s: the driver panicked reading the reply (%v)", c.Name(), r)
		}
	}()
	n, err := c.EstimatedDocumentCount(ctx)
	must(err, "estimatedDocumentCount on "+c.Name())
	return n
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func driverVersion() string { return version.Driver }
