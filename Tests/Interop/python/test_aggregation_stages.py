"""Aggregation stages that write or reach across documents: `$out`, `$merge`, `$graphLookup` and
`$setWindowFields`. Expected values are those MongoDB's manual gives for its examples."""

import datetime

import pytest
from bson import Int64
from pymongo.errors import OperationFailure


def agg(coll, *stages, **options):
    return list(coll.aggregate(list(stages), **options))


# -- $out and $merge --------------------------------------------------------------------------


def test_out_replaces_the_target_and_keeps_its_indexes(db):
    db.sales.insert_many([{"item": "a", "qty": 2}, {"item": "b", "qty": 5}, {"item": "a", "qty": 1}])
    db.totals.insert_one({"_id": "stale"})
    db.totals.create_index("total")
    assert agg(db.sales, {"$group": {"_id": "$item", "total": {"$sum": "$qty"}}}, {"$out": "totals"}) == []
    assert sorted(db.totals.find(), key=lambda d: d["_id"]) == [{"_id": "a", "total": 3}, {"_id": "b", "total": 5}]
    assert "total_1" in [index["name"] for index in db.totals.list_indexes()]
    with pytest.raises(OperationFailure) as error:
        agg(db.sales, {"$project": {"_id": 0, "x": {"$literal": 1}}}, {"$set": {"_id": 1}}, {"$out": "dups"})
    assert error.value.code == 11000
    with pytest.raises(OperationFailure) as error:
        agg(db.sales, {"$out": "t"}, {"$match": {}})
    assert error.value.code == 40601
    with pytest.raises(OperationFailure) as error:
        agg(db.sales, {"$out": {"db": "elsewhere", "coll": "t"}})
    assert error.value.code == 20


def test_merge_as_in_the_manual(db):
    db.salaries.insert_many([
        {"_id": 1, "employee": "Ant", "dept": "A", "salary": 100000, "fiscal_year": 2017},
        {"_id": 2, "employee": "Bee", "dept": "A", "salary": 120000, "fiscal_year": 2017},
        {"_id": 3, "employee": "Cat", "dept": "Z", "salary": 115000, "fiscal_year": 2017},
        {"_id": 4, "employee": "Ant", "dept": "A", "salary": 115000, "fiscal_year": 2018},
    ])
    agg(db.salaries, {"$group": {"_id": {"fiscal_year": "$fiscal_year", "dept": "$dept"}, "salaries": {"$sum": "$salary"}}},
        {"$merge": {"into": "budgets", "whenMatched": "replace", "whenNotMatched": "insert"}})
    assert db.budgets.count_documents({}) == 3
    assert db.budgets.find_one({"_id": {"fiscal_year": 2017, "dept": "A"}})["salaries"] == 220000
    # Merge new fields into what is there; keep what is there; fail on a match.
    agg(db.salaries, {"$match": {"fiscal_year": 2018}}, {"$group": {"_id": {"fiscal_year": "$fiscal_year", "dept": "$dept"}, "n": {"$sum": 1}}},
        {"$merge": {"into": "budgets"}})
    assert db.budgets.find_one({"_id": {"fiscal_year": 2018, "dept": "A"}}) == {"_id": {"fiscal_year": 2018, "dept": "A"}, "salaries": 115000, "n": 1}
    agg(db.salaries, {"$project": {"_id": 1, "employee": 1}}, {"$merge": {"into": "people", "whenMatched": "keepExisting"}})
    with pytest.raises(OperationFailure) as error:
        agg(db.salaries, {"$project": {"_id": 1}}, {"$merge": {"into": "people", "whenMatched": "fail"}})
    assert error.value.code == 11000
    with pytest.raises(OperationFailure) as error:
        agg(db.salaries, {"$set": {"_id": 99}}, {"$limit": 1}, {"$merge": {"into": "people", "whenNotMatched": "fail"}})
    assert error.value.code == 13113
    # A pipeline on match, reading the incoming document as $$new.
    agg(db.salaries, {"$match": {"_id": 1}}, {"$merge": {"into": "people", "whenMatched": [{"$set": {"paid": "$$new.salary"}}]}})
    assert db.people.find_one({"_id": 1}) == {"_id": 1, "employee": "Ant", "paid": 100000}
    # On other fields, a unique index must back them.
    with pytest.raises(OperationFailure) as error:
        agg(db.salaries, {"$merge": {"into": "people", "on": "employee"}})
    assert error.value.code == 51183


