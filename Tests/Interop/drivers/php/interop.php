<?php
/*
 * StratosDB interoperability program for the PHP extension (ext-mongodb 1.15, which embeds
 * libmongoc). Uses the extension's own MongoDB\Driver API directly: Manager, BulkWrite, Query,
 * Command, Cursor, WriteResult and the exception classes.
 *
 * A small "user directory" application, checked against its own model of the data it wrote.
 * Env: MONGODB_URI, STRATOS_DB; STRATOS_TRACE=1 prints every command sent and reply received.
 * Prints "ok: <what>" per check; on the first failure prints "FAIL: ..." and exits 1.
 */

use MongoDB\BSON\Binary;
use MongoDB\BSON\ObjectId;
use MongoDB\BSON\UTCDateTime;
use MongoDB\Driver\BulkWrite;
use MongoDB\Driver\Command;
use MongoDB\Driver\Exception\BulkWriteException;
use MongoDB\Driver\Exception\CommandException;
use MongoDB\Driver\Manager;
use MongoDB\Driver\Monitoring\CommandFailedEvent;
use MongoDB\Driver\Monitoring\CommandStartedEvent;
use MongoDB\Driver\Monitoring\CommandSubscriber;
use MongoDB\Driver\Monitoring\CommandSucceededEvent;
use MongoDB\Driver\Query;

const N_USERS = 60;
const BATCH = 7;
const CITIES = ['Paris', 'Oslo', 'Lima', 'Rome'];

$check = 'setup';

function ejson($value): string
{
    try {
        return MongoDB\BSON\toCanonicalExtendedJSON(MongoDB\BSON\fromPHP(is_array($value) || is_object($value) ? $value : ['v' => $value]));
    } catch (Throwable $e) {
        return var_export($value, true);
    }
}

/** Records what the driver sends and receives (command monitoring). */
final class Recorder implements CommandSubscriber
{
    public string $lastCommand = '';
    public string $lastReply = '';
    public int $getMores = 0;
    public int $batches = 0;
    public int $maxBatch = 0;
    public ?string $lastCursorId = null;
    public int $killCursors = 0;
    public array $cursorsKilled = [];
    public bool $trace = false;

    public function commandStarted(CommandStartedEvent $event): void
    {
        $this->lastCommand = ejson($event->getCommand());
        $this->lastReply = '';
        if ($event->getCommandName() === 'getMore') {
            $this->getMores++;
        }
        if ($event->getCommandName() === 'killCursors') {
            $this->killCursors++;
        }
        if ($this->trace) {
            fwrite(STDERR, ">> {$this->lastCommand}\n");
        }
    }

    public function commandSucceeded(CommandSucceededEvent $event): void
    {
        $reply = $event->getReply();
        $this->lastReply = ejson($reply);
        $name = $event->getCommandName();
        if ($name === 'find' || $name === 'getMore') {
            $batch = $name === 'find' ? ($reply->cursor->firstBatch ?? null) : ($reply->cursor->nextBatch ?? null);
            if (is_array($batch)) {
                $this->batches++;
                $this->maxBatch = max($this->maxBatch, count($batch));
            }
            $this->lastCursorId = isset($reply->cursor->id) ? (string) $reply->cursor->id : null;
        }
        if ($name === 'killCursors') {
            $this->cursorsKilled = array_map('strval', $reply->cursorsKilled ?? []);
        }
        if ($this->trace) {
            fwrite(STDERR, "<< {$this->lastReply}\n");
        }
    }

    public function commandFailed(CommandFailedEvent $event): void
    {
        $this->lastReply = '(failed) ' . $event->getError()->getMessage();
        if ($this->trace) {
            fwrite(STDERR, "<< {$this->lastReply}\n");
        }
    }
}

$rec = new Recorder();
$rec->trace = getenv('STRATOS_TRACE') === '1';

function fail(string $message): void
{
    global $check, $rec;
    echo "FAIL: [$check] $message\n";
    if ($rec->lastCommand !== '') {
        echo "  last command sent: {$rec->lastCommand}\n";
    }
    if ($rec->lastReply !== '') {
        echo "  last reply:        {$rec->lastReply}\n";
    }
    exit(1);
}

function ok(string $what): void
{
    echo "ok: $what\n";
}

function expect(bool $condition, string $message): void
{
    if (!$condition) {
        fail($message);
    }
}

