"""MongoDB 7.0's aggregation language beyond the basics: the stages that hold sub-pipelines or
bucket documents, the newer expression operators and accumulators, time zones, and the wrong
results issue #14 measured. Expected values are those MongoDB's manual gives for its examples."""

import datetime
import statistics

import pytest
from bson import Int64
from pymongo.errors import OperationFailure

UTC = datetime.timezone.utc


def agg(coll, *stages, **options):
    return list(coll.aggregate(list(stages), **options))


def one(coll, expression, document=None):
    """Evaluates one expression against one document."""
    coll.delete_many({})
    coll.insert_one(dict(document or {}, _id=1))
    return agg(coll, {"$project": {"_id": 0, "v": expression}})[0].get("v", "missing")


@pytest.fixture
def artwork(db):
    db.artwork.insert_many([
        {"_id": 1, "title": "The Pillars of Society", "artist": "Grosz", "year": 1926, "price": 199.99},
        {"_id": 2, "title": "Melancholy III", "artist": "Munch", "year": 1902, "price": 280.00},
        {"_id": 3, "title": "Dancer", "artist": "Miro", "year": 1925, "price": 76.04},
        {"_id": 4, "title": "The Great Wave off Kanagawa", "artist": "Hokusai", "price": 167.30},
        {"_id": 5, "title": "The Persistence of Memory", "artist": "Dali", "year": 1931, "price": 483.00},
        {"_id": 6, "title": "Composition VII", "artist": "Kandinsky", "year": 1913, "price": 385.00},
        {"_id": 7, "title": "The Scream", "artist": "Munch", "year": 1893},
        {"_id": 8, "title": "Blue Flower", "artist": "O'Keefe", "year": 1918, "price": 118.42},
    ])
    return db.artwork


# -- stages ----------------------------------------------------------------------------


def test_facet_runs_each_sub_pipeline_over_the_same_input(artwork):
    got = agg(artwork, {"$facet": {
        "byArtist": [{"$match": {"artist": "Munch"}}, {"$count": "n"}],
        "priced": [{"$match": {"price": {"$exists": True}}}, {"$group": {"_id": None, "max": {"$max": "$price"}}}],
    }})
    assert got == [{"byArtist": [{"n": 2}], "priced": [{"_id": None, "max": 483.0}]}]


def test_facet_refuses_a_nested_facet(artwork):
    with pytest.raises(OperationFailure) as error:
        agg(artwork, {"$facet": {"a": [{"$facet": {"b": [{"$count": "n"}]}}]}})
    assert error.value.code == 40600


def test_bucket_as_in_the_manual(artwork):
    got = agg(artwork, {"$bucket": {
        "groupBy": "$price", "boundaries": [0, 200, 400], "default": "Other",
        "output": {"count": {"$sum": 1}, "titles": {"$push": "$title"}},
    }})
    assert got == [
        {"_id": 0, "count": 4, "titles": ["The Pillars of Society", "Dancer", "The Great Wave off Kanagawa", "Blue Flower"]},
        {"_id": 200, "count": 2, "titles": ["Melancholy III", "Composition VII"]},
        {"_id": "Other", "count": 2, "titles": ["The Persistence of Memory", "The Scream"]},
    ]


def test_bucket_without_default_fails_on_an_outlier(artwork):
    with pytest.raises(OperationFailure) as error:
        agg(artwork, {"$bucket": {"groupBy": "$price", "boundaries": [0, 200]}})
    assert error.value.code == 40066


def test_bucket_boundaries_must_ascend(artwork):
    with pytest.raises(OperationFailure) as error:
        agg(artwork, {"$bucket": {"groupBy": "$price", "boundaries": [200, 0]}})
    assert error.value.code == 40194


def test_bucket_auto_keeps_equal_values_together(db):
    db.vals.insert_many([{"v": v} for v in [1, 1, 1, 2, 3, 4, 5, 6]])
    got = agg(db.vals, {"$bucketAuto": {"groupBy": "$v", "buckets": 4}})
    assert got == [
        {"_id": {"min": 1, "max": 2}, "count": 3},
        {"_id": {"min": 2, "max": 4}, "count": 2},
        {"_id": {"min": 4, "max": 6}, "count": 2},
        {"_id": {"min": 6, "max": 6}, "count": 1},
    ]