def test_graph_lookup_as_in_the_manual(db):
    db.employees.insert_many([
        {"_id": 1, "name": "Dev"},
        {"_id": 2, "name": "Eliot", "reportsTo": "Dev"},
        {"_id": 3, "name": "Ron", "reportsTo": "Eliot"},
        {"_id": 4, "name": "Andrew", "reportsTo": "Eliot"},
        {"_id": 5, "name": "Asya", "reportsTo": "Ron"},
        {"_id": 6, "name": "Dan", "reportsTo": "Andrew"},
    ])
    got = agg(db.employees, {"$match": {"name": "Asya"}}, {"$graphLookup": {
        "from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo", "connectToField": "name",
        "as": "reportingHierarchy", "depthField": "depth"}})
    chain = [(d["name"], d["depth"]) for d in got[0]["reportingHierarchy"]]
    assert chain == [("Ron", 0), ("Eliot", 1), ("Dev", 2)]
    limited = agg(db.employees, {"$match": {"name": "Asya"}}, {"$graphLookup": {
        "from": "employees", "startWith": "$reportsTo", "connectFromField": "reportsTo", "connectToField": "name",
        "as": "up", "maxDepth": 0}})
    assert [d["name"] for d in limited[0]["up"]] == ["Ron"]
    restricted = agg(db.employees, {"$match": {"name": "Dev"}}, {"$graphLookup": {
        "from": "employees", "startWith": "$name", "connectFromField": "name", "connectToField": "reportsTo",
        "as": "reports", "restrictSearchWithMatch": {"name": {"$ne": "Andrew"}}}})
    assert sorted(d["name"] for d in restricted[0]["reports"]) == ["Asya", "Eliot", "Ron"]


# -- $setWindowFields -------------------------------------------------------------------------


@pytest.fixture
def cakes(db):
    db.cakeSales.insert_many([
        {"_id": 0, "type": "chocolate", "orderDate": datetime.datetime(2020, 5, 18, 14, 10, 30), "state": "CA", "price": 13, "quantity": 120},
        {"_id": 1, "type": "chocolate", "orderDate": datetime.datetime(2021, 3, 20, 11, 30, 5), "state": "WA", "price": 14, "quantity": 140},
        {"_id": 2, "type": "vanilla", "orderDate": datetime.datetime(2021, 1, 11, 6, 31, 15), "state": "CA", "price": 12, "quantity": 145},
        {"_id": 3, "type": "vanilla", "orderDate": datetime.datetime(2020, 2, 8, 13, 13, 23), "state": "WA", "price": 13, "quantity": 104},
        {"_id": 4, "type": "strawberry", "orderDate": datetime.datetime(2019, 5, 18, 16, 9, 1), "state": "CA", "price": 41, "quantity": 162},
        {"_id": 5, "type": "strawberry", "orderDate": datetime.datetime(2019, 1, 8, 6, 12, 3), "state": "WA", "price": 43, "quantity": 134},
    ])
    return db.cakeSales


def test_window_cumulative_sum_as_in_the_manual(cakes):
    got = agg(cakes, {"$setWindowFields": {
        "partitionBy": "$state", "sortBy": {"orderDate": 1},
        "output": {"cumulativeQuantityForState": {"$sum": "$quantity", "window": {"documents": ["unbounded", "current"]}}}}},
        {"$project": {"state": 1, "cumulativeQuantityForState": 1}})
    assert [(d["_id"], d["cumulativeQuantityForState"]) for d in got] == [(4, 162), (0, 282), (2, 427), (5, 134), (3, 238), (1, 378)]


