# StratosDB interoperability program for the Ruby driver (ruby-mongo 2.5, Debian).
#
# A small "people directory" application: it creates indexes, inserts typed and bulk data,
# queries, counts, updates, aggregates and deletes through the driver's ordinary API, and
# checks every answer against its own computation from the data it inserted.
# Prints "ok: <what>" per check; exits 1 with "FAIL: ..." on the first failure.
#
# Reads MONGODB_URI (e.g. mongodb://127.0.0.1:PORT/) and STRATOS_DB (database to use).

require 'uri'
# ruby-mongo 2.5 calls URI.decode, which Ruby 3.0 removed. Restore it (client-side shim only;
# it is exactly what Ruby 2.x did) so the driver can parse the connection string.
unless URI.respond_to?(:decode)
  module URI
    def self.decode(str)
      URI::DEFAULT_PARSER.unescape(str)
    end
  end
end

require 'mongo'
require 'set'

Mongo::Logger.logger.level = Logger::FATAL

class CheckFailed < StandardError; end

def check(condition, what)
  raise CheckFailed, what unless condition
end

def expect_eq(actual, expected, what)
  return if actual == expected
  raise CheckFailed, "#{what}: expected #{expected.inspect}, got #{actual.inspect}"
end

# ruby-mongo 2.5's OperationFailure has no #code: the driver appends "(<code>)" to each
# server error message it reports, so that is where its error API exposes the code.
def error_codes(error)
  error.message.scan(/\((\d+)\)/).flatten.map(&:to_i)
end

def ok(what)
  puts "ok: #{what}"
  $stdout.flush
end

# Records every command the driver sends (to count getMores and show what was sent on failure)
# and every successful reply (write errors arrive inside ok:1 replies).
class CommandLog
  attr_reader :replies

  def initialize
    @started = []
    @replies = []
  end

  # The driver calls started(event); with no argument this returns the events seen so far.
  def started(event = nil)
    return @started if event.nil?
    @started << event
  end

  def succeeded(event)
    @replies << event
  end

  def failed(_event); end

  def names_since(mark)
    @started[mark..-1].map(&:command_name).map(&:to_s)
  end
end

uri = ENV.fetch('MONGODB_URI')
db_name = ENV.fetch('STRATOS_DB')
t0 = Time.now

log = CommandLog.new
client = Mongo::Client.new(uri, database: db_name, server_selection_timeout: 5, connect_timeout: 5,
                                socket_timeout: 10)
client.subscribe(Mongo::Monitoring::COMMAND, log)
db = client.database
# Typed comparisons use the raw reply; keep everything else in plain Ruby values.
people = db[:people]
types = db[:types]