def test_lookup_with_let_and_pipeline(db):
    db.orders.insert_many([
        {"_id": 1, "item": "almonds", "price": 12, "ordered": 2},
        {"_id": 2, "item": "pecans", "price": 20, "ordered": 1},
        {"_id": 3, "item": "cookies", "price": 10, "ordered": 60},
    ])
    db.warehouses.insert_many([
        {"_id": 1, "stock_item": "almonds", "warehouse": "A", "instock": 120},
        {"_id": 2, "stock_item": "pecans", "warehouse": "A", "instock": 80},
        {"_id": 3, "stock_item": "almonds", "warehouse": "B", "instock": 60},
        {"_id": 4, "stock_item": "cookies", "warehouse": "B", "instock": 40},
        {"_id": 5, "stock_item": "cookies", "warehouse": "A", "instock": 80},
    ])
    got = agg(db.orders, {"$lookup": {
        "from": "warehouses", "let": {"order_item": "$item", "order_qty": "$ordered"},
        "pipeline": [
            {"$match": {"$expr": {"$and": [{"$eq": ["$stock_item", "$$order_item"]}, {"$gte": ["$instock", "$$order_qty"]}]}}},
            {"$project": {"stock_item": 0, "_id": 0}},
        ],
        "as": "stockdata",
    }}, {"$project": {"stockdata": 1}})
    assert got == [
        {"_id": 1, "stockdata": [{"warehouse": "A", "instock": 120}, {"warehouse": "B", "instock": 60}]},
        {"_id": 2, "stockdata": [{"warehouse": "A", "instock": 80}]},
        {"_id": 3, "stockdata": [{"warehouse": "A", "instock": 80}]},
    ]


def test_lookup_concise_correlated_form(db):
    db.restaurants.insert_many([
        {"_id": 1, "name": "American Steak House", "food": ["filet", "sirloin"], "beverages": ["beer", "wine"]},
        {"_id": 2, "name": "Honest John Pizza", "food": ["cheese pizza", "pepperoni pizza"], "beverages": ["soda"]},
    ])
    db.orders.insert_many([
        {"_id": 1, "item": "filet", "restaurant_name": "American Steak House"},
        {"_id": 2, "item": "cheese pizza", "restaurant_name": "Honest John Pizza", "drink": "lemonade"},
        {"_id": 3, "item": "cheese pizza", "restaurant_name": "Honest John Pizza", "drink": "soda"},
    ])
    got = agg(db.orders, {"$lookup": {
        "from": "restaurants", "localField": "restaurant_name", "foreignField": "name", "let": {"orders_drink": "$drink"},
        "pipeline": [{"$match": {"$expr": {"$in": ["$$orders_drink", "$beverages"]}}}, {"$project": {"_id": 1}}],
        "as": "matches",
    }}, {"$project": {"matches": 1}})
    assert got == [{"_id": 1, "matches": []}, {"_id": 2, "matches": []}, {"_id": 3, "matches": [{"_id": 2}]}]


def test_union_with_another_collection(db):
    db.sales2019.insert_many([{"store": "A", "qty": 1}, {"store": "B", "qty": 2}])
    db.sales2020.insert_many([{"store": "A", "qty": 5}])
    got = agg(
        db.sales2019, {"$project": {"_id": 0}},
        {"$unionWith": {"coll": "sales2020", "pipeline": [{"$project": {"_id": 0}}]}},
        {"$group": {"_id": "$store", "total": {"$sum": "$qty"}}}, {"$sort": {"_id": 1}})
    assert got == [{"_id": "A", "total": 6}, {"_id": "B", "total": 2}]
    # A collection that does not exist adds nothing.
    assert len(agg(db.sales2019, {"$unionWith": "nope"})) == 2


def test_collectionless_documents_stage(db):
    got = db.command("aggregate", 1, pipeline=[
        {"$documents": [{"x": 10}, {"x": 2}, {"x": 5}]}, {"$bucketAuto": {"groupBy": "$x", "buckets": 2}},
    ], cursor={})["cursor"]["firstBatch"]
    assert got == [{"_id": {"min": 2, "max": 10}, "count": 2}, {"_id": {"min": 10, "max": 10}, "count": 1}]
    with pytest.raises(OperationFailure) as error:
        db.command("aggregate", 1, pipeline=[{"$documents": [{"x": 1}]}, {"$lookup": {"from": "c", "localField": "x", "foreignField": "x", "as": "j"}}], cursor={})
    assert "collection-less" in error.value.details["errmsg"]
    with pytest.raises(OperationFailure):
        agg(db.c, {"$documents": [{"x": 1}]})


