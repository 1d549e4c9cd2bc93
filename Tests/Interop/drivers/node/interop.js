'use strict';
// StratosDB interoperability program for the official MongoDB Node.js driver (Debian's node-mongodb, 3.6).
//
// A small "people directory" application: it creates indexes, inserts documents of every common
// BSON type, queries, pages through a cursor, counts, updates, aggregates, deletes and drops,
// checking each answer against what the program itself computes from the data it inserted.
// It prints "ok: <what>" per check and exits 1 with a message (and the last commands the driver
// sent, with their replies) on the first failure.

const mongodb = require('mongodb');
const { MongoClient, MongoError, ObjectId, Binary, Long, Int32, Double, Decimal128 } = mongodb;

const uri = process.env.MONGODB_URI;
const dbName = process.env.STRATOS_DB;

// ----------------------------------------------------------------------------------------------
// Command log: the last commands the driver sent and what came back, shown when a check fails.
const commandLog = [];
const byRequest = new Map();
let getMoreBatches = null; // nextBatch lengths of getMore replies while a cursor check runs

function show(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    text = String(value);
  }
  return text && text.length > 500 ? text.slice(0, 500) + '…' : text;
}

function attachMonitor(client) {
  client.on('commandStarted', e => {
    const entry = { command: show(e.command), outcome: '(no reply)' };
    commandLog.push(entry);
    if (commandLog.length > 40) commandLog.shift();
    byRequest.set(e.requestId, entry);
  });
  client.on('commandSucceeded', e => {
    const entry = byRequest.get(e.requestId);
    if (entry) entry.outcome = 'reply ' + show(e.reply);
    byRequest.delete(e.requestId);
    if (getMoreBatches && e.commandName === 'getMore' && e.reply && e.reply.cursor) {
      getMoreBatches.push(e.reply.cursor.nextBatch.length);
    }
  });
  client.on('commandFailed', e => {
    const entry = byRequest.get(e.requestId);
    if (entry) entry.outcome = 'FAILED ' + show(e.failure && (e.failure.message || e.failure));
    byRequest.delete(e.requestId);
  });
}

class CheckFailure extends Error {}

function fail(message) {
  throw new CheckFailure(message);
}

function check(condition, message) {
  if (!condition) fail(typeof message === 'function' ? message() : message);
}

function ok(message) {
  console.log('ok: ' + message);
}

async function expectError(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return null;
}

// ----------------------------------------------------------------------------------------------
// The application's data and the program's own model of it.
const cities = ['Oslo', 'Lima', 'Pune', 'Kyiv', 'Cork'];

function makePeople(n) {
  const people = [];
  for (let i = 0; i < n; i++) {
    people.push({
      _id: new ObjectId(),
      name: `person-${String(i).padStart(2, '0')}`,
      email: `p${String(i).padStart(2, '0')}@example.org`,
      city: cities[(i * 3) % cities.length],
      age: 18 + ((i * 7) % 45),
      score: new Double((i % 10) + 0.25 * (i % 4)),
      status: i % 3 === 0 ? 'active' : 'new',
      tags: ['t' + (i % 4), 'all'],
      address: { zip: String(1000 + i).padStart(5, '0'), city: cities[(i * 3) % cities.length] }
    });
  }
  return people;
}

const hex = id => id.toHexString();
const num = v => (v && typeof v === 'object' && typeof v.valueOf === 'function' ? Number(v.valueOf()) : v);

async function main() {
  check(uri && dbName, 'MONGODB_URI and STRATOS_DB must be set');
  const client = new MongoClient(uri, {
    useUnifiedTopology: true,
    useNewUrlParser: true,
    monitorCommands: true,
    serverSelectionTimeoutMS: 10000,
    appname: 'stratos-interop-node'
  });
  attachMonitor(client);
  await client.connect();
  try {
    await run(client);
  } catch (err) {
    if (err && typeof err === 'object') err.recentCommands = commandLog.slice(-4); // before close() adds more
    throw err;
  } finally {
    await client.close();
  }
}