begin
  db.drop
  expect_eq(db.command(ping: 1).documents.first['ok'], 1.0, 'ping before starting')

  # ---------------------------------------------------------------- 1. indexes
  people.indexes.create_one({ email: 1 }, unique: true)
  people.indexes.create_one({ city: 1, age: -1 })
  specs = people.indexes.to_a
  by_name = specs.each_with_object({}) { |s, h| h[s['name']] = s }
  expect_eq(by_name.keys.sort, ['_id_', 'city_1_age_-1', 'email_1'], 'index names')
  expect_eq(by_name['_id_']['key'].to_a, [['_id', 1]], '_id_ key')
  expect_eq(by_name['email_1']['key'].to_a, [['email', 1]], 'email_1 key')
  expect_eq(by_name['email_1']['unique'], true, 'email_1 unique flag')
  expect_eq(by_name['city_1_age_-1']['key'].to_a, [['city', 1], ['age', -1]], 'compound key (order matters)')
  check(!by_name['city_1_age_-1']['unique'], 'compound index must not be unique')
  ok('indexes: unique email_1 and compound city_1_age_-1 created and listed with their keys')

  # ---------------------------------------------------------------- 2. typed + bulk inserts
  oid = BSON::ObjectId.new
  when_t = Time.at(1_709_251_198, 123, :millisecond).utc # 2024-02-29T23:59:58.123Z
  blob = BSON::Binary.new("\x00\x01\x02\xFFbinary".b, :generic)
  uuid_bin = BSON::Binary.new(['12345678123456781234567812345678'].pack('H*'), :uuid)
  big = 1_234_567_890_123 # needs 64 bits
  typed = {
    '_id' => oid, 'when' => when_t, 'blob' => blob, 'uuid' => uuid_bin, 'big' => big,
    'small' => 42, 'ratio' => 3.25, 'neg' => -0.5, 'text' => "naïve café — 東京",
    'flag' => true, 'nothing' => nil,
    'nested' => { 'a' => { 'b' => [1, 'two', { 'c' => nil }] }, 'n' => 7 },
    'arr' => [1, 'x', 2.5, nil, [3], { 'k' => 'v' }], 'ref' => BSON::ObjectId.from_string('65a1b2c3d4e5f60718293a4b')
  }
  res = types.insert_one(typed)
  expect_eq(res.n, 1, 'insert_one n')
  back = types.find(_id: oid).first
  check(back, 'typed document not found by its ObjectId')
  expect_eq(back.keys, typed.keys, 'field order of the typed document')
  check(back['_id'].is_a?(BSON::ObjectId) && back['_id'] == oid, "ObjectId _id round trip: #{back['_id'].inspect}")
  check(back['when'].is_a?(Time) && (back['when'].to_f * 1000).round == 1_709_251_198_123,
        "date round trip: #{back['when'].inspect}")
  check(back['blob'].is_a?(BSON::Binary) && back['blob'].type == :generic && back['blob'].data.b == "\x00\x01\x02\xFFbinary".b,
        "generic binary round trip: #{back['blob'].inspect}")
  check(back['uuid'].is_a?(BSON::Binary) && back['uuid'].type == :uuid && back['uuid'].data.b == uuid_bin.data.b,
        "uuid binary round trip: #{back['uuid'].inspect}")
  check(back['big'].is_a?(Integer) && back['big'] == big, "int64 round trip: #{back['big'].inspect}")
  check(back['small'].is_a?(Integer) && back['small'] == 42, "int32 round trip: #{back['small'].inspect}")
  check(back['ratio'].is_a?(Float) && back['ratio'] == 3.25, "double round trip: #{back['ratio'].inspect}")
  check(back['neg'].is_a?(Float) && back['neg'] == -0.5, "negative double round trip: #{back['neg'].inspect}")
  expect_eq(back['text'], "naïve café — 東京", 'utf-8 string round trip')
  expect_eq(back['flag'], true, 'boolean round trip')
  check(back.key?('nothing') && back['nothing'].nil?, 'null round trip')
  expect_eq(back['nested'], typed['nested'], 'nested document round trip')
  expect_eq(back['arr'], typed['arr'], 'array round trip')
  expect_eq(back['ref'], typed['ref'], 'second ObjectId round trip')
  # Ruby decodes int32 and int64 both to Integer: ask the server which BSON type it stored.
  { 'big' => 'long', 'small' => 'int', 'ratio' => 'double', 'when' => 'date', 'blob' => 'binData',
    'nothing' => 'null', 'nested' => 'object', 'arr' => 'array', '_id' => 'objectId', 'flag' => 'bool' }.each do |field, type|
    n = types.find(field => { '$type' => type }).count
    expect_eq(n, 1, "server-side $type of #{field} should be #{type}")
  end

  cities = %w[Paris Oslo Lima Kyoto]
  model = (0...60).map do |i|
    {
      '_id' => i, 'name' => "user#{i}", 'email' => "user#{i}@example.com", 'city' => cities[i % 4],
      'age' => 18 + (i * 17) % 50, 'score' => (i * 37 % 101) / 4.0 + 0.25, 'active' => i % 3 != 0,
      'tags' => ["t#{i % 5}", "g#{i % 2}"], 'address' => { 'street' => "#{i} Main St", 'zip' => format('%05d', 10_000 + i) },
      'joined' => Time.at(1_700_000_000 + i * 86_400).utc
    }
  end
  first = people.insert_one(model[0])
  expect_eq(first.n, 1, 'insert_one of the first person')
  bulk = people.insert_many(model[1..-1])
  expect_eq(bulk.inserted_count, 59, 'insert_many inserted_count')
  expect_eq(bulk.inserted_ids, (1...60).to_a, 'insert_many inserted_ids')
  expect_eq(people.find.count, 60, 'people count after inserts')
  p17 = people.find(_id: 17).first
  expect_eq(p17, model[17], 'person 17 read back whole (nested doc, array, date, double)')
  ok('inserts: typed document (date, binary x2, ObjectId, int64, int32, doubles, nested, array, null) round-tripped; 1 + 59 people inserted')

  # ---------------------------------------------------------------- 3. filtered/sorted/skipped/limited find
  expected = model.select { |d| d['age'] >= 30 }.sort_by { |d| [-d['age'], d['_id']] }.drop(3).first(5).map { |d| d['_id'] }
  got = people.find('age' => { '$gte' => 30 }).sort('age' => -1, '_id' => 1).skip(3).limit(5).map { |d| d['_id'] }
  expect_eq(got, expected, 'find age>=30 sort age desc,_id asc skip 3 limit 5')
  ok("find: age >= 30, sort {age:-1,_id:1}, skip 3, limit 5 -> #{got.inspect}")

  # ---------------------------------------------------------------- 4. multi-batch cursor
  mark = log.started.size
  seen = []
  people.find({}, batch_size: 7).each { |d| seen << d['_id'] }
  get_mores = log.names_since(mark).count('getMore')
  expect_eq(seen.size, 60, 'documents through a batchSize 7 cursor')
  expect_eq(seen.uniq.size, 60, 'distinct documents through the cursor (none twice)')
  expect_eq(seen.sort, (0...60).to_a, 'every document arrived')
  check(get_mores >= 8, "expected at least 8 getMore commands for 60 docs in batches of 7, saw #{get_mores}")
  ok("cursor: 60 documents in batches of 7 (#{get_mores} getMores), none missing or repeated")

  # ---------------------------------------------------------------- 5. counts and distinct
  paris = model.count { |d| d['city'] == 'Paris' }
  expect_eq(people.count, 60, 'legacy count command, no filter')
  expect_eq(people.count(city: 'Paris'), paris, 'legacy count command, city filter')
  old = model.count { |d| d['age'] >= 40 }
  expect_eq(people.find('age' => { '$gte' => 40 }).count, old, 'find(...).count')
  expect_eq(people.count({}, skip: 10, limit: 20), 20, 'count with skip and limit')
  # ruby-mongo 2.5 predates count_documents; it is an aggregation, so do what it does.
  agg_count = people.aggregate([{ '$match' => { 'city' => 'Paris' } }, { '$group' => { '_id' => 1, 'n' => { '$sum' => 1 } } }]).first
  expect_eq(agg_count && agg_count['n'], paris, 'count_documents-style $match/$group count')
  expect_eq(people.distinct('city').sort, cities.sort, 'distinct city')
  expect_eq(people.find('age' => { '$lt' => 25 }).distinct('city').sort,
            model.select { |d| d['age'] < 25 }.map { |d| d['city'] }.uniq.sort, 'distinct city with a filter')
  expect_eq(people.distinct('tags').sort, model.flat_map { |d| d['tags'] }.uniq.sort, 'distinct over array elements')
  ok("counts: count=60, Paris=#{paris}, age>=40=#{old}; distinct cities and tags")

  # ---------------------------------------------------------------- 6. updates
  r = people.update_one({ _id: 0 }, { '$set' => { 'status' => 'vip' }, '$inc' => { 'age' => 1 }, '$push' => { 'tags' => 'new' } })
  expect_eq([r.matched_count, r.modified_count], [1, 1], 'update_one matched/modified')
  model[0]['age'] += 1
  model[0]['status'] = 'vip'
  model[0]['tags'] += ['new']
  u0 = people.find(_id: 0).first
  expect_eq([u0['status'], u0['age'], u0['tags']], [model[0]['status'], model[0]['age'], model[0]['tags']],
            '$set/$inc/$push results')
  pre_gold = model.select { |d| d['city'] == 'Paris' && d['_id'] % 8 == 0 }.map { |d| d['_id'] }
  r = people.update_many({ '_id' => { '$in' => pre_gold } }, { '$set' => { 'tier' => 'gold' } })
  expect_eq([r.matched_count, r.modified_count], [pre_gold.size, pre_gold.size], 'pre-setting gold tier')
  r = people.update_many({ 'city' => 'Paris' }, { '$set' => { 'tier' => 'gold' } })
  expect_eq([r.matched_count, r.modified_count], [paris, paris - pre_gold.size],
            'update_many matched/modified when some already hold the value')
  model.each { |d| d['tier'] = 'gold' if d['city'] == 'Paris' }
  r = people.update_one({ 'email' => 'new@example.com' }, { '$set' => { 'name' => 'Newcomer' } }, upsert: true)
  expect_eq([r.matched_count, r.modified_count], [0, 0], 'upsert matched/modified')
  check(r.upserted_id.is_a?(BSON::ObjectId), "upserted_id should be an ObjectId, got #{r.upserted_id.inspect}")
  up = people.find(_id: r.upserted_id).first
  expect_eq(up, { '_id' => r.upserted_id, 'email' => 'new@example.com', 'name' => 'Newcomer' }, 'upserted document')
  ok("updates: $set/$inc/$push; update_many matched #{paris} modified #{paris - pre_gold.size}; upsert id #{r.upserted_id}")

  # ---------------------------------------------------------------- 7. findAndModify returning the new document
  doc = people.find_one_and_update({ _id: 5 }, { '$inc' => { 'visits' => 1 }, '$set' => { 'seen' => true } },
                                   return_document: :after)
  expect_eq([doc && doc['_id'], doc && doc['visits'], doc && doc['seen']], [5, 1, true], 'find_one_and_update :after')
  doc = people.find_one_and_update({ _id: 5 }, { '$inc' => { 'visits' => 1 } }, return_document: :after)
  expect_eq(doc && doc['visits'], 2, 'second find_one_and_update :after')
  before = people.find_one_and_update({ _id: 5 }, { '$inc' => { 'visits' => 1 } }, return_document: :before)
  expect_eq(before && before['visits'], 2, 'find_one_and_update :before returns the old document')
  none = people.find_one_and_update({ _id: 'missing' }, { '$set' => { 'x' => 1 } }, return_document: :after)
  check(none.nil?, "find_one_and_update on no match should return nil, got #{none.inspect}")
  ok('findAndModify: returns the new document (visits 1 then 2), the old one on :before, nil on no match')

  # ---------------------------------------------------------------- 8. duplicate keys
  begin
    people.insert_one('_id' => 1000, 'email' => 'user1@example.com')
    raise CheckFailed, 'duplicate email insert did not raise'
  rescue Mongo::Error::OperationFailure => e
    expect_eq(error_codes(e), [11000], "duplicate key error code (message: #{e.message})")
    check(e.message.start_with?('E11000 duplicate key error'), "error message: #{e.message}")
    reply = log.replies.last
    expect_eq(reply && reply.command_name.to_s, 'insert', 'last successful reply is the insert')
    expect_eq(reply.reply['writeErrors'].map { |w| [w['index'], w['code']] }, [[0, 11000]], 'insert reply writeErrors')
    expect_eq(reply.reply['n'], 0, 'insert reply n')
  end
  batch = [
    { '_id' => 100, 'email' => 'u100@example.com' },
    { '_id' => 101, 'email' => 'user2@example.com' }, # duplicate email
    { '_id' => 102, 'email' => 'u102@example.com' },
    { '_id' => 3, 'email' => 'u3dup@example.com' },   # duplicate _id
    { '_id' => 103, 'email' => 'u103@example.com' }
  ]
  begin
    people.insert_many(batch, ordered: false)
    raise CheckFailed, 'unordered insert_many with duplicates did not raise'
  rescue Mongo::Error::BulkWriteError => e
    werrs = e.result['writeErrors'] || []
    expect_eq(werrs.map { |w| [w['index'], w['code']] }, [[1, 11000], [3, 11000]], 'unordered bulk writeErrors (index, code)')
    expect_eq(e.result['n_inserted'], 3, 'unordered bulk inserted count')
  end
  expect_eq(people.find('_id' => { '$in' => [100, 101, 102, 103] }).map { |d| d['_id'] }.sort, [100, 102, 103],
            'documents the unordered bulk insert stored')
  expect_eq(people.find(_id: 3).first['email'], 'user3@example.com', 'the existing _id 3 is untouched')
  ok('duplicate keys: insert_one raises code 11000; unordered insert_many inserted 3 of 5 with errors at indexes 1 and 3')

  # ---------------------------------------------------------------- 9. aggregation and projection
  groups = model.select { |d| d['active'] }.group_by { |d| d['city'] }.map do |city, ds|
    [city, ds.sum { |d| d['score'] } / ds.size, ds.size]
  end
  expected = groups.sort_by { |city, avg, _| [-avg, city] }
  got = people.aggregate([
                           { '$match' => { 'active' => true } },
                           { '$group' => { '_id' => '$city', 'avgScore' => { '$avg' => '$score' }, 'n' => { '$sum' => 1 } } },
                           { '$sort' => { 'avgScore' => -1, '_id' => 1 } }
                         ]).to_a
  expect_eq(got.map { |g| g['_id'] }, expected.map(&:first), 'aggregation group order')
  got.zip(expected).each do |g, (city, avg, n)|
    check((g['avgScore'] - avg).abs < 1e-9, "avgScore for #{city}: expected #{avg}, got #{g['avgScore']}")
    expect_eq(g['n'], n, "count for #{city}")
  end
  proj = people.find({ _id: 7 }, projection: { 'name' => 1, 'address.zip' => 1, '_id' => 0 }).first
  expect_eq(proj, { 'name' => 'user7', 'address' => { 'zip' => '10007' } }, 'find with inclusion projection')
  proj = people.find({ _id: 7 }).projection('tags' => 0, 'address' => 0, 'joined' => 0, 'score' => 0).first
  expect_eq(proj.keys.sort, %w[_id active age city email name].sort, 'find with exclusion projection')
  ok("aggregate: $match/$group/$avg/$sort by city = #{got.map { |g| [g['_id'], g['avgScore'].round(3)] }.inspect}; projections")

  # ---------------------------------------------------------------- 10. delete_many
  lima = model.count { |d| d['city'] == 'Lima' }
  r = people.delete_many(city: 'Lima')
  expect_eq(r.deleted_count, lima, 'delete_many deleted_count')
  expect_eq(people.count(city: 'Lima'), 0, 'no Lima documents left')
  expect_eq(people.count, 60 - lima + 1 + 3, 'documents left after delete_many')
  r = people.delete_one(_id: 100)
  expect_eq(r.deleted_count, 1, 'delete_one deleted_count')
  ok("delete: delete_many removed #{lima} Lima documents; delete_one removed 1")

  # ---------------------------------------------------------------- 11. unknown command
  begin
    db.command(noSuchCommand: 1)
    raise CheckFailed, 'unknown command did not raise'
  rescue Mongo::Error::OperationFailure => e
    expect_eq(error_codes(e), [59], "unknown command error code (message: #{e.message})")
    check(e.message.include?('noSuchCommand'), "error message should name the command: #{e.message}")
  end
  expect_eq(db.command(ping: 1).documents.first['ok'], 1.0, 'ping after the unknown command')
  expect_eq(people.find(_id: 1).first['name'], 'user1', 'a query after the unknown command')
  ok('unknown command: OperationFailure with code 59; connection still works')

  # ---------------------------------------------------------------- 12. listCollections and dropDatabase
  names = db.collection_names.sort
  expect_eq(names, %w[people types], 'collection_names')
  listed = db.list_collections.map { |c| c['name'] }.sort
  expect_eq(listed, %w[people types], 'list_collections names')
  check(client.database_names.include?(db_name), "#{db_name} should be listed before the drop")
  db.drop
  check(!client.database_names.include?(db_name), "#{db_name} still listed after dropDatabase: #{client.database_names.inspect}")
  expect_eq(db.collection_names, [], 'collections after dropDatabase')
  ok('listCollections: people, types; dropDatabase removed the database from listDatabases')

  client.close
  puts format('ruby driver (ruby-mongo %s): all 12 checks passed in %.1f s', Mongo::VERSION, Time.now - t0)
rescue CheckFailed, Mongo::Error, StandardError => e
  # (warn is silent under -W0, so write to $stderr directly)
  # Context first, the FAIL line last (the runner shows the last line as the summary).
  $stdout.flush
  last = log.started.last(3).map { |ev| "#{ev.command_name} #{ev.command.to_h.inspect[0, 300]}" }
  $stderr.puts "last commands sent:\n  #{last.join("\n  ")}" unless last.empty?
  $stderr.puts e.backtrace.first(3).map { |l| "  at #{l}" }.join("\n") unless e.is_a?(CheckFailed)
  $stderr.puts "FAIL: #{e.class}: #{e.message[0, 2000].gsub("\n", ' ')}"
  exit 1
end