def test_sample_returns_distinct_documents(db):
    db.people.insert_many([{"_id": i} for i in range(50)])
    got = agg(db.people, {"$sample": {"size": 10}})
    assert len(got) == 10 and len({d["_id"] for d in got}) == 10
    assert len(agg(db.people, {"$sample": {"size": 500}})) == 50


def test_redact_by_access_level(db):
    db.forecasts.insert_one({"_id": 1, "title": "report", "tags": ["G"], "subsections": [
        {"subtitle": "public", "tags": ["G"]}, {"subtitle": "secret", "tags": ["STLW"]},
    ]})
    got = agg(db.forecasts, {"$redact": {"$cond": {
        "if": {"$gt": [{"$size": {"$setIntersection": ["$tags", ["G"]]}}, 0]}, "then": "$$DESCEND", "else": "$$PRUNE"}}})
    assert got == [{"_id": 1, "title": "report", "tags": ["G"], "subsections": [{"subtitle": "public", "tags": ["G"]}]}]


def test_aggregate_let_variables(db):
    db.items.insert_many([{"_id": i, "price": i * 10} for i in range(6)])
    got = agg(db.items, {"$match": {"$expr": {"$gt": ["$price", "$$limit"]}}}, {"$count": "n"}, let={"limit": 25})
    assert got == [{"n": 3}]


def test_changestream_says_not_yet(db):
    db.c.insert_one({})
    for stage in [{"$changeStream": {}}, {"$search": {"text": {"query": "x", "path": "a"}}}]:
        with pytest.raises(OperationFailure) as error:
            agg(db.c, stage)
        assert "not supported" in error.value.details["errmsg"]


def test_unset_inside_an_array_of_documents(db):
    db.c.insert_one({"_id": 1, "items": [{"a": 1, "b": 2}, {"a": 3, "b": 4}], "keep": {"b": 1, "c": 2}})
    assert agg(db.c, {"$unset": ["items.b", "keep.b"]}) == [{"_id": 1, "items": [{"a": 1}, {"a": 3}], "keep": {"c": 2}}]


# -- accumulators ---------------------------------------------------------------------


def test_new_accumulators(artwork):
    got = agg(artwork, {"$match": {"price": {"$exists": True}}}, {"$group": {
        "_id": None,
        "top": {"$top": {"sortBy": {"price": -1}, "output": "$title"}},
        "bottom2": {"$bottomN": {"sortBy": {"price": -1}, "output": "$artist", "n": 2}},
        "first2": {"$firstN": {"input": "$_id", "n": 2}},
        "last2": {"$lastN": {"input": "$_id", "n": 2}},
        "max3": {"$maxN": {"input": "$year", "n": 3}},
        "min2": {"$minN": {"input": "$year", "n": 2}},
        "sdPop": {"$stdDevPop": "$year"},
        "sdSamp": {"$stdDevSamp": [1, 2]},
        "median": {"$median": {"input": "$year", "method": "approximate"}},
        "pct": {"$percentile": {"input": "$price", "p": [0.5, 1.0], "method": "approximate"}},
        "merged": {"$mergeObjects": {"$cond": [{"$eq": ["$artist", "Munch"]}, {"munch": "$title"}, None]}},
    }})[0]
    assert got["top"] == "The Persistence of Memory"
    assert got["bottom2"] == ["O'Keefe", "Miro"]
    assert got["first2"] == [1, 2] and got["last2"] == [6, 8]
    assert got["max3"] == [1931, 1926, 1925] and got["min2"] == [1902, 1913]
    assert abs(got["sdPop"] - statistics.pstdev([1926, 1902, 1925, 1931, 1913, 1918])) < 1e-9
    assert got["sdSamp"] is None  # one non-numeric input per document: nothing to compute from
    assert got["median"] == 1918.0
    assert got["pct"] == [199.99, 483.0]
    assert got["merged"] == {"munch": "Melancholy III"}


def test_n_accumulators_need_a_positive_n(artwork):
    with pytest.raises(OperationFailure) as error:
        agg(artwork, {"$group": {"_id": None, "x": {"$firstN": {"input": "$_id", "n": 0}}}})
    assert error.value.code == 5787908


