#!/usr/bin/perl
# StratosDB interoperability program for the Perl driver (libmongodb-perl 2.2, Debian).
#
# A small "people directory" application: it creates indexes, inserts typed and bulk data,
# queries, counts, updates, aggregates and deletes through the driver's ordinary API, and
# checks every answer against its own computation from the data it inserted.
# Prints "ok: <what>" per check; exits 1 with "FAIL: ..." on the first failure.
#
# Reads MONGODB_URI (e.g. mongodb://127.0.0.1:PORT/) and STRATOS_DB (database to use).
use strict;
use warnings;
use utf8;
use Time::HiRes qw(time);
use Scalar::Util qw(blessed);
use List::Util qw(sum first);
use Tie::IxHash;
use boolean;
use MongoDB;
use BSON::Types ':all';

binmode STDOUT, ':encoding(UTF-8)';
binmode STDERR, ':encoding(UTF-8)';
$| = 1;

my $uri     = $ENV{MONGODB_URI} // die "MONGODB_URI must be set\n";
my $db_name = $ENV{STRATOS_DB}  // die "STRATOS_DB must be set\n";
my $t0      = time;

# Every command the driver sends and every reply, through the driver's monitoring hook.
my @events;
my $client = MongoDB->connect(
    $uri,
    {
        server_selection_timeout_ms => 5000,
        connect_timeout_ms          => 5000,
        socket_timeout_ms           => 10000,
        monitoring_callback         => sub { push @events, $_[0] },
    }
);
my $db     = $client->get_database($db_name);
my $people = $db->get_collection('people');
my $types  = $db->get_collection('types');

sub fail {
    my ($what) = @_;
    my @sent = grep { $_->{type} eq 'command_started' } @events;
    my @last = @sent > 3 ? @sent[ -3 .. -1 ] : @sent;
    # Context first, the FAIL line last (the runner shows the last line as the summary).
    print STDERR "last commands sent:\n", map { "  " . canon( $_->{command}, 1 ) . "\n" } @last if @last;
    $what =~ s/\s*\n\s*/ /g;
    print STDERR "FAIL: $what\n";
    exit 1;
}

sub check { my ( $cond, $what ) = @_; fail($what) unless $cond; }
sub ok    { print "ok: $_[0]\n"; }

# A canonical text form of a decoded value, for deep comparisons and messages.
sub canon {
    my ( $v, $ordered ) = @_;
    return 'null' unless defined $v;
    if ( blessed $v ) {
        return ( $v ? 'true' : 'false' ) if $v->isa('boolean');
        return 'Time(' . $v->value . ')'                          if $v->isa('BSON::Time');
        return 'OID(' . $v->hex . ')'                             if $v->isa('BSON::OID');
        return 'Bytes(' . $v->subtype . ',' . unpack( 'H*', $v->data ) . ')' if $v->isa('BSON::Bytes');
        return ref($v) . '(' . $v->value . ')' if $v->can('value');
        if ( $v->isa('Tie::IxHash') ) {
            return '{' . join( ',', map { "$_:" . canon( $v->FETCH($_), $ordered ) } $v->Keys ) . '}';
        }
        return "$v";
    }
    if ( ref $v eq 'HASH' ) {
        # Comparisons ignore key order (Perl hashes have none); messages keep a tied hash's order.
        my @keys = $ordered ? keys %$v : sort keys %$v;
        return '{' . join( ',', map { "$_:" . canon( $v->{$_}, $ordered ) } @keys ) . '}';
    }
    if ( ref $v eq 'ARRAY' ) {
        return '[' . join( ',', map { canon( $_, $ordered ) } @$v ) . ']';
    }
    return "$v";
}

sub expect_eq {
    my ( $got, $want, $what ) = @_;
    my ( $g, $w ) = ( canon($got), canon($want) );
    fail("$what: expected $w, got $g") unless $g eq $w;
}