def test_window_moving_average_rank_and_shift(cakes):
    got = agg(cakes, {"$setWindowFields": {
        "partitionBy": "$state", "sortBy": {"quantity": -1},
        "output": {
            "rank": {"$rank": {}}, "dense": {"$denseRank": {}}, "n": {"$documentNumber": {}},
            "avg2": {"$avg": "$quantity", "window": {"documents": [-1, 0]}},
            "previous": {"$shift": {"output": "$quantity", "by": -1, "default": "none"}},
            "total": {"$sum": "$quantity"},
        }}}, {"$match": {"state": "CA"}})
    assert [(d["_id"], d["rank"], d["n"], d["avg2"], d["previous"], d["total"]) for d in got] == [
        (4, 1, 1, 162.0, "none", 427), (2, 2, 2, 153.5, 162, 427), (0, 3, 3, 132.5, 145, 427)]


def test_window_range_with_a_date_unit(cakes):
    got = agg(cakes, {"$setWindowFields": {
        "partitionBy": "$state", "sortBy": {"orderDate": 1},
        "output": {"recentOrders": {"$push": "$_id", "window": {"range": [-14, 0], "unit": "month"}}}}},
        {"$match": {"state": "WA"}})
    assert [(d["_id"], d["recentOrders"]) for d in got] == [(5, [5]), (3, [5, 3]), (1, [3, 1])]


def test_window_locf_and_exp_moving_average(db):
    db.stock.insert_many([{"t": i, "price": p} for i, p in enumerate([10, None, 12, None])])
    got = agg(db.stock, {"$setWindowFields": {"sortBy": {"t": 1}, "output": {
        "filled": {"$locf": "$price"}, "ema": {"$expMovingAvg": {"input": "$price", "alpha": 0.5}}}}})
    assert [d["filled"] for d in got] == [10, 10, 12, 12]
    assert [d["ema"] for d in got] == [10.0, 10.0, 11.0, 11.0]
    with pytest.raises(OperationFailure) as error:
        agg(db.stock, {"$setWindowFields": {"sortBy": {"t": 1}, "output": {"d": {"$derivative": {"input": "$price"}}}}})
    assert "requires a window" in error.value.details["errmsg"]


def test_hostile_window_arguments_fail_cleanly(db):
    db.w.insert_many([{"x": i} for i in range(3)])
    got = agg(db.w, {"$setWindowFields": {"sortBy": {"x": 1}, "output": {
        "e": {"$expMovingAvg": {"input": "$x", "N": Int64(2**63 - 1)}},
        "s": {"$shift": {"output": "$x", "by": Int64(2**63 - 1), "default": -1}}}}})
    assert [d["s"] for d in got] == [-1, -1, -1]
    with pytest.raises(OperationFailure) as error:
        db.command("aggregate", 1, pipeline=[{"$documents": [{"i": i, "pad": "p" * 1000} for i in range(2000)]},
                                             {"$setWindowFields": {"sortBy": {"i": 1}, "output": {"all": {"$push": "$$ROOT"}}}}], cursor={})
    assert error.value.code == 292
    assert db.client.admin.command("ping")["ok"] == 1