async function run(client) {
  const db = client.db(dbName);
  const admin = client.db('admin').admin();
  const ping = await db.command({ ping: 1 });
  check(ping.ok === 1, `ping replied ${show(ping)}`);
  await db.dropDatabase();
  const people = db.collection('people');

  // 1. Indexes ---------------------------------------------------------------------------------
  const created = await people.createIndexes([
    { key: { email: 1 }, unique: true },
    { key: { city: 1, age: -1 } }
  ]);
  check(created.ok === 1 && created.numIndexesAfter === 3, () => `createIndexes replied ${show(created)}`);
  const single = await people.createIndex({ name: 1 }, { name: 'by_name' });
  check(single === 'by_name', `createIndex returned ${show(single)}`);
  await people.dropIndex('by_name');
  const indexes = await people.indexes();
  const byName = Object.fromEntries(indexes.map(ix => [ix.name, ix]));
  check(indexes.length === 3, () => `listIndexes returned ${show(indexes)}`);
  const wantKeys = { _id_: [['_id', 1]], email_1: [['email', 1]], 'city_1_age_-1': [['city', 1], ['age', -1]] };
  for (const [name, keys] of Object.entries(wantKeys)) {
    check(byName[name], () => `index ${name} missing from listIndexes: ${show(indexes)}`);
    const got = Object.entries(byName[name].key).map(([k, v]) => [k, num(v)]);
    check(JSON.stringify(got) === JSON.stringify(keys), () => `index ${name} key ${show(byName[name].key)}, want ${show(keys)}`);
  }
  check(byName.email_1.unique === true, () => `email_1 is not unique: ${show(byName.email_1)}`);
  check(!byName['city_1_age_-1'].unique, 'city_1_age_-1 is reported unique');
  ok('1 indexes: createIndexes (email unique, {city: 1, age: -1}), createIndex/dropIndex by name; listIndexes names and keys in order');

  // 2. Mixed BSON types ------------------------------------------------------------------------
  const misc = db.collection('misc');
  const when = new Date(Date.UTC(2024, 1, 29, 13, 45, 7, 123));
  const blob = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x78]);
  const uuid = Buffer.from('123456789abc4def8123456789abcdef', 'hex');
  const refId = new ObjectId();
  const special = {
    _id: new ObjectId(),
    title: 'Zürich – 東京 ✓',
    when,
    blob: new Binary(blob, 0),
    uuid: new Binary(uuid, 4),
    ref: refId,
    big: Long.fromString('4398046511111'), // 2^42 + 7
    huge: Long.fromString('-9007199254740993'), // beyond 2^53: must stay exact
    small: new Int32(-17),
    ratio: 0.1,
    whole: new Double(3), // a double that looks like an integer must stay a double
    price: Decimal128.fromString('12.5'),
    flag: true,
    nothing: null,
    nested: { a: { b: 1, c: ['x', Long.fromNumber(2)] }, z: false },
    mixed: [1, 'two', new Double(3), { four: 4 }, [5], null, Long.fromNumber(6)],
    empty: []
  };
  const one = await misc.insertOne(special);
  check(one.insertedCount === 1 && hex(one.insertedId) === hex(special._id), () => `insertOne returned ${show(one)}`);
  const bulk = await misc.insertMany([
    { kind: 'a', when: new Date(when.getTime() + 3600e3), n: Long.fromString('-1099511627776') },
    { kind: 'b', bin: new Binary(Buffer.from('user-defined'), 0x80), n: 2.75 },
    { kind: 'c', n: null, arr: [{ k: 1 }, { k: 2 }] }
  ]);
  check(bulk.insertedCount === 3 && Object.keys(bulk.insertedIds).length === 3, () => `insertMany returned ${show(bulk)}`);
  // promoteValues: false keeps the BSON wrappers (Int32, Double, Long) so types can be checked.
  const raw = await misc.findOne({ _id: special._id }, { promoteValues: false, promoteLongs: false });
  check(raw, 'the mixed-types document is missing');
  check(JSON.stringify(Object.keys(raw)) === JSON.stringify(Object.keys(special)),
    () => `field order ${Object.keys(raw)}, want ${Object.keys(special)}`);
  const typeIs = (value, t, what) =>
    check(value !== null && value !== undefined && value._bsontype === t, () => `${what} came back as ${value && value._bsontype} ${show(value)}, want ${t}`);
  check(raw.title === special.title, `title came back as ${raw.title}`);
  check(raw.when instanceof Date && raw.when.getTime() === when.getTime(), () => `when came back as ${show(raw.when)}`);
  typeIs(raw.blob, 'Binary', 'blob');
  check(raw.blob.sub_type === 0 && raw.blob.value(true).equals(blob), () => `blob came back as subtype ${raw.blob.sub_type} ${raw.blob.value(true).toString('hex')}`);
  typeIs(raw.uuid, 'Binary', 'uuid');
  check(raw.uuid.sub_type === 4 && raw.uuid.value(true).equals(uuid), () => `uuid came back as subtype ${raw.uuid.sub_type}`);
  typeIs(raw.ref, 'ObjectID', 'ref');
  check(raw.ref.equals(refId), 'ref changed');
  typeIs(raw.big, 'Long', 'big');
  check(raw.big.toString() === '4398046511111', `big came back as ${raw.big}`);
  typeIs(raw.huge, 'Long', 'huge');
  check(raw.huge.toString() === '-9007199254740993', `huge came back as ${raw.huge}`);
  typeIs(raw.small, 'Int32', 'small');
  check(raw.small.valueOf() === -17, `small came back as ${raw.small}`);
  typeIs(raw.ratio, 'Double', 'ratio');
  check(raw.ratio.valueOf() === 0.1, `ratio came back as ${raw.ratio}`);
  typeIs(raw.whole, 'Double', 'whole');
  check(raw.whole.valueOf() === 3, `whole came back as ${raw.whole}`);
  typeIs(raw.price, 'Decimal128', 'price');
  check(raw.price.toString() === '12.5', `price came back as ${raw.price}`);
  check(raw.flag === true, 'flag');
  check(raw.nothing === null && 'nothing' in raw, 'nothing is not null');
  typeIs(raw.nested.a.b, 'Int32', 'nested.a.b');
  typeIs(raw.nested.a.c[1], 'Long', 'nested.a.c[1]');
  check(raw.nested.a.c[0] === 'x' && raw.nested.z === false, () => `nested came back as ${show(raw.nested)}`);
  const mixedTypes = raw.mixed.map(v => (v === null ? 'null' : Array.isArray(v) ? 'array' : v._bsontype || typeof v));
  check(JSON.stringify(mixedTypes) === JSON.stringify(['Int32', 'string', 'Double', 'object', 'array', 'null', 'Long']),
    () => `mixed array came back with types ${mixedTypes}`);
  check(Array.isArray(raw.empty) && raw.empty.length === 0, 'empty array');
  // Default (promoted) reading, as an application would.
  const b = await misc.findOne({ _id: bulk.insertedIds[1] });
  check(b && b.bin.sub_type === 0x80 && b.bin.value(true).toString() === 'user-defined' && b.n === 2.75, () => `bulk document b came back as ${show(b)}`);
  const a = await misc.findOne({ kind: 'a' }, { promoteLongs: false });
  check(a && a.n._bsontype === 'Long' && a.n.toString() === '-1099511627776' && a.when.getTime() === when.getTime() + 3600e3 &&
    hex(a._id) === hex(bulk.insertedIds[0]), () => `bulk document a came back as ${show(a)}`);
  const nulls = await misc.countDocuments({ n: null });
  check(nulls === 2, `countDocuments {n: null} = ${nulls}, want 2 (explicit null + missing field)`);
  ok('2 mixed BSON types: insertOne + insertMany; Date, Binary (subtypes 0, 4, 0x80), ObjectId, Int32, Long (also beyond 2^53), Double (also integral), Decimal128, bool, null, nested documents, arrays and field order round-tripped');

  // The data set for the remaining checks.
  const model = makePeople(60);
  const inserted = await people.insertMany(model.map(p => ({ ...p })));
  check(inserted.insertedCount === 60, `insertMany people inserted ${inserted.insertedCount}`);

  // 3. Filtered, sorted, skipped, limited find -----------------------------------------------------
  const expect3 = model.filter(p => p.age >= 30)
    .sort((x, y) => (y.age - x.age) || (hex(x._id) < hex(y._id) ? -1 : hex(x._id) > hex(y._id) ? 1 : 0))
    .slice(3, 8).map(p => hex(p._id));
  const page = await people.find({ age: { $gte: 30 } }).sort({ age: -1, _id: 1 }).skip(3).limit(5).toArray();
  const got3 = page.map(d => hex(d._id));
  check(JSON.stringify(got3) === JSON.stringify(expect3), () => `find age>=30 sort {age:-1,_id:1} skip 3 limit 5 = ${got3}, want ${expect3}`);
  ok(`3 find {age: {$gte: 30}}.sort({age: -1, _id: 1}).skip(3).limit(5) = the program's own answer (ages ${page.map(d => d.age)})`);

  // 4. Multi-batch cursor ------------------------------------------------------------------------
  getMoreBatches = [];
  const cursor = people.find({}).batchSize(7);
  const seen = new Map();
  while (await cursor.hasNext()) {
    const doc = await cursor.next();
    seen.set(hex(doc._id), (seen.get(hex(doc._id)) || 0) + 1);
  }
  await cursor.close();
  const batches = getMoreBatches;
  getMoreBatches = null;
  check(batches.every(n => n <= 7), `a getMore returned more than 7 documents: ${batches}`);
  check(seen.size === 60 && model.every(p => seen.get(hex(p._id)) === 1),
    () => `cursor returned ${seen.size} distinct documents (${[...seen.values()].reduce((s, n) => s + n, 0)} in all), want 60 once each`);
  check(7 + batches.reduce((s, n) => s + n, 0) === 60 && batches.length >= 8, `first batch 7 + getMores ${batches} != 60`);
  ok(`4 cursor with batchSize(7): 60 documents, none twice, first batch 7 + ${batches.length} getMores [${batches}]`);

  // 5. Counts and distinct --------------------------------------------------------------------------
  const wantOld = model.filter(p => p.age >= 30).length;
  const wantOslo = model.filter(p => p.city === 'Oslo').length;
  const cd = await people.countDocuments({ age: { $gte: 30 } });
  check(cd === wantOld, `countDocuments age>=30 = ${cd}, want ${wantOld}`);
  const cdPaged = await people.countDocuments({ age: { $gte: 30 } }, { skip: 2, limit: 5 });
  check(cdPaged === 5, `countDocuments skip 2 limit 5 = ${cdPaged}, want 5`);
  const legacy = await people.count({ city: 'Oslo' }); // the legacy `count` command
  check(legacy === wantOslo, `count({city: 'Oslo'}) = ${legacy}, want ${wantOslo}`);
  const legacySkip = await people.count({ city: 'Oslo' }, { skip: 10, limit: 100 });
  check(legacySkip === Math.max(0, wantOslo - 10), `count with skip 10 = ${legacySkip}, want ${wantOslo - 10}`);
  const est = await people.estimatedDocumentCount();
  check(est === 60, `estimatedDocumentCount = ${est}, want 60`);
  const distinctCities = (await people.distinct('city')).sort();
  check(JSON.stringify(distinctCities) === JSON.stringify([...cities].sort()), `distinct city = ${distinctCities}`);
  const osloTags = (await people.distinct('tags', { city: 'Oslo' })).sort();
  const wantTags = [...new Set(model.filter(p => p.city === 'Oslo').flatMap(p => p.tags))].sort();
  check(JSON.stringify(osloTags) === JSON.stringify(wantTags), `distinct tags for Oslo = ${osloTags}, want ${wantTags}`);
  ok(`5 countDocuments=${cd} (skip/limit: 5), legacy count command=${legacy} (with skip: ${legacySkip}), estimatedDocumentCount=${est}, distinct city=[${distinctCities}], distinct over an array field`);

  // 9. Aggregation and projection (before the updates change the data) -----------------------------
  const groups = new Map();
  for (const p of model) {
    const g = groups.get(p.city) || { sum: 0, n: 0 };
    g.sum += p.age;
    g.n += 1;
    groups.set(p.city, g);
  }
  const wantAgg = [...groups.entries()].map(([city, g]) => ({ city, avg: g.sum / g.n, n: g.n }))
    .sort((x, y) => (y.avg - x.avg) || (x.city < y.city ? -1 : 1));
  const agg = await people.aggregate([
    { $group: { _id: '$city', avgAge: { $avg: '$age' }, n: { $sum: 1 } } },
    { $sort: { avgAge: -1, _id: 1 } }
  ]).toArray();
  check(agg.length === wantAgg.length, () => `aggregate returned ${show(agg)}`);
  agg.forEach((row, i) => check(row._id === wantAgg[i].city && Math.abs(row.avgAge - wantAgg[i].avg) < 1e-9 && row.n === wantAgg[i].n,
    () => `aggregate row ${i} = ${show(row)}, want ${show(wantAgg[i])}`));
  const projected = await people.find({ city: 'Oslo' }, { projection: { name: 1, 'address.zip': 1, _id: 0 } }).sort({ name: 1 }).toArray();
  const oslo = model.filter(p => p.city === 'Oslo').sort((x, y) => (x.name < y.name ? -1 : 1));
  check(projected.length === oslo.length, `projection find returned ${projected.length}, want ${oslo.length}`);
  projected.forEach((d, i) => check(JSON.stringify(d) === JSON.stringify({ name: oslo[i].name, address: { zip: oslo[i].address.zip } }),
    () => `projected document ${i} = ${show(d)}`));
  const excl = await people.findOne({ _id: model[0]._id }, { projection: { tags: 0, address: 0, score: 0 } });
  check(JSON.stringify(Object.keys(excl)) === JSON.stringify(['_id', 'name', 'email', 'city', 'age', 'status']),
    () => `exclusion projection kept ${Object.keys(excl)}`);
  ok(`9 aggregate $group/$avg/$sort = own computation (${agg.length} cities, top ${agg[0]._id} ${agg[0].avgAge.toFixed(3)}); inclusion projection {name, address.zip, _id: 0} and exclusion projection`);

  // 6. Updates ------------------------------------------------------------------------------------
  const target = model[5];
  let r = await people.updateOne({ _id: target._id }, {
    $set: { status: 'vip', 'address.zip': '99999' },
    $inc: { age: 2, score: 0.5 },
    $push: { tags: 'pushed' }
  });
  check(r.matchedCount === 1 && r.modifiedCount === 1 && r.upsertedId === null, () => `updateOne result ${show(r.result)}`);
  const back = await people.findOne({ _id: target._id }, { promoteValues: false });
  check(back.status === 'vip' && back.age.valueOf() === target.age + 2 && back.age._bsontype === 'Int32' &&
    back.score.valueOf() === target.score.valueOf() + 0.5 && JSON.stringify(back.tags) === JSON.stringify([...target.tags, 'pushed']) &&
    back.address.zip === '99999' && back.address.city === target.city, () => `after $set/$inc/$push the document is ${show(back)}`);
  target.age += 2;
  const lima = model.filter(p => p.city === 'Lima');
  const wantModified = lima.filter(p => p.status !== 'active').length;
  r = await people.updateMany({ city: 'Lima' }, { $set: { status: 'active' } });
  check(r.matchedCount === lima.length && r.modifiedCount === wantModified && wantModified < lima.length,
    () => `updateMany matched ${r.matchedCount} modified ${r.modifiedCount}, want ${lima.length} / ${wantModified}`);
  r = await people.updateOne({ email: 'newcomer@example.org' },
    { $set: { name: 'newcomer', city: 'Cork' }, $setOnInsert: { age: 40 } }, { upsert: true });
  check(r.upsertedCount === 1 && r.matchedCount === 0 && r.upsertedId && r.upsertedId._id instanceof ObjectId,
    () => `upsert result ${show(r.result)} upsertedId ${show(r.upsertedId)}`);
  const upId = r.upsertedId._id;
  const up = await people.findOne({ _id: upId });
  check(up && up.email === 'newcomer@example.org' && up.name === 'newcomer' && up.age === 40, () => `upserted document ${show(up)}`);
  r = await people.updateOne({ email: 'newcomer@example.org' }, { $set: { city: 'Cork' }, $setOnInsert: { age: 99 } }, { upsert: true });
  check(r.matchedCount === 1 && r.modifiedCount === 0 && r.upsertedId === null, () => `repeated upsert gave ${show(r.result)}`);
  model.push({ _id: upId, email: 'newcomer@example.org', city: 'Cork', age: 40 });
  ok(`6 updateOne $set/$inc/$push read back; updateMany matched ${lima.length} modified ${wantModified}; upsert inserted _id ${hex(upId)}; repeated upsert matched 1 modified 0`);

  // 7. findAndModify returning the new document --------------------------------------------------
  const fam = model[7];
  let fr = await people.findOneAndUpdate({ email: fam.email }, { $inc: { age: 1 }, $set: { score: 100.5 } }, { returnOriginal: false });
  check(fr.ok === 1 && fr.value && hex(fr.value._id) === hex(fam._id) && fr.value.age === fam.age + 1 && fr.value.score === 100.5,
    () => `findOneAndUpdate returnOriginal:false gave ${show(fr)}, want age ${fam.age + 1}`);
  check(fr.lastErrorObject && fr.lastErrorObject.updatedExisting === true && fr.lastErrorObject.n === 1, () => `lastErrorObject ${show(fr.lastErrorObject)}`);
  fam.age += 1;
  fr = await people.findOneAndUpdate({ email: fam.email }, { $inc: { age: 1 } }, { projection: { age: 1 } });
  check(fr.value && fr.value.age === fam.age && Object.keys(fr.value).join() === '_id,age', () => `findOneAndUpdate (original) gave ${show(fr)}`);
  fam.age += 1;
  fr = await people.findOneAndUpdate({ email: 'nobody@example.org' }, { $set: { x: 1 } }, { returnOriginal: false });
  check(fr.value === null, () => `findOneAndUpdate without a match gave ${show(fr)}`);
  fr = await people.findOneAndUpdate({ email: 'late@example.org' }, { $set: { age: 77, city: 'Oslo' } }, { upsert: true, returnOriginal: false });
  check(fr.value && fr.value.email === 'late@example.org' && fr.value.age === 77 && fr.lastErrorObject.upserted,
    () => `findOneAndUpdate upsert gave ${show(fr)}`);
  model.push({ _id: fr.value._id, email: 'late@example.org', city: 'Oslo', age: 77 });
  ok(`7 findOneAndUpdate returnOriginal:false returns the new document (age ${fam.age - 1}, score 100.5); the default returns the original; no match gives null; upsert returns the new document`);

  // 8. Duplicate keys -------------------------------------------------------------------------------
  let err = await expectError(people.insertOne({ name: 'clone', email: model[3].email }));
  check(err instanceof MongoError, () => `duplicate insertOne gave ${err}, want a MongoError`);
  check(err.code === 11000 && /E11000/.test(err.message), () => `duplicate insertOne error code ${err.code} message ${err.message}`);
  const before = await people.countDocuments({});
  const extra = [];
  for (let i = 0; i < 6; i++) extra.push({ _id: new ObjectId(), name: `extra-${i}`, email: `extra${i}@example.org`, city: 'Pune', age: 50 + i });
  extra[2].email = model[10].email; // duplicate of a stored document
  extra[4].email = extra[3].email; // duplicate inside the batch
  err = await expectError(people.insertMany(extra, { ordered: false }));
  check(err instanceof MongoError && err.code === 11000, () => `unordered insertMany gave ${err}, want a MongoError with code 11000`);
  check(err.result && err.result.nInserted === 4, () => `unordered insertMany reported nInserted ${err.result && err.result.nInserted}, want 4`);
  const failedAt = (err.writeErrors || []).map(e => e.index);
  check(JSON.stringify(failedAt) === '[2,4]' && err.writeErrors.every(e => e.code === 11000), () => `unordered write errors ${show(err.writeErrors)}`);
  const after = await people.countDocuments({});
  check(after - before === 4, `unordered insertMany stored ${after - before}, want 4`);
  for (const i of [0, 1, 3, 5]) {
    check(await people.countDocuments({ _id: extra[i]._id }) === 1, `document ${i} of the unordered batch is missing`);
    model.push(extra[i]);
  }
  const ordered = [
    { _id: new ObjectId(), name: 'ord-0', email: 'ord0@example.org', city: 'Kyiv', age: 21 },
    { _id: new ObjectId(), name: 'ord-1', email: model[0].email, city: 'Kyiv', age: 22 },
    { _id: new ObjectId(), name: 'ord-2', email: 'ord2@example.org', city: 'Kyiv', age: 23 }
  ];
  err = await expectError(people.insertMany(ordered));
  check(err instanceof MongoError && err.code === 11000 && err.result && err.result.nInserted === 1,
    () => `ordered insertMany with a duplicate gave ${err} nInserted ${err && err.result && err.result.nInserted}, want code 11000 and 1 inserted`);
  check(await people.countDocuments({}) === after + 1, 'ordered insertMany did not stop at the duplicate');
  model.push(ordered[0]);
  ok('8 duplicate email: MongoError code 11000 (E11000); unordered insertMany inserted 4 of 6 with write errors at [2,4]; ordered insertMany stopped after 1');

  // 10. deleteMany ------------------------------------------------------------------------------------
  const wantDeleted = model.filter(p => p.age < 25).length;
  r = await people.deleteMany({ age: { $lt: 25 } });
  check(r.deletedCount === wantDeleted && wantDeleted > 0, `deleteMany age<25 deleted ${r.deletedCount}, want ${wantDeleted}`);
  const remaining = await people.countDocuments({});
  check(remaining === model.length - wantDeleted, `${remaining} documents remain, want ${model.length - wantDeleted}`);
  r = await people.deleteOne({ _id: target._id });
  check(r.deletedCount === 1, `deleteOne deleted ${r.deletedCount}`);
  r = await people.deleteMany({ age: { $lt: 0 } });
  check(r.deletedCount === 0, `deleteMany of nothing deleted ${r.deletedCount}`);
  ok(`10 deleteMany {age: {$lt: 25}} deleted ${wantDeleted}, ${remaining} remain; deleteOne deleted 1; deleteMany of nothing deleted 0`);

  // 11. Unknown command ---------------------------------------------------------------------------------
  err = await expectError(db.command({ noSuchCommand: 1 }));
  check(err instanceof MongoError, () => `unknown command gave ${err}, want a MongoError`);
  check(err.code === 59, () => `unknown command gave code ${err.code} (${err.codeName}: ${err.message}), want 59`);
  const pong = await admin.ping();
  check(pong.ok === 1, `ping after the unknown command replied ${show(pong)}`);
  check(await people.countDocuments({}) === remaining - 1, 'queries fail after the unknown command');
  ok(`11 unknown command: MongoError code 59 (${err.codeName}); ping and queries still work`);

  // 12. listCollections and dropDatabase ----------------------------------------------------------------
  const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map(c => c.name).sort();
  check(JSON.stringify(names) === '["misc","people"]', `listCollections names ${names}`);
  const full = await db.listCollections({ name: 'people' }).toArray();
  check(full.length === 1 && full[0].type === 'collection', () => `listCollections {name: people} = ${show(full)}`);
  let dbs = (await admin.listDatabases()).databases.map(d => d.name);
  check(dbs.includes(dbName), `listDatabases ${dbs} lacks ${dbName}`);
  const dropped = await db.dropDatabase();
  check(dropped === true, `dropDatabase returned ${show(dropped)}`);
  dbs = (await admin.listDatabases()).databases.map(d => d.name);
  check(!dbs.includes(dbName), `listDatabases ${dbs} still has ${dbName} after dropDatabase`);
  const left = await db.listCollections().toArray();
  check(left.length === 0, () => `listCollections after dropDatabase = ${show(left)}`);
  ok(`12 listCollections = [${names}]; dropDatabase removed ${dbName} from listDatabases`);

  console.log(`node driver ${require('mongodb/package.json').version} on node ${process.version}: all 12 checks passed`);
}

main().then(
  () => process.exit(0),
  err => {
    const recent = (err && err.recentCommands) || commandLog.slice(-4);
    if (recent.length) {
      console.error('last commands the driver sent:');
      for (const e of recent) console.error(`  -> ${e.command}\n     <- ${e.outcome}`);
    }
    const detail = err instanceof CheckFailure ? err.message
      : `${err && err.name}: ${err && err.message}${err && err.code !== undefined ? ` (code ${err.code})` : ''}\n${err && err.stack}`;
    // Keep the one-line reason last: the harness shows the last line.
    if (!(err instanceof CheckFailure)) console.error(detail);
    console.error('FAIL: ' + (err instanceof CheckFailure ? detail : `${err && err.name}: ${err && err.message}`));
    process.exit(1);
  }
);