# -- expression operators ---------------------------------------------------------------


@pytest.mark.parametrize("expression,expected", [
    ({"$reduce": {"input": ["a", "b", "c"], "initialValue": "", "in": {"$concat": ["$$value", "$$this"]}}}, "abc"),
    ({"$reduce": {"input": [[3, 4], [5, 6]], "initialValue": [1, 2], "in": {"$concatArrays": ["$$value", "$$this"]}}}, [1, 2, 3, 4, 5, 6]),
    ({"$zip": {"inputs": [[1, 2, 3], ["a"]], "useLongestLength": True, "defaults": [0, "z"]}}, [[1, "a"], [2, "z"], [3, "z"]]),
    ({"$sortArray": {"input": [{"n": 3}, {"n": 1}], "sortBy": {"n": 1}}}, [{"n": 1}, {"n": 3}]),
    ({"$firstN": {"n": 2, "input": [10, 20, 30]}}, [10, 20]),
    ({"$maxN": {"n": 2, "input": [3, None, 7, 1]}}, [7, 3]),
    ({"$setEquals": [[1, 2, 2], [2, 1]]}, True),
    ({"$setIsSubset": [["a"], ["a", "b"]]}, True),
    ({"$indexOfArray": [["a", "b", "a", "b"], "b", 2]}, 3),
    ({"$indexOfArray": [["a", "b"], "b", 0, 1]}, -1),
    ({"$indexOfCP": ["cafétéria", "é", 4]}, 5),
    ({"$indexOfBytes": ["cafétéria", "é"]}, 3),
    ({"$substrCP": ["cafétéria", 3, 3]}, "été"),
    ({"$regexFindAll": {"input": "a1b22c333", "regex": "(\\d)(\\d)?"}},
        [{"match": "1", "idx": 1, "captures": ["1", None]}, {"match": "22", "idx": 3, "captures": ["2", "2"]},
         {"match": "33", "idx": 6, "captures": ["3", "3"]}, {"match": "3", "idx": 8, "captures": ["3", None]}]),
    ({"$regexFind": {"input": "Café", "regex": "é", "options": "i"}}, {"match": "é", "idx": 3, "captures": []}),
    ({"$replaceOne": {"input": "blue paint blue", "find": "blue", "replacement": "red"}}, "red paint blue"),
    ({"$replaceAll": {"input": "blue paint blue", "find": "blue", "replacement": "red"}}, "red paint red"),
    ({"$convert": {"input": "12", "to": "int"}}, 12),
    ({"$convert": {"input": "x", "to": "int", "onError": "bad"}}, "bad"),
    ({"$convert": {"input": None, "to": "int", "onNull": 0}}, 0),
    ({"$convert": {"input": 3, "to": 2}}, "3"),
    ({"$getField": {"field": "price.usd", "input": {"$literal": {"price.usd": 45}}}}, 45),
    ({"$setField": {"field": "a.b", "input": {"x": 1}, "value": 2}}, {"x": 1, "a.b": 2}),
    ({"$unsetField": {"field": {"$literal": "$price"}, "input": {"$literal": {"$price": 1, "q": 2}}}}, {"q": 2}),
    ({"$bsonSize": {"a": 1}}, 12),
    ({"$binarySize": "héllo"}, 6),
    ({"$log": [100, 10]}, 2.0),
    ({"$bitAnd": [12, 10]}, 8),
    ({"$bitOr": [Int64(12), 3]}, 15),
    ({"$bitNot": 0}, -1),
    ({"$atan2": [1, 1]}, 0.7853981633974483),
    ({"$degreesToRadians": 180}, 3.141592653589793),
    ({"$cos": 0}, 1.0),
])
def test_expression(db, expression, expected):
    assert one(db.e, expression) == expected


def test_getfield_shorthand_reads_the_current_document(db):
    assert one(db.e, {"$getField": "a.b"}, {"a.b": 7, "a": {"b": 8}}) == 7


def test_rand_is_between_zero_and_one(db):
    value = one(db.e, {"$rand": {}})
    assert 0 <= value < 1