def test_documents_into_out_and_merge(db):
    # A collection-less aggregate may write its $documents, as in MongoDB 7.0.
    reply = db.command("aggregate", 1, pipeline=[{"$documents": [{"_id": 1, "a": 1}, {"_id": 2, "a": 2}]}, {"$out": "x"}], cursor={})
    assert reply["cursor"]["firstBatch"] == []
    assert list(db.x.find().sort("_id", 1)) == [{"_id": 1, "a": 1}, {"_id": 2, "a": 2}]
    db.command("aggregate", 1, pipeline=[{"$documents": [{"_id": 2, "b": 1}, {"_id": 3}]}, {"$merge": {"into": "x"}}], cursor={})
    assert list(db.x.find().sort("_id", 1)) == [{"_id": 1, "a": 1}, {"_id": 2, "a": 2, "b": 1}, {"_id": 3}]
    # The drivers' unified CRUD test aggregate-merge-errorResponse: the duplicate key's details reach the client.
    with pytest.raises(OperationFailure) as error:
        db.command("aggregate", 1, pipeline=[{"$documents": [{"_id": 2}]}, {"$merge": {"into": "x", "whenMatched": "fail"}}], cursor={})
    assert error.value.code == 11000
    assert error.value.details["keyPattern"] == {"_id": 1} and error.value.details["keyValue"] == {"_id": 2}
    # Only into this database (a database is a space), and an explain writes nothing.
    with pytest.raises(OperationFailure) as error:
        db.command("aggregate", 1, pipeline=[{"$documents": [{"_id": 9}]}, {"$out": {"db": "elsewhere", "coll": "x"}}], cursor={})
    assert error.value.code == 20
    db.command("aggregate", 1, pipeline=[{"$documents": [{"_id": 9}]}, {"$merge": {"into": "x"}}], explain=True)
    assert db.x.count_documents({"_id": 9}) == 0
    with pytest.raises(OperationFailure) as error:
        db.command("aggregate", 1, pipeline=[{"$listLocalSessions": {}}, {"$out": "x"}], cursor={})
    assert error.value.code == 40602


def test_range_window_on_a_descending_sort(db):
    db.w.insert_many([{"x": x} for x in [3, 2, 1]])
    got = agg(db.w, {"$setWindowFields": {"sortBy": {"x": -1}, "output": {
        "near": {"$push": "$x", "window": {"range": [-1, 1]}}, "same": {"$push": "$x", "window": {"range": [0, 0]}}}}})
    assert [(d["x"], d["same"], sorted(d["near"])) for d in got] == [(3, [3], [2, 3]), (2, [2], [1, 2, 3]), (1, [1], [1, 2])]


def test_index_stats(db):
    db.st.insert_many([{"_id": i, "a": i} for i in range(5)])
    db.st.create_index("a")
    def ops():
        return {d["name"]: d["accesses"]["ops"] for d in db.st.aggregate([{"$indexStats": {}}])}
    before = ops()
    list(db.st.find({"a": 3}))
    list(db.st.find({"a": {"$gte": 0}}).batch_size(1))  # one operation, however many batches
    db.st.find_one({"_id": 2})
    after = ops()
    assert set(after) == {"_id_", "a_1"}
    assert after["a_1"] - before["a_1"] == 2
    assert after["_id_"] - before["_id_"] == 1
    stats = {d["name"]: d for d in db.st.aggregate([{"$indexStats": {}}, {"$sort": {"name": 1}}])}
    assert stats["a_1"]["key"] == {"a": 1} and stats["a_1"]["spec"] == {"v": 2, "key": {"a": 1}, "name": "a_1"}
    assert isinstance(stats["a_1"]["accesses"]["since"], datetime.datetime) and ":" in stats["a_1"]["host"]
    assert list(db.missing.aggregate([{"$indexStats": {}}])) == []
    # A dropped index's counts go with it: created again, it starts from zero.
    db.st.drop_index("a_1")
    db.st.create_index("a")
    assert ops()["a_1"] == 0
    with pytest.raises(OperationFailure) as error:
        list(db.st.aggregate([{"$match": {}}, {"$indexStats": {}}]))
    assert error.value.code == 40602
    with pytest.raises(OperationFailure) as error:
        list(db.st.aggregate([{"$indexStats": {"x": 1}}]))
    assert error.value.code == 28803