/** Strict deep comparison of what we stored with what came back (default type map). */
function same($expected, $actual, string $path): ?string
{
    if (is_object($expected) && !($expected instanceof stdClass)) {
        if (!is_object($actual) || get_class($actual) !== get_class($expected)) {
            return "$path: want " . get_class($expected) . ', got ' . (is_object($actual) ? get_class($actual) : gettype($actual));
        }
        if ($expected instanceof Binary) {
            return ($expected->getType() === $actual->getType() && $expected->getData() === $actual->getData())
                ? null : "$path: binary differs (subtype {$actual->getType()}, " . bin2hex($actual->getData()) . ')';
        }
        return ((string) $expected === (string) $actual) ? null : "$path: want $expected, got $actual";
    }
    if ($expected instanceof stdClass) {
        if (!($actual instanceof stdClass)) {
            return "$path: want a document, got " . gettype($actual);
        }
        $ek = array_keys(get_object_vars($expected));
        $ak = array_keys(get_object_vars($actual));
        if ($ek !== $ak) {
            return "$path: keys want [" . implode(',', $ek) . '], got [' . implode(',', $ak) . ']';
        }
        foreach ($ek as $k) {
            if (($r = same($expected->$k, $actual->$k, "$path.$k")) !== null) {
                return $r;
            }
        }
        return null;
    }
    if (is_array($expected)) {
        if (!is_array($actual) || array_keys($actual) !== array_keys($expected)) {
            return "$path: want an array of " . count($expected) . ', got ' . var_export($actual, true);
        }
        foreach ($expected as $i => $v) {
            if (($r = same($v, $actual[$i], "$path.$i")) !== null) {
                return $r;
            }
        }
        return null;
    }
    if ($expected !== $actual) {
        return "$path: want " . var_export($expected, true) . ' (' . gettype($expected) . '), got '
            . var_export($actual, true) . ' (' . gettype($actual) . ')';
    }
    return null;
}

function typed_doc(ObjectId $id, int $seq): stdClass
{
    $ref = new ObjectId('5f1d7a3b2c4e6a8b9c0d1e2f');
    return (object) [
        '_id' => $id,
        'kind' => 'typed',
        'seq' => $seq,
        'when' => new UTCDateTime(1700000000123 + $seq),
        'before1970' => new UTCDateTime(-31536000000),
        'blob' => new Binary("\x00\x01\x7f\x80\xfe\xffab", Binary::TYPE_GENERIC),
        'uuid' => new Binary(hex2bin('123456789abc4def8123456789abcdef'), Binary::TYPE_UUID),
        'ref' => $ref,
        'big' => 9007199254740993,          // 2^53 + 1: not exact as a double; int64 on the wire
        'neg64' => -5000000000,
        'i32' => -42,
        'ratio' => 3.25,
        'whole' => 2.0,                     // a double holding an integer must stay a double
        'tiny' => 1e-300,
        'text' => "h\u{e9}llo \u{2713}",
        'flag' => true,
        'nothing' => null,
        'nested' => (object) [
            'a' => (object) ['b' => 'deep', 'c' => [1, 2, (object) ['d' => null, 'at' => new UTCDateTime(86400000)]]],
            'n' => 7,
        ],
        'arr' => [1, 'two', 3.5, null, (object) ['x' => true], [9], $ref],
        'emptyDoc' => new stdClass(),
        'emptyArr' => [],
    ];
}

/** The BSON types the server must have stored, as its own $type reports them. */
const TYPED_TYPES = [
    'seq' => 'int', 'when' => 'date', 'before1970' => 'date', 'blob' => 'binData', 'uuid' => 'binData',
    'ref' => 'objectId', 'big' => 'long', 'neg64' => 'long', 'i32' => 'int', 'ratio' => 'double',
    'whole' => 'double', 'tiny' => 'double', 'text' => 'string', 'flag' => 'bool', 'nothing' => 'null',
    'nested' => 'object', 'arr' => 'array', 'emptyDoc' => 'object', 'emptyArr' => 'array',
];

function command(Manager $m, string $db, array $cmd): array
{
    return $m->executeCommand($db, new Command($cmd))->toArray();
}

function first(Manager $m, string $db, array $cmd): stdClass
{
    $docs = command($m, $db, $cmd);
    expect(count($docs) === 1, 'command ' . array_key_first($cmd) . ' returned ' . count($docs) . ' documents');
    return $docs[0];
}

$uri = getenv('MONGODB_URI');
$dbName = getenv('STRATOS_DB');
if (!$uri || !$dbName) {
    fwrite(STDERR, "MONGODB_URI and STRATOS_DB must be set\n");
    exit(2);
}