@pytest.mark.parametrize("expression,code", [
    ({"$split": ["a1b", 1]}, 40086),
    ({"$split": [5, "1"]}, 40085),
    ({"$substrCP": ["abc", -1, 1]}, 34455),
    ({"$substrCP": ["abc", 0, 1.5]}, 34453),
    ({"$substrBytes": ["é", 0, 1]}, 28657),
    ({"$acos": 2}, 50989),
    ({"$log": [-1, 10]}, 28758),
    ({"$bitAnd": [1.5, 1]}, 28765),
    ({"$indexOfArray": [[1], 1, -1]}, 40097),
    ({"$convert": {"input": "x", "to": "int"}}, 241),
])
def test_expression_errors(db, expression, code):
    with pytest.raises(OperationFailure) as error:
        one(db.e, expression)
    assert error.value.code == code


def test_split_with_null_delimiter_is_null(db):
    assert one(db.e, {"$split": ["a-b", None]}) is None


def test_date_arithmetic_never_crashes_the_server(db):
    when = datetime.datetime(2024, 1, 1)
    for bad in [float("nan"), float("inf"), Int64(2**63 - 1)]:
        with pytest.raises(OperationFailure) as error:
            one(db.e, {"$add": ["$d", bad]}, {"d": when})
        assert error.value.code == 15
    assert one(db.e, {"$add": ["$d", 1.5]}, {"d": when}) == when + datetime.timedelta(milliseconds=2)
    assert one(db.e, {"$subtract": ["$d", 1000]}, {"d": when}) == when - datetime.timedelta(seconds=1)
    assert db.client.admin.command("ping")["ok"] == 1


# -- dates and time zones ---------------------------------------------------------------

WHEN = datetime.datetime(2024, 1, 31, 22, 30, 15, 123000)


@pytest.mark.parametrize("expression,expected", [
    ({"$dateAdd": {"startDate": "$d", "unit": "month", "amount": 1}}, datetime.datetime(2024, 2, 29, 22, 30, 15, 123000)),
    ({"$dateAdd": {"startDate": "$d", "unit": "day", "amount": 1, "timezone": "America/New_York"}}, datetime.datetime(2024, 2, 1, 22, 30, 15, 123000)),
    ({"$dateSubtract": {"startDate": "$d", "unit": "hour", "amount": 23}}, datetime.datetime(2024, 1, 30, 23, 30, 15, 123000)),
    ({"$dateDiff": {"startDate": "$d", "endDate": datetime.datetime(2024, 2, 1, 1), "unit": "day"}}, 1),
    ({"$dateDiff": {"startDate": "$d", "endDate": datetime.datetime(2024, 2, 1, 1), "unit": "day", "timezone": "America/New_York"}}, 0),
    ({"$dateDiff": {"startDate": "$d", "endDate": datetime.datetime(2025, 1, 1), "unit": "year"}}, 1),
    ({"$dateDiff": {"startDate": "$d", "endDate": datetime.datetime(2024, 2, 5), "unit": "week", "startOfWeek": "monday"}}, 1),
    ({"$dateTrunc": {"date": "$d", "unit": "month"}}, datetime.datetime(2024, 1, 1)),
    ({"$dateTrunc": {"date": "$d", "unit": "hour", "binSize": 6}}, datetime.datetime(2024, 1, 31, 18)),
    ({"$dateTrunc": {"date": "$d", "unit": "day", "timezone": "+05:30"}}, datetime.datetime(2024, 1, 31, 18, 30)),
    ({"$dateTrunc": {"date": "$d", "unit": "quarter"}}, datetime.datetime(2024, 1, 1)),
    ({"$dateFromParts": {"year": 2024, "month": 2, "day": 30}}, datetime.datetime(2024, 3, 1)),
    ({"$dateFromParts": {"isoWeekYear": 2024, "isoWeek": 1, "isoDayOfWeek": 1}}, datetime.datetime(2024, 1, 1)),
    ({"$dateFromParts": {"year": 2024, "hour": 12, "timezone": "Asia/Tokyo"}}, datetime.datetime(2024, 1, 1, 3)),
    ({"$dateToParts": {"date": "$d", "timezone": "Europe/Paris"}},
        {"year": 2024, "month": 1, "day": 31, "hour": 23, "minute": 30, "second": 15, "millisecond": 123}),
    ({"$dateToParts": {"date": "$d", "iso8601": True}},
        {"isoWeekYear": 2024, "isoWeek": 5, "isoDayOfWeek": 3, "hour": 22, "minute": 30, "second": 15, "millisecond": 123}),
    ({"$hour": {"date": "$d", "timezone": "Asia/Kolkata"}}, 4),
    ({"$dayOfMonth": {"date": "$d", "timezone": "+03"}}, 1),
    ({"$week": "$d"}, 4),
    ({"$isoWeek": datetime.datetime(2021, 1, 1)}, 53),
    ({"$isoWeekYear": datetime.datetime(2021, 1, 1)}, 2020),
    ({"$isoDayOfWeek": "$d"}, 3),
    ({"$dateToString": {"date": "$d", "format": "%Y-%m-%d %H:%M %z (%j %V %u)", "timezone": "America/New_York"}}, "2024-01-31 17:30 -0500 (031 05 3)"),
])
def test_date_expression(db, expression, expected):
    got = one(db.e, expression, {"d": WHEN})
    assert got == expected