def test_list_local_sessions(client, db):
    with client.start_session() as session:
        db.sess.insert_one({"a": 1}, session=session)
        mine = session.session_id["id"]
        listed = list(db.aggregate([{"$listLocalSessions": {}}], session=session))
        assert mine in [d["_id"]["id"] for d in listed]
        entry = next(d for d in listed if d["_id"]["id"] == mine)
        assert set(entry) == {"_id", "lastUse", "user"} and len(entry["_id"]["uid"]) == 32
        # The drivers' unified CRUD test db-aggregate: a pipeline after the stage.
        assert list(db.aggregate([{"$listLocalSessions": {}}, {"$limit": 1}, {"$addFields": {"dummy": "dummy field"}},
                                  {"$project": {"_id": 0, "dummy": 1}}])) == [{"dummy": "dummy field"}]
    # endSessions (drivers send it when they close) forgets a session. (Held open while
    # checking: an ended pymongo session goes back to its pool and may be reused at once.)
    with client.start_session() as ending, client.start_session() as other:
        db.sess.find_one({}, session=ending)
        ended = ending.session_id["id"]
        client.admin.command("endSessions", [{"id": ended}], session=other)
        listed = [d["_id"]["id"] for d in db.aggregate([{"$listLocalSessions": {"allUsers": True}}], session=other)]
        assert ended not in listed and other.session_id["id"] in listed
    with pytest.raises(OperationFailure) as error:
        list(db.aggregate([{"$listLocalSessions": {"bogus": 1}}]))
    assert error.value.code == 40415


def test_bucket_auto_granularity(db):
    # The manual's example: 100 documents, five buckets on the R20 series.
    db.things.insert_many([{"_id": i} for i in range(100)])
    got = list(db.things.aggregate([{"$bucketAuto": {"groupBy": "$_id", "buckets": 5, "granularity": "R20"}}]))
    assert [(d["_id"]["min"], d["_id"]["max"], d["count"]) for d in got] == [
        (0, 20, 20), (20, 40, 20), (40, 63, 23), (63, 90, 27), (90, 100, 10)]
    # Powers of two keep integers; buckets meet at the rounded boundaries.
    got = list(db.things.aggregate([{"$bucketAuto": {"groupBy": {"$add": ["$_id", 1]}, "buckets": 3, "granularity": "POWERSOF2"}}]))
    assert [(d["_id"]["min"], d["_id"]["max"]) for d in got] == [(0.5, 64), (64, 128)]
    assert sum(d["count"] for d in got) == 100
    # E-series boundaries; 1-2-5.
    got = list(db.things.aggregate([{"$match": {"_id": {"$gte": 1}}}, {"$bucketAuto": {"groupBy": "$_id", "buckets": 2, "granularity": "1-2-5"}}]))
    # Rounding 50 up to 100 takes every value into the first bucket: fewer buckets, as MongoDB warns.
    assert [(d["_id"]["min"], d["_id"]["max"], d["count"]) for d in got] == [(0.5, 100, 99)]
    got = list(db.things.aggregate([{"$match": {"_id": {"$gte": 10, "$lt": 20}}}, {"$bucketAuto": {"groupBy": "$_id", "buckets": 2, "granularity": "E12"}}]))
    assert [(d["_id"]["min"], d["_id"]["max"]) for d in got] == [(8.2, 15.0), (15.0, 22.0)]
    for bad, code in [({"granularity": "R7"}, 40257), ({"granularity": 5}, 40261)]:
        with pytest.raises(OperationFailure) as error:
            list(db.things.aggregate([{"$bucketAuto": {"groupBy": "$_id", "buckets": 2, **bad}}]))
        assert error.value.code == code
    db.mixed.insert_many([{"v": 1}, {"v": "x"}, {"v": -3}])
    with pytest.raises(OperationFailure) as error:
        list(db.mixed.aggregate([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "granularity": "R5"}}]))
    assert error.value.code in (40258, 40260)