try {
    $m = new Manager($uri, ['appname' => 'stratosdb-interop-php']);
    $m->addSubscriber($rec);
    $users = "$dbName.users";
    $types = "$dbName.types";

    first($m, 'admin', ['ping' => 1]);
    first($m, $dbName, ['dropDatabase' => 1]);

    /* ---------- 1. indexes ---------- */
    $check = '1 indexes';
    $r = first($m, $dbName, ['createIndexes' => 'users', 'indexes' => [
        ['key' => ['email' => 1], 'name' => 'email_1', 'unique' => true],
        ['key' => ['city' => 1, 'age' => -1], 'name' => 'city_1_age_-1'],
    ]]);
    expect(($r->numIndexesAfter ?? null) === 3, 'createIndexes: want numIndexesAfter 3, got ' . ejson($r));
    $indexes = [];
    foreach ($m->executeCommand($dbName, new Command(['listIndexes' => 'users'])) as $ix) {
        $indexes[$ix->name] = $ix;
    }
    ksort($indexes);
    expect(array_keys($indexes) === ['_id_', 'city_1_age_-1', 'email_1'],
        'listIndexes names: ' . implode(', ', array_keys($indexes)));
    expect(get_object_vars($indexes['_id_']->key) == ['_id' => 1], '_id_ key: ' . ejson($indexes['_id_']));
    expect(get_object_vars($indexes['email_1']->key) === ['email' => 1] && ($indexes['email_1']->unique ?? false) === true,
        'email_1 must be {email: 1} and unique: ' . ejson($indexes['email_1']));
    expect(get_object_vars($indexes['city_1_age_-1']->key) === ['city' => 1, 'age' => -1],
        'compound key must be {city: 1, age: -1} in that order: ' . ejson($indexes['city_1_age_-1']));
    ok('1 createIndexes (unique email_1, compound city_1_age_-1); listIndexes names, keys (in order) and unique flag');

    /* ---------- 2. inserts with mixed BSON types ---------- */
    $check = '2 inserts';
    $model = [];
    for ($i = 0; $i < N_USERS; $i++) {
        $model[$i] = [
            '_id' => $i,
            'name' => sprintf('user%02d', $i),
            'email' => sprintf('user%02d@example.com', $i),
            'city' => CITIES[$i % 4],
            'age' => 20 + ($i * 17) % 45,            // 20..64 with repeats, so the _id tie-break matters
            'score' => $i * 1.25,
            'visits' => $i * 1000000000,             // int64 from _id 3 on
            'active' => $i % 2 === 0,
            'tags' => ['t' . ($i % 3), 'all'],
            'joined' => new UTCDateTime(1600000000000 + $i * 86400000),
        ];
    }
    $single = new BulkWrite();
    $single->insert($model[0]);
    $w = $m->executeBulkWrite($users, $single);
    expect($w->getInsertedCount() === 1, 'single insert: insertedCount ' . $w->getInsertedCount());
    $bulk = new BulkWrite(['ordered' => true]);
    for ($i = 1; $i < N_USERS; $i++) {
        $bulk->insert($model[$i]);
    }
    $w = $m->executeBulkWrite($users, $bulk);
    expect($w->getInsertedCount() === N_USERS - 1, 'bulk insert: insertedCount ' . $w->getInsertedCount());

    $ids = [new ObjectId(), new ObjectId(), new ObjectId()];
    $single = new BulkWrite();
    $single->insert(typed_doc($ids[0], 0));
    $m->executeBulkWrite($types, $single);
    $bulk = new BulkWrite();
    $bulk->insert(typed_doc($ids[1], 1));
    $bulk->insert(typed_doc($ids[2], 2));
    expect($m->executeBulkWrite($types, $bulk)->getInsertedCount() === 2, 'typed bulk insert count');
    foreach ([0, 2] as $k) {
        $docs = $m->executeQuery($types, new Query(['_id' => $ids[$k]]))->toArray();
        expect(count($docs) === 1, "find typed $k by ObjectId: " . count($docs) . ' documents');
        $diff = same(typed_doc($ids[$k], $k), $docs[0], "typed[$k]");
        expect($diff === null, "round trip: $diff");
    }
    // The stored BSON types as the server itself sees them (PHP ints hide int32 vs int64).
    $project = [];
    foreach (TYPED_TYPES as $field => $_) {
        $project[$field] = ['$type' => '$' . $field];
    }
    $seen = first($m, $dbName, ['aggregate' => 'types', 'pipeline' => [
        ['$match' => ['_id' => $ids[1]]], ['$project' => ['_id' => 0] + $project]], 'cursor' => new stdClass()]);
    expect(get_object_vars($seen) === TYPED_TYPES, 'stored $type per field: want ' . ejson(TYPED_TYPES)
        . ', got ' . ejson($seen));
    $n = count($m->executeQuery($types, new Query([
        'when' => ['$gte' => new UTCDateTime(1700000000124)],
        'big' => 9007199254740993,
        'blob' => new Binary("\x00\x01\x7f\x80\xfe\xffab", Binary::TYPE_GENERIC),
    ]))->toArray());
    expect($n === 2, "query by date range + int64 2^53+1 + binary: want 2 documents, got $n");
    $n = count($m->executeQuery($types, new Query(['big' => 9007199254740992.0]))->toArray());
    expect($n === 0, "int64 2^53+1 must not equal double 2^53, got $n matches");
    // unacknowledged (w:0) writes: OP_MSG moreToCome, no reply; the next command must see them
    $bw = new BulkWrite();
    for ($k = 0; $k < 5; $k++) {
        $bw->insert(['seq' => $k, 'at' => new UTCDateTime(1700000000000 + $k)]);
    }
    $w = $m->executeBulkWrite("$dbName.log", $bw, ['writeConcern' => new MongoDB\Driver\WriteConcern(0)]);
    expect(!$w->isAcknowledged(), 'w:0 write reported acknowledged');
    $n = first($m, $dbName, ['count' => 'log'])->n ?? null;
    expect($n === 5, 'after 5 unacknowledged inserts the next command sees ' . var_export($n, true) . ' documents');
    $back = $m->executeQuery($users, new Query(['_id' => 59]))->toArray()[0];
    expect(same((object) $model[59], $back, 'user59') === null, 'user 59 round trip: ' . same((object) $model[59], $back, 'user59'));
    ok('2 single + bulk inserts (60 users, 3 typed docs); date/binary/uuid/ObjectId/int64/double/nested/array/null '
        . 'round-trip exactly, server $type agrees, match by value; w:0 inserts visible to the next command');

    /* ---------- 3. filtered, sorted, skipped, limited find ---------- */
    $check = '3 find sort/skip/limit';
    $want = array_values(array_filter($model, fn ($u) => $u['age'] >= 30));
    usort($want, fn ($a, $b) => [$b['age'], $a['_id']] <=> [$a['age'], $b['_id']]);
    $want = array_map(fn ($u) => $u['_id'], array_slice($want, 3, 5));
    $got = array_map(fn ($d) => $d->_id, $m->executeQuery($users, new Query(['age' => ['$gte' => 30]],
        ['sort' => ['age' => -1, '_id' => 1], 'skip' => 3, 'limit' => 5]))->toArray());
    expect($got === $want, 'want _ids ' . json_encode($want) . ', got ' . json_encode($got));
    ok('3 find age>=30 sort {age:-1,_id:1} skip 3 limit 5 = _ids ' . implode(',', $got) . ' (own computation)');

    /* ---------- 4. multi-batch cursor ---------- */
    $check = '4 cursor batchSize 7';
    $rec->getMores = $rec->batches = $rec->maxBatch = 0;
    $seenIds = [];
    $cursor = $m->executeQuery($users, new Query([], ['batchSize' => BATCH]));
    foreach ($cursor as $doc) {
        expect(!isset($seenIds[$doc->_id]), "_id {$doc->_id} arrived twice");
        $seenIds[$doc->_id] = true;
    }
    expect(count($seenIds) === N_USERS, 'cursor returned ' . count($seenIds) . ' of ' . N_USERS . " documents ({$rec->getMores} getMores)");
    expect($rec->maxBatch <= BATCH, "a batch held {$rec->maxBatch} documents, more than batchSize " . BATCH);
    expect($rec->getMores >= intdiv(N_USERS + BATCH - 1, BATCH) - 1, "only {$rec->getMores} getMores");
    expect($rec->lastCursorId === '0', "the last batch left cursor id {$rec->lastCursorId} open");
    expect($cursor->isDead(), 'cursor not dead after exhaustion');
    $batches = $rec->batches;
    $getMores = $rec->getMores;
    unset($cursor);

    $got = array_map(fn ($d) => $d->_id, $m->executeQuery($users, new Query([],
        ['batchSize' => BATCH, 'limit' => 20, 'sort' => ['_id' => 1]]))->toArray());
    expect($got === range(0, 19), 'limit 20 batchSize 7 sort _id: got ' . json_encode($got));

    // abandoning a cursor early: the driver sends killCursors, and the id is gone afterwards
    $rec->killCursors = 0;
    $rec->cursorsKilled = [];
    $cursor = $m->executeQuery($users, new Query([], ['batchSize' => BATCH]));
    $k = 0;
    foreach ($cursor as $doc) {
        if (++$k === 10) {
            break;
        }
    }
    $openId = (string) $cursor->getId();
    expect($openId !== '0', 'cursor id 0 after 10 of 60 documents');
    unset($cursor);
    expect($rec->killCursors === 1 && $rec->cursorsKilled === [$openId],
        "dropping an open cursor: want killCursors reporting cursorsKilled [$openId], got {$rec->killCursors} killCursors, ["
        . implode(',', $rec->cursorsKilled) . ']');
    try {
        $cmd = MongoDB\BSON\toPHP(MongoDB\BSON\fromJSON('{"getMore": {"$numberLong": "' . $openId . '"}, "collection": "users"}'));
        $m->executeCommand($dbName, new Command($cmd));
        fail('getMore on a killed cursor succeeded');
    } catch (CommandException $e) {
        expect($e->getCode() === 43, 'getMore on a killed cursor: want 43 (CursorNotFound), got ' . $e->getCode());
    }
    ok("4 cursor batchSize 7: 60 documents in $batches batches ($getMores getMores), none twice; limit+batchSize; "
        . 'dropping an open cursor sends killCursors, then getMore -> 43');

    /* ---------- 5. counts and distinct ---------- */
    $check = '5 counts/distinct';
    // countDocuments as the drivers implement it: aggregate $match/$skip/$limit/$group
    $countDocuments = function (array $filter, array $extra = []) use ($m, $dbName): int {
        $pipeline = [['$match' => (object) $filter]];
        foreach ($extra as $stage) {
            $pipeline[] = $stage;
        }
        $pipeline[] = ['$group' => ['_id' => 1, 'n' => ['$sum' => 1]]];
        // executeCommand turns a command's cursor reply into a Cursor over its documents
        $docs = command($m, $dbName, ['aggregate' => 'users', 'pipeline' => $pipeline, 'cursor' => new stdClass()]);
        expect(count($docs) <= 1, 'countDocuments pipeline returned ' . count($docs) . ' documents');
        return $docs[0]->n ?? 0;
    };
    $paris = count(array_filter($model, fn ($u) => $u['city'] === 'Paris'));
    expect(($n = $countDocuments(['city' => 'Paris'])) === $paris, "countDocuments city=Paris: want $paris, got $n");
    $want = min(10, count(array_filter($model, fn ($u) => $u['age'] >= 30)) - 2);
    expect(($n = $countDocuments(['age' => ['$gte' => 30]], [['$skip' => 2], ['$limit' => 10]])) === $want,
        "countDocuments age>=30 skip 2 limit 10: want $want, got $n");
    $r = first($m, $dbName, ['count' => 'users']);
    expect(($r->n ?? null) === N_USERS, 'count command (estimated): ' . ejson($r));
    $want = count(array_filter($model, fn ($u) => $u['active']));
    $r = first($m, $dbName, ['count' => 'users', 'query' => ['active' => true]]);
    expect(($r->n ?? null) === $want, "count command active=true: want $want, got " . ejson($r));
    $r = first($m, $dbName, ['count' => 'users', 'query' => ['city' => 'Oslo'], 'skip' => 5, 'limit' => 100]);
    expect(($r->n ?? null) === 10, 'count command city=Oslo skip 5: want 10, got ' . ejson($r));
    $r = first($m, $dbName, ['distinct' => 'users', 'key' => 'city']);
    $values = $r->values ?? null;
    expect(is_array($values), 'distinct without values: ' . ejson($r));
    sort($values);
    $cities = CITIES;
    sort($cities);
    expect($values === $cities, 'distinct city: ' . ejson($r));
    $want = array_values(array_unique(array_map(fn ($u) => $u['age'],
        array_filter($model, fn ($u) => $u['city'] === 'Lima' && $u['age'] < 40))));
    sort($want);
    $r = first($m, $dbName, ['distinct' => 'users', 'key' => 'age', 'query' => ['city' => 'Lima', 'age' => ['$lt' => 40]]]);
    $values = $r->values ?? [];
    sort($values);
    expect($values === $want, 'distinct age (Lima, <40): want ' . json_encode($want) . ', got ' . ejson($r));
    $r = first($m, $dbName, ['distinct' => 'users', 'key' => 'tags']);
    $values = $r->values ?? [];
    sort($values);
    expect($values === ['all', 't0', 't1', 't2'], 'distinct over an array field unwinds it: ' . ejson($r));
    ok('5 countDocuments-style aggregate (plain, skip/limit), count command (all, query, skip), distinct '
        . '(plain, with query, over an array field)');

    /* ---------- 9. aggregation and projection (on the pristine data) ---------- */
    $check = '9 aggregate/projection';
    $groups = [];
    foreach ($model as $u) {
        $groups[$u['city']][] = $u['age'];
    }
    $want = [];
    foreach ($groups as $city => $ages) {
        $want[] = ['_id' => $city, 'avgAge' => array_sum($ages) / count($ages), 'n' => count($ages),
            'maxScore' => max(array_map(fn ($u) => $u['score'], array_filter($model, fn ($u) => $u['city'] === $city)))];
    }
    usort($want, fn ($a, $b) => [$b['avgAge'], $a['_id']] <=> [$a['avgAge'], $b['_id']]);
    $got = $m->executeCommand($dbName, new Command(['aggregate' => 'users', 'pipeline' => [
        ['$group' => ['_id' => '$city', 'avgAge' => ['$avg' => '$age'], 'n' => ['$sum' => 1], 'maxScore' => ['$max' => '$score']]],
        ['$sort' => ['avgAge' => -1, '_id' => 1]],
    ], 'cursor' => ['batchSize' => 2]]))->toArray();    // batchSize 2: the aggregate cursor needs getMores too
    expect(count($got) === 4, 'want 4 groups, got ' . count($got));
    foreach ($want as $i => $g) {
        $d = $got[$i];
        expect($d->_id === $g['_id'] && is_float($d->avgAge) && abs($d->avgAge - $g['avgAge']) < 1e-9
            && $d->n === $g['n'] && $d->maxScore === $g['maxScore'],
            "group $i: want " . json_encode($g) . ', got ' . ejson($d));
    }
    $got = $m->executeQuery($users, new Query(['_id' => ['$in' => [5, 6]]],
        ['projection' => ['name' => 1, 'age' => 1, '_id' => 0], 'sort' => ['_id' => 1]]))->toArray();
    expect(count($got) === 2, 'projection find: ' . count($got) . ' documents');
    foreach ([5, 6] as $i => $id) {
        expect(get_object_vars($got[$i]) === ['name' => $model[$id]['name'], 'age' => $model[$id]['age']],
            "projection {name:1, age:1, _id:0} of _id $id: got " . ejson($got[$i]));
    }
    $got = $m->executeQuery($users, new Query(['_id' => 8], ['projection' => ['tags' => 0, 'joined' => 0, 'email' => 0]]))->toArray();
    expect(array_keys(get_object_vars($got[0])) === ['_id', 'name', 'city', 'age', 'score', 'visits', 'active'],
        'exclusion projection: ' . ejson($got[0]));
    ok("9 aggregate \$group/\$avg/\$max/\$sort (aggregate cursor batchSize 2) matches own computation "
        . "({$want[0]['_id']} first); inclusion and exclusion projections");

    /* ---------- 6. updates ---------- */
    $check = '6 updates';
    $pre = count(array_filter($model, fn ($u) => $u['city'] === 'Paris' && $u['age'] < 40));
    $bw = new BulkWrite();
    $bw->update(['city' => 'Paris', 'age' => ['$lt' => 40]], ['$set' => ['country' => 'FR']], ['multi' => true]);
    $w = $m->executeBulkWrite($users, $bw);
    expect($w->getMatchedCount() === $pre && $w->getModifiedCount() === $pre,
        "pre-update: want matched=modified=$pre, got {$w->getMatchedCount()}/{$w->getModifiedCount()}");
    $bw = new BulkWrite();
    $bw->update(['city' => 'Paris'], ['$set' => ['country' => 'FR']], ['multi' => true]);
    $w = $m->executeBulkWrite($users, $bw);
    expect($w->getMatchedCount() === $paris && $w->getModifiedCount() === $paris - $pre && $w->getUpsertedCount() === 0,
        "update many Paris \$set country: want matched $paris modified " . ($paris - $pre)
        . ", got {$w->getMatchedCount()}/{$w->getModifiedCount()}");

    $bw = new BulkWrite();
    $bw->update(['_id' => 7], ['$inc' => ['age' => 2, 'visits' => 5, 'score' => 0.5], '$push' => ['tags' => 'vip']]);
    $w = $m->executeBulkWrite($users, $bw);
    expect($w->getMatchedCount() === 1 && $w->getModifiedCount() === 1, 'update one $inc/$push counts');
    $model[7]['age'] += 2;
    $model[7]['visits'] += 5;
    $model[7]['score'] += 0.5;
    $d = $m->executeQuery($users, new Query(['_id' => 7]))->toArray()[0];
    expect($d->age === $model[7]['age'] && $d->visits === $model[7]['visits'] && $d->score === $model[7]['score']
        && $d->tags === ['t1', 'all', 'vip'], 'after $inc/$push: ' . ejson($d));

    $upsert = function () use ($m, $users) {
        $bw = new BulkWrite();   // a BulkWrite runs once; the repeat needs a new one
        $bw->update(['email' => 'newbie@example.com'],
            ['$set' => ['name' => 'Newbie', 'city' => 'Oslo'], '$setOnInsert' => ['joined' => new UTCDateTime(1700000000000)]],
            ['upsert' => true]);
        return $m->executeBulkWrite($users, $bw);
    };
    $w = $upsert();
    $upserted = $w->getUpsertedIds();
    expect($w->getMatchedCount() === 0 && $w->getUpsertedCount() === 1 && isset($upserted[0]),
        'upsert: want matched 0, upsertedCount 1 and an upserted id, got ' . json_encode([$w->getMatchedCount(),
            $w->getUpsertedCount(), array_map('strval', $upserted)]));
    $d = $m->executeQuery($users, new Query(['email' => 'newbie@example.com']))->toArray();
    expect(count($d) === 1 && same($upserted[0], $d[0]->_id, '_id') === null && $d[0]->name === 'Newbie'
        && $d[0]->joined instanceof UTCDateTime,
        'upserted document (' . ejson($upserted[0]) . '): ' . ejson($d));
    $w = $upsert();
    expect($w->getMatchedCount() === 1 && $w->getModifiedCount() === 0 && $w->getUpsertedCount() === 0,
        'repeat upsert: want matched 1 modified 0 upserted 0, got ' . json_encode([$w->getMatchedCount(),
            $w->getModifiedCount(), $w->getUpsertedCount()]));
    ok("6 update many matched $paris modified " . ($paris - $pre) . " ($pre already set); \$inc int/long/double + \$push; "
        . 'upsert id = stored _id; repeat upsert matches');

    /* ---------- 7. findAndModify ---------- */
    $check = '7 findAndModify';
    $r = first($m, $dbName, ['findAndModify' => 'users', 'query' => ['_id' => 3],
        'update' => ['$inc' => ['age' => 1], '$set' => ['status' => 'touched']], 'new' => true,
        'fields' => ['age' => 1, 'status' => 1]]);
    $model[3]['age'] += 1;
    expect(isset($r->value) && get_object_vars($r->value) === ['_id' => 3, 'age' => $model[3]['age'], 'status' => 'touched'],
        'findAndModify new:true: want {_id:3, age:' . $model[3]['age'] . ", status:'touched'}, got " . ejson($r));
    expect(($r->lastErrorObject->n ?? null) === 1 && ($r->lastErrorObject->updatedExisting ?? null) === true,
        'findAndModify lastErrorObject: ' . ejson($r));
    $r = first($m, $dbName, ['findAndModify' => 'users', 'query' => ['email' => 'late@example.com'],
        'update' => ['$set' => ['name' => 'Late', 'city' => 'Bulk2']], 'new' => true, 'upsert' => true]);
    expect(isset($r->value->_id) && $r->value->email === 'late@example.com' && $r->value->name === 'Late'
        && isset($r->lastErrorObject->upserted), 'findAndModify upsert new:true: ' . ejson($r));
    $r = first($m, $dbName, ['findAndModify' => 'users', 'query' => ['email' => 'late@example.com'], 'remove' => true]);
    expect(($r->value->name ?? null) === 'Late', 'findAndModify remove returns the removed document: ' . ejson($r));
    ok('7 findAndModify new:true with fields returns the new document; upsert+new; remove');

    /* ---------- 8. duplicate keys ---------- */
    $check = '8 duplicate key';
    try {
        $bw = new BulkWrite();
        $bw->insert(['_id' => 1000, 'email' => 'user05@example.com']);
        $m->executeBulkWrite($users, $bw);
        fail('inserting a duplicate email succeeded');
    } catch (BulkWriteException $e) {
        $errors = $e->getWriteResult()->getWriteErrors();
        expect(count($errors) === 1 && $errors[0]->getCode() === 11000 && $errors[0]->getIndex() === 0,
            'duplicate email: want one write error 11000, got ' . json_encode(array_map(fn ($x) => [$x->getIndex(), $x->getCode(), $x->getMessage()], $errors)));
        expect($e->getWriteResult()->getInsertedCount() === 0, 'duplicate email inserted something');
    }
    try {
        $bw = new BulkWrite();
        $bw->insert(['_id' => 5, 'email' => 'unique5@example.com']);
        $m->executeBulkWrite($users, $bw);
        fail('inserting a duplicate _id succeeded');
    } catch (BulkWriteException $e) {
        expect($e->getWriteResult()->getWriteErrors()[0]->getCode() === 11000, 'duplicate _id: code '
            . $e->getWriteResult()->getWriteErrors()[0]->getCode());
    }
    try {
        $bw = new BulkWrite(['ordered' => false]);
        for ($k = 0; $k < 5; $k++) {
            $bw->insert(['_id' => $k === 3 ? 5 : 200 + $k, 'email' => $k === 1 ? 'user01@example.com' : "bulk$k@example.com",
                'city' => 'Bulk']);
        }
        $m->executeBulkWrite($users, $bw);
        fail('unordered bulk with duplicates succeeded');
    } catch (BulkWriteException $e) {
        $result = $e->getWriteResult();
        $errors = array_map(fn ($x) => [$x->getIndex(), $x->getCode()], $result->getWriteErrors());
        expect($result->getInsertedCount() === 3, 'unordered bulk: want 3 inserted past the duplicates, got '
            . $result->getInsertedCount());
        expect($errors === [[1, 11000], [3, 11000]], 'unordered bulk writeErrors: ' . json_encode($errors));
    }
    $n = count($m->executeQuery($users, new Query(['city' => 'Bulk']))->toArray());
    expect($n === 3, "after the unordered bulk, want 3 'Bulk' documents, found $n");
    try {
        $bw = new BulkWrite(['ordered' => true]);
        for ($k = 0; $k < 3; $k++) {
            $bw->insert(['_id' => 300 + $k, 'email' => $k === 1 ? 'user02@example.com' : "ordered$k@example.com", 'city' => 'Ordered']);
        }
        $m->executeBulkWrite($users, $bw);
        fail('ordered bulk with a duplicate succeeded');
    } catch (BulkWriteException $e) {
        $result = $e->getWriteResult();
        expect($result->getInsertedCount() === 1 && count($result->getWriteErrors()) === 1
            && $result->getWriteErrors()[0]->getIndex() === 1, 'ordered bulk: want 1 inserted and an error at index 1, got '
            . $result->getInsertedCount());
    }
    ok('8 duplicate email/_id -> BulkWriteException write error 11000; unordered bulk inserts 3 of 5 (errors at 1,3); '
        . 'ordered bulk stops after 1');

    /* ---------- 10. delete many ---------- */
    $check = '10 delete';
    $want = count(array_filter($model, fn ($u) => in_array($u['city'], ['Lima', 'Rome'], true)));
    $bw = new BulkWrite();
    $bw->delete(['city' => ['$in' => ['Lima', 'Rome']]], ['limit' => 0]);
    $bw->delete(['city' => 'Nowhere'], ['limit' => 1]);
    $w = $m->executeBulkWrite($users, $bw);
    expect($w->getDeletedCount() === $want, "delete many city in [Lima, Rome]: want $want, got {$w->getDeletedCount()}");
    $left = first($m, $dbName, ['count' => 'users'])->n;
    expect($left === N_USERS + 1 + 3 + 1 - $want, "after delete: $left documents left");
    ok("10 delete many deletedCount $want (own computation), $left documents left");

    /* ---------- 11. unknown command ---------- */
    $check = '11 unknown command';
    try {
        $m->executeCommand($dbName, new Command(['noSuchCommand' => 1]));
        fail('noSuchCommand succeeded');
    } catch (CommandException $e) {
        expect($e->getCode() === 59, 'noSuchCommand: want code 59, got ' . $e->getCode() . ': ' . $e->getMessage());
        expect(($e->getResultDocument()->codeName ?? null) === 'CommandNotFound',
            'noSuchCommand result document: ' . ejson($e->getResultDocument()));
    }
    expect((first($m, 'admin', ['ping' => 1])->ok ?? null) == 1, 'ping after the unknown command');
    expect(count($m->executeQuery($users, new Query(['_id' => 0]))->toArray()) === 1, 'query after the unknown command');
    ok('11 noSuchCommand -> CommandException code 59 (CommandNotFound); ping and queries still work');

    /* ---------- 12. listCollections / dropDatabase ---------- */
    $check = '12 listCollections/dropDatabase';
    $names = array_map(fn ($c) => $c->name, command($m, $dbName, ['listCollections' => 1, 'nameOnly' => true]));
    sort($names);
    expect($names === ['log', 'types', 'users'], 'listCollections: ' . json_encode($names));
    $dbs = fn () => array_map(fn ($d) => $d->name, first($m, 'admin', ['listDatabases' => 1])->databases);
    expect(in_array($dbName, $dbs(), true), "$dbName not in listDatabases before the drop");
    first($m, $dbName, ['dropDatabase' => 1]);
    expect(!in_array($dbName, $dbs(), true), "$dbName still in listDatabases after dropDatabase");
    expect(command($m, $dbName, ['listCollections' => 1]) === [], 'collections left after dropDatabase');
    ok('12 listCollections = [log, types, users]; dropDatabase removes it from listDatabases');
} catch (Throwable $e) {
    fail(get_class($e) . ' (code ' . $e->getCode() . '): ' . $e->getMessage() . ' at line ' . $e->getLine());
}

echo 'all 12 PHP driver (ext-mongodb ' . phpversion('mongodb') . ") checks passed\n";