def test_unknown_time_zone_is_refused(db):
    with pytest.raises(OperationFailure) as error:
        one(db.e, {"$hour": {"date": "$d", "timezone": "Mars/Olympus"}}, {"d": WHEN})
    assert error.value.code == 40485


# -- pipeline-style updates, let, $$NOW ----------------------------------------------------


def test_pipeline_style_update_as_in_the_manual(db):
    db.students.insert_many([
        {"_id": 1, "tests": [95, 92, 90]},
        {"_id": 2, "tests": [94, 88, 90]},
        {"_id": 3, "tests": [70, 75, 82]},
    ])
    result = db.students.update_many({}, [
        {"$set": {"average": {"$trunc": [{"$avg": "$tests"}, 0]}, "modified": "$$NOW"}},
        {"$set": {"grade": {"$switch": {"branches": [
            {"case": {"$gte": ["$average", 90]}, "then": "A"}, {"case": {"$gte": ["$average", 80]}, "then": "B"}],
            "default": "F"}}}},
        {"$unset": "tests"},
    ])
    assert result.matched_count == 3 and result.modified_count == 3
    got = list(db.students.find({}, {"modified": 0}).sort("_id", 1))
    assert got == [{"_id": 1, "average": 92.0, "grade": "A"}, {"_id": 2, "average": 90.0, "grade": "A"},
                   {"_id": 3, "average": 75.0, "grade": "F"}]
    assert isinstance(db.students.find_one({"_id": 1})["modified"], datetime.datetime)


def test_pipeline_update_keeps_id_and_refuses_other_stages(db):
    db.c.insert_one({"_id": 1, "a": 1, "b": 2})
    db.c.update_one({"_id": 1}, [{"$replaceWith": {"only": "$b"}}])
    assert db.c.find_one() == {"_id": 1, "only": 2}
    with pytest.raises(OperationFailure) as error:
        db.c.update_one({"_id": 1}, [{"$group": {"_id": None}}])
    assert error.value.code == 72
    with pytest.raises(OperationFailure) as error:
        db.c.update_one({"_id": 1}, [{"$set": {"_id": 2}}])
    assert error.value.code == 66


def test_pipeline_upsert_and_find_and_modify(db):
    db.c.update_one({"name": "x"}, [{"$set": {"n": {"$add": [1, 2]}}}], upsert=True)
    assert db.c.find_one({"name": "x"}, {"_id": 0}) == {"name": "x", "n": 3}
    after = db.c.find_one_and_update({"name": "x"}, [{"$set": {"n": {"$multiply": ["$n", 10]}}}], return_document=True)
    assert after["n"] == 30


def test_let_variables_in_find_update_and_delete(db):
    db.c.insert_many([{"_id": i, "v": i} for i in range(10)])
    # find's let is bound once, so a later batch (getMore) still sees it.
    assert [d["_id"] for d in db.c.find({"$expr": {"$gte": ["$v", "$$low"]}}, let={"low": 5}, batch_size=2)] == [5, 6, 7, 8, 9]
    db.c.update_many({"$expr": {"$lt": ["$v", "$$cut"]}}, [{"$set": {"small": "$$flag"}}], let={"cut": 3, "flag": True})
    assert db.c.count_documents({"small": True}) == 3
    db.c.delete_many({"$expr": {"$eq": ["$v", "$$target"]}}, let={"target": 9})
    assert db.c.count_documents({}) == 9
    with pytest.raises(OperationFailure):
        list(db.c.find({}, let={"Bad": 1}))