sub started_since {
    my ( $mark, $name ) = @_;
    return scalar grep { $_->{type} eq 'command_started' && $_->{commandName} eq $name } @events[ $mark .. $#events ];
}

# Runs $code, returns the exception it threw (or fails if it threw nothing).
sub expect_error {
    my ( $code, $what ) = @_;
    my $ok = eval { $code->(); 1 };
    fail("$what did not raise an error") if $ok;
    return $@;
}

my $main_ok = eval {
    $db->drop;
    expect_eq( $db->run_command( [ ping => 1 ] )->{ok}, 1, 'ping before starting' );

    # ------------------------------------------------------------ 1. indexes
    my $email_name = $people->indexes->create_one( [ email => 1 ], { unique => true } );
    my $compound_name = $people->indexes->create_one( [ city => 1, age => -1 ] );
    expect_eq( [ $email_name, $compound_name ], [ 'email_1', 'city_1_age_-1' ], 'create_one index names' );
    # An ordered codec keeps key order in the listed specs (it matters for a compound index).
    my @specs = $people->with_codec( ordered => 1 )->indexes->list->all;
    my %by_name = map { $_->{name} => $_ } @specs;
    expect_eq( [ sort keys %by_name ], [ '_id_', 'city_1_age_-1', 'email_1' ], 'index names' );
    expect_eq( [ %{ $by_name{'_id_'}{key} } ], [ _id => 1 ], '_id_ key' );
    expect_eq( [ %{ $by_name{'email_1'}{key} } ], [ email => 1 ], 'email_1 key' );
    check( $by_name{'email_1'}{unique}, 'email_1 should be unique' );
    expect_eq( [ %{ $by_name{'city_1_age_-1'}{key} } ], [ city => 1, age => -1 ], 'compound key (order matters)' );
    check( !$by_name{'city_1_age_-1'}{unique}, 'compound index must not be unique' );
    ok('indexes: unique email_1 and compound city_1_age_-1 created and listed with their keys');

    # ------------------------------------------------------------ 2. typed + bulk inserts
    my $oid   = BSON::OID->new;
    my $ref   = BSON::OID->new( oid => pack( 'H*', '65a1b2c3d4e5f60718293a4b' ) );
    my $when  = BSON::Time->new( value => 1709251198123 );    # 2024-02-29T23:59:58.123Z
    my $blob  = BSON::Bytes->new( data => "\x00\x01\x02\xFFbinary", subtype => 0 );
    my $uuid  = BSON::Bytes->new( data => pack( 'H*', '12345678123456781234567812345678' ), subtype => 4 );
    my $big   = 1234567890123;                               # needs 64 bits
    my $typed = Tie::IxHash->new(
        _id     => $oid,
        when    => $when,
        blob    => $blob,
        uuid    => $uuid,
        big     => $big,
        small   => 42,
        ratio   => 3.25,
        neg     => -0.5,
        text    => "naïve café — 東京",
        flag    => true,
        nothing => undef,
        nested  => Tie::IxHash->new( a => Tie::IxHash->new( b => [ 1, 'two', { c => undef } ] ), n => 7 ),
        arr     => [ 1, 'x', 2.5, undef, [3], { k => 'v' } ],
        ref     => $ref,
    );
    my $res = $types->insert_one($typed);
    check( $res->inserted_id->hex eq $oid->hex, 'insert_one inserted_id' );
    my $back = $types->with_codec( ordered => 1 )->find_one( { _id => $oid } );
    check( $back, 'typed document not found by its ObjectId' );
    expect_eq( [ keys %$back ], [ $typed->Keys ], 'field order of the typed document' );
    my $wrapped = $types->with_codec( wrap_numbers => 1 )->find_one( { _id => $oid } );
    check( ref $back->{_id} eq 'BSON::OID' && $back->{_id}->hex eq $oid->hex, 'ObjectId _id round trip: ' . canon( $back->{_id} ) );
    check( ref $back->{when} eq 'BSON::Time' && $back->{when}->value == 1709251198123, 'date round trip: ' . canon( $back->{when} ) );
    check( ref $back->{blob} eq 'BSON::Bytes' && $back->{blob}->subtype == 0 && $back->{blob}->data eq "\x00\x01\x02\xFFbinary",
        'generic binary round trip: ' . canon( $back->{blob} ) );
    check( ref $back->{uuid} eq 'BSON::Bytes' && $back->{uuid}->subtype == 4 && $back->{uuid}->data eq $uuid->data,
        'uuid binary round trip: ' . canon( $back->{uuid} ) );
    check( ref $wrapped->{big} eq 'BSON::Int64' && $wrapped->{big}->value == $big, 'int64 round trip: ' . canon( $wrapped->{big} ) );
    check( ref $wrapped->{small} eq 'BSON::Int32' && $wrapped->{small}->value == 42, 'int32 round trip: ' . canon( $wrapped->{small} ) );
    check( ref $wrapped->{ratio} eq 'BSON::Double' && $wrapped->{ratio}->value == 3.25, 'double round trip: ' . canon( $wrapped->{ratio} ) );
    check( ref $wrapped->{neg} eq 'BSON::Double' && $wrapped->{neg}->value == -0.5, 'negative double round trip: ' . canon( $wrapped->{neg} ) );
    expect_eq( $back->{text}, "naïve café — 東京", 'utf-8 string round trip' );
    check( ref $back->{flag} eq 'boolean' && $back->{flag}, 'boolean round trip: ' . canon( $back->{flag} ) );
    check( exists $back->{nothing} && !defined $back->{nothing}, 'null round trip' );
    expect_eq( $back->{nested}, $typed->FETCH('nested'), 'nested document round trip' );
    expect_eq( $back->{arr}, $typed->FETCH('arr'), 'array round trip' );
    expect_eq( $back->{ref}, $ref, 'second ObjectId round trip' );

    my @cities = qw(Paris Oslo Lima Kyoto);
    my @model  = map {
        my $i = $_;
        {
            _id     => $i,
            name    => "user$i",
            email   => "user$i\@example.com",
            city    => $cities[ $i % 4 ],
            age     => 18 + ( $i * 17 ) % 50,
            score   => ( ( $i * 37 ) % 101 ) / 4 + 0.25,
            active  => boolean( $i % 3 != 0 ),
            tags    => [ 't' . ( $i % 5 ), 'g' . ( $i % 2 ) ],
            address => { street => "$i Main St", zip => sprintf( '%05d', 10000 + $i ) },
            joined  => BSON::Time->new( value => ( 1700000000 + $i * 86400 ) * 1000 ),
        }
    } 0 .. 59;
    my $first = $people->insert_one( $model[0] );
    expect_eq( $first->inserted_id, 0, 'insert_one of the first person' );
    my $bulk = $people->insert_many( [ @model[ 1 .. 59 ] ] );
    expect_eq( $bulk->inserted_count, 59, 'insert_many inserted_count' );
    expect_eq( $bulk->inserted_ids, { map { $_ - 1 => $_ } 1 .. 59 }, 'insert_many inserted_ids' );
    expect_eq( $people->count_documents( {} ), 60, 'people after inserts' );
    expect_eq( $people->find_one( { _id => 17 } ), $model[17], 'person 17 read back whole (nested doc, array, date, double)' );
    ok('inserts: typed document (date, binary x2, ObjectId, int64, int32, doubles, nested, array, null) round-tripped; 1 + 59 people inserted');

    # ------------------------------------------------------------ 3. filtered/sorted/skipped/limited find
    my @want = map { $_->{_id} } grep { defined } (
        sort { $b->{age} <=> $a->{age} || $a->{_id} <=> $b->{_id} } grep { $_->{age} >= 30 } @model
    )[ 3 .. 7 ];
    my @got = map { $_->{_id} }
      $people->find( { age => { '$gte' => 30 } } )->sort( [ age => -1, _id => 1 ] )->skip(3)->limit(5)->all;
    expect_eq( \@got, \@want, 'find age>=30 sort age desc,_id asc skip 3 limit 5' );
    ok( 'find: age >= 30, sort {age:-1,_id:1}, skip 3, limit 5 -> [' . join( ', ', @got ) . ']' );

    # ------------------------------------------------------------ 4. multi-batch cursor
    my $mark = scalar @events;
    # (MongoDB::Cursor 2.2 has no batch_size method; batchSize is a find option.)
    my $cursor = $people->find( {}, { batchSize => 7 } );
    my ( @seen, %seen );
    while ( my $d = $cursor->next ) { push @seen, $d->{_id}; $seen{ $d->{_id} }++; }
    my $get_mores = started_since( $mark, 'getMore' );
    expect_eq( scalar @seen, 60, 'documents through a batchSize 7 cursor' );
    expect_eq( scalar keys %seen, 60, 'distinct documents through the cursor (none twice)' );
    expect_eq( [ sort { $a <=> $b } @seen ], [ 0 .. 59 ], 'every document arrived' );
    check( $get_mores >= 8, "expected at least 8 getMore commands for 60 docs in batches of 7, saw $get_mores" );
    ok("cursor: 60 documents in batches of 7 ($get_mores getMores), none missing or repeated");

    # ------------------------------------------------------------ 5. counts and distinct
    my $paris = grep { $_->{city} eq 'Paris' } @model;
    my $old   = grep { $_->{age} >= 40 } @model;
    expect_eq( $people->count_documents( { city => 'Paris' } ), $paris, 'count_documents city filter' );
    expect_eq( $people->count_documents( { age => { '$gte' => 40 } } ), $old, 'count_documents age filter' );
    expect_eq( $people->count_documents( {}, { skip => 10, limit => 20 } ), 20, 'count_documents with skip and limit' );
    expect_eq( $people->estimated_document_count, 60, 'estimated_document_count' );
    {
        local $SIG{__WARN__} = sub { };    # count() is deprecated in favour of count_documents
        expect_eq( $people->count( { city => 'Paris' } ), $paris, 'legacy count (count command)' );
    }
    my $legacy = $db->run_command( [ count => 'people', query => { age => { '$gte' => 40 } } ] );
    expect_eq( $legacy->{n}, $old, 'count command through run_command' );
    my %uniq;
    expect_eq( [ sort $people->distinct('city')->all ], [ sort @cities ], 'distinct city' );
    my $cmd = $db->run_command( [ distinct => 'people', key => 'city', query => { age => { '$lt' => 25 } } ] );
    %uniq = map { $_->{city} => 1 } grep { $_->{age} < 25 } @model;
    expect_eq( [ sort @{ $cmd->{values} } ], [ sort keys %uniq ], 'distinct command with a filter via run_command' );
    %uniq = map { map { $_ => 1 } @{ $_->{tags} } } @model;
    expect_eq( [ sort $people->distinct('tags')->all ], [ sort keys %uniq ], 'distinct over array elements' );
    ok("counts: count_documents Paris=$paris, age>=40=$old; legacy count; distinct cities and tags");

    # ------------------------------------------------------------ 6. updates
    my $r = $people->update_one( { _id => 0 },
        { '$set' => { status => 'vip' }, '$inc' => { age => 1 }, '$push' => { tags => 'new' } } );
    expect_eq( [ $r->matched_count, $r->modified_count ], [ 1, 1 ], 'update_one matched/modified' );
    $model[0]{age}++;
    $model[0]{status} = 'vip';
    push @{ $model[0]{tags} }, 'new';
    my $u0 = $people->find_one( { _id => 0 } );
    expect_eq( [ $u0->{status}, $u0->{age}, $u0->{tags} ], [ 'vip', $model[0]{age}, $model[0]{tags} ], '$set/$inc/$push results' );
    my @pre_gold = map { $_->{_id} } grep { $_->{city} eq 'Paris' && $_->{_id} % 8 == 0 } @model;
    $r = $people->update_many( { _id => { '$in' => \@pre_gold } }, { '$set' => { tier => 'gold' } } );
    expect_eq( [ $r->matched_count, $r->modified_count ], [ scalar @pre_gold, scalar @pre_gold ], 'pre-setting gold tier' );
    $r = $people->update_many( { city => 'Paris' }, { '$set' => { tier => 'gold' } } );
    expect_eq( [ $r->matched_count, $r->modified_count ], [ $paris, $paris - @pre_gold ],
        'update_many matched/modified when some already hold the value' );
    $r = $people->update_one( { email => 'new@example.com' }, { '$set' => { name => 'Newcomer' } }, { upsert => 1 } );
    expect_eq( [ $r->matched_count, $r->modified_count ], [ 0, 0 ], 'upsert matched/modified' );
    check( ref $r->upserted_id eq 'BSON::OID', 'upserted_id should be an ObjectId, got ' . canon( $r->upserted_id ) );
    my $up = $people->find_one( { _id => $r->upserted_id } );
    expect_eq( $up, { _id => $r->upserted_id, email => 'new@example.com', name => 'Newcomer' }, 'upserted document' );
    ok( "updates: \$set/\$inc/\$push; update_many matched $paris modified " . ( $paris - @pre_gold ) . '; upsert id ' . $r->upserted_id->hex );

    # ------------------------------------------------------------ 7. findAndModify returning the new document
    my $doc = $people->find_one_and_update( { _id => 5 }, { '$inc' => { visits => 1 }, '$set' => { seen => true } },
        { returnDocument => 'after' } );
    check( $doc, 'find_one_and_update returned nothing' );
    expect_eq( [ $doc->{_id}, $doc->{visits}, $doc->{seen} ], [ 5, 1, true ], 'find_one_and_update after' );
    $doc = $people->find_one_and_update( { _id => 5 }, { '$inc' => { visits => 1 } }, { returnDocument => 'after' } );
    expect_eq( $doc && $doc->{visits}, 2, 'second find_one_and_update after' );
    $doc = $people->find_one_and_update( { _id => 5 }, { '$inc' => { visits => 1 } }, { returnDocument => 'before' } );
    expect_eq( $doc && $doc->{visits}, 2, 'find_one_and_update before returns the old document' );
    $doc = $people->find_one_and_update( { _id => 'missing' }, { '$set' => { x => 1 } }, { returnDocument => 'after' } );
    check( !defined $doc, 'find_one_and_update on no match should return undef, got ' . canon($doc) );
    ok('findAndModify: returns the new document (visits 1 then 2), the old one on before, undef on no match');

    # ------------------------------------------------------------ 8. duplicate keys
    my $e = expect_error( sub { $people->insert_one( { _id => 1000, email => 'user1@example.com' } ) }, 'duplicate email insert' );
    check( blessed $e && $e->isa('MongoDB::DuplicateKeyError'), 'duplicate email should raise MongoDB::DuplicateKeyError, got: ' . ( blessed $e ? ref $e : $e ) );
    expect_eq( $e->code, 11000, 'DuplicateKeyError code' );
    expect_eq( [ map { [ $_->{index}, $_->{code} ] } @{ $e->result->write_errors } ], [ [ 0, 11000 ] ], 'insert write_errors' );
    check( $e->message =~ /^E11000 duplicate key error/, 'error message: ' . $e->message );
    my @batch = (
        { _id => 100, email => 'u100@example.com' },
        { _id => 101, email => 'user2@example.com' },    # duplicate email
        { _id => 102, email => 'u102@example.com' },
        { _id => 3,   email => 'u3dup@example.com' },    # duplicate _id
        { _id => 103, email => 'u103@example.com' },
    );
    $e = expect_error( sub { $people->insert_many( \@batch, { ordered => 0 } ) }, 'unordered insert_many with duplicates' );
    check( blessed $e && $e->isa('MongoDB::DuplicateKeyError'), 'unordered bulk should raise MongoDB::DuplicateKeyError, got: ' . ( blessed $e ? ref $e : $e ) );
    expect_eq( $e->code, 11000, 'unordered bulk error code' );
    expect_eq( [ map { [ $_->{index}, $_->{code} ] } @{ $e->result->write_errors } ], [ [ 1, 11000 ], [ 3, 11000 ] ],
        'unordered bulk write_errors (index, code)' );
    expect_eq( $e->result->inserted_count, 3, 'unordered bulk inserted_count' );
    expect_eq( [ sort { $a <=> $b } map { $_->{_id} } $people->find( { _id => { '$in' => [ 100 .. 103 ] } } )->all ],
        [ 100, 102, 103 ], 'documents the unordered bulk insert stored' );
    expect_eq( $people->find_one( { _id => 3 } )->{email}, 'user3@example.com', 'the existing _id 3 is untouched' );
    ok('duplicate keys: insert_one raises DuplicateKeyError code 11000; unordered insert_many inserted 3 of 5 with errors at indexes 1 and 3');

    # ------------------------------------------------------------ 9. aggregation and projection
    my %groups;
    for my $d ( grep { $_->{active} } @model ) { push @{ $groups{ $d->{city} } }, $d->{score}; }
    my @expected = sort { $b->[1] <=> $a->[1] || $a->[0] cmp $b->[0] }
      map { [ $_, sum( @{ $groups{$_} } ) / @{ $groups{$_} }, scalar @{ $groups{$_} } ] } keys %groups;
    my @agg = $people->aggregate(
        [
            { '$match' => { active => true } },
            { '$group' => { _id => '$city', avgScore => { '$avg' => '$score' }, n => { '$sum' => 1 } } },
            { '$sort'  => Tie::IxHash->new( avgScore => -1, _id => 1 ) },
        ]
    )->all;
    expect_eq( [ map { $_->{_id} } @agg ], [ map { $_->[0] } @expected ], 'aggregation group order' );
    for my $k ( 0 .. $#agg ) {
        my ( $city, $avg, $n ) = @{ $expected[$k] };
        check( abs( $agg[$k]{avgScore} - $avg ) < 1e-9, "avgScore for $city: expected $avg, got $agg[$k]{avgScore}" );
        expect_eq( $agg[$k]{n}, $n, "count for $city" );
    }
    my $proj = $people->find_one( { _id => 7 }, { name => 1, 'address.zip' => 1, _id => 0 } );
    expect_eq( $proj, { name => 'user7', address => { zip => '10007' } }, 'find with inclusion projection' );
    $proj = ( $people->find( { _id => 7 }, { projection => { tags => 0, address => 0, joined => 0, score => 0 } } )->all )[0];
    expect_eq( [ sort keys %$proj ], [ sort qw(_id active age city email name) ], 'find with exclusion projection' );
    ok( 'aggregate: $match/$group/$avg/$sort by city = ' . join( ', ', map { sprintf '%s %.3f', $_->{_id}, $_->{avgScore} } @agg ) . '; projections' );

    # ------------------------------------------------------------ 10. delete_many
    my $lima = grep { $_->{city} eq 'Lima' } @model;
    $r = $people->delete_many( { city => 'Lima' } );
    expect_eq( $r->deleted_count, $lima, 'delete_many deleted_count' );
    expect_eq( $people->count_documents( { city => 'Lima' } ), 0, 'no Lima documents left' );
    expect_eq( $people->count_documents( {} ), 60 - $lima + 1 + 3, 'documents left after delete_many' );
    expect_eq( $people->delete_one( { _id => 100 } )->deleted_count, 1, 'delete_one deleted_count' );
    ok("delete: delete_many removed $lima Lima documents; delete_one removed 1");

    # ------------------------------------------------------------ 11. unknown command
    $e = expect_error( sub { $db->run_command( [ noSuchCommand => 1 ] ) }, 'unknown command' );
    check( blessed $e && $e->isa('MongoDB::DatabaseError'), 'unknown command should raise MongoDB::DatabaseError, got: ' . ( blessed $e ? ref $e : $e ) );
    expect_eq( $e->code, 59, 'unknown command error code (message: ' . $e->message . ')' );
    expect_eq( $e->result->output->{codeName}, 'CommandNotFound', 'unknown command codeName' );
    expect_eq( $db->run_command( [ ping => 1 ] )->{ok}, 1, 'ping after the unknown command' );
    expect_eq( $people->find_one( { _id => 1 } )->{name}, 'user1', 'a query after the unknown command' );
    ok('unknown command: DatabaseError code 59 (CommandNotFound); connection still works');

    # ------------------------------------------------------------ 12. listCollections and dropDatabase
    expect_eq( [ sort $db->collection_names ], [qw(people types)], 'collection_names' );
    expect_eq( [ sort map { $_->{name} } $db->list_collections->all ], [qw(people types)], 'list_collections names' );
    check( ( grep { $_ eq $db_name } $client->database_names ), "$db_name should be listed before the drop" );
    $db->drop;
    my @dbs = $client->database_names;
    check( !( grep { $_ eq $db_name } @dbs ), "$db_name still listed after dropDatabase: @dbs" );
    expect_eq( [ $db->collection_names ], [], 'collections after dropDatabase' );
    ok('listCollections: people, types; dropDatabase removed the database from listDatabases');
    1;
};
unless ($main_ok) {
    my $err = $@;
    fail( 'driver error: ' . ( blessed $err && $err->can('message') ? ref($err) . ': ' . $err->message : "$err" ) );
}
printf "perl driver (MongoDB %s): all 12 checks passed in %.1f s\n", $MongoDB::VERSION, time - $t0;
exit 0;