def test_now_in_a_find_filter_is_the_current_time(db):
    past = datetime.datetime(2000, 1, 1)
    future = datetime.datetime.now() + datetime.timedelta(days=365)
    db.sessions.insert_many([{"_id": "old", "expires": past}, {"_id": "live", "expires": future}])
    assert [d["_id"] for d in db.sessions.find({"$expr": {"$gt": ["$expires", "$$NOW"]}})] == ["live"]


@pytest.mark.parametrize("argument,message", [
    (5, "malformed mod, needs to be an array"),
    ([4], "malformed mod, not enough elements"),
    ([4, 0, 1], "malformed mod, too many elements"),
    (["4", 0], "malformed mod, divisor not a number"),
    ([4, "0"], "malformed mod, remainder not a number"),
    ([float("nan"), 0], "malformed mod, divisor value is invalid :: caused by :: Unable to coerce NaN/Inf to integral type"),
    ([0, 0], "divisor cannot be 0"),
])
def test_mod_errors_match_mongodb(db, argument, message):
    db.c.insert_one({"v": 1})
    with pytest.raises(OperationFailure) as error:
        list(db.c.find({"v": {"$mod": argument}}))
    assert error.value.code == 2 and error.value.details["errmsg"] == message


# -- hostile inputs: errors, never a crash or a runaway ----------------------------------------


@pytest.mark.parametrize("expression,code", [
    ({"$dateSubtract": {"startDate": "$$NOW", "unit": "day", "amount": Int64(-2**63)}}, 5166405),
    ({"$dateAdd": {"startDate": "$$NOW", "unit": "year", "amount": Int64(2**62)}}, 5166406),
    ({"$dateTrunc": {"date": "$$NOW", "unit": "week", "binSize": Int64(20_000_000_000)}}, 5439017),
    ({"$dateTrunc": {"date": {"$toDate": Int64(-2**63)}, "unit": "day"}}, 15),
    ({"$dateDiff": {"startDate": {"$toDate": Int64(-2**63)}, "endDate": "$$NOW", "unit": "year"}}, 15),
    ({"$range": [Int64(-2**63), Int64(2**63 - 1)]}, 34444),
    ({"$reduce": {"input": {"$range": [0, 40]}, "initialValue": [1], "in": {"$concatArrays": ["$$value", "$$value"]}}}, 292),
    ({"$reduce": {"input": {"$range": [0, 60]}, "initialValue": [1], "in": ["$$value", "$$value"]}}, 292),
    ({"$reduce": {"input": {"$range": [0, 40]}, "initialValue": "ab", "in": {"$concat": ["$$value", "$$value"]}}}, 292),
    ({"$map": {"input": {"$range": [0, 100000]}, "in": {"$range": [0, 100000]}}}, 292),
    ({"$replaceAll": {"input": {"$reduce": {"input": {"$range": [0, 20]}, "initialValue": "x", "in": {"$concat": ["$$value", "$$value"]}}},
                      "find": "", "replacement": "0123456789abcdef0123456789"}}, 292),
])
def test_hostile_expressions_fail_cleanly(db, expression, code):
    with pytest.raises(OperationFailure) as error:
        one(db.e, expression)
    assert error.value.code == code
    assert db.client.admin.command("ping")["ok"] == 1


def test_huge_n_and_lengths_are_fine(db):
    assert one(db.e, {"$maxN": {"n": Int64(2**63 - 1), "input": [3, 1, 2]}}) == [3, 2, 1]
    assert one(db.e, {"$substrBytes": ["x" * 2000, 1024, Int64(2**63 - 1024)]}) == "x" * 976
    db.g.insert_many([{"v": i} for i in range(5)])
    got = agg(db.g, {"$group": {"_id": None, "top": {"$topN": {"n": Int64(2**63 - 1), "sortBy": {"v": -1}, "output": "$v"}}}})
    assert got[0]["top"] == [4, 3, 2, 1, 0]


def test_dates_at_the_ends_of_the_64_bit_range_do_not_crash(db):
    for millis in [-2**63, 2**63 - 1]:
        date = {"$toDate": Int64(millis)}
        got = one(db.e, {"y": {"$year": date}, "w": {"$isoWeek": date}, "s": {"$dateToString": {"date": date}},
                         "p": {"$dateToParts": {"date": date}}})
        assert isinstance(got["y"], int) and isinstance(got["s"], str)
    assert db.client.admin.command("ping")["ok"] == 1
