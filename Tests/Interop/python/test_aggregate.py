"""Aggregation pipeline stages, accumulators and expressions."""

import pytest
from bson import Int64
from pymongo.errors import OperationFailure

SALES = [
    {"_id": 1, "item": "apple", "qty": 5, "price": 2, "tags": ["fruit", "red"], "store": "A"},
    {"_id": 2, "item": "banana", "qty": 10, "price": 1, "tags": ["fruit", "yellow"], "store": "B"},
    {"_id": 3, "item": "carrot", "qty": 3, "price": 4, "tags": ["veg"], "store": "A"},
    {"_id": 4, "item": "apple", "qty": 7, "price": 2, "tags": [], "store": "B"},
    {"_id": 5, "item": "durian", "qty": 1, "price": 20, "store": "A"},
    {"_id": 6, "item": "eggplant", "qty": 2, "price": 3, "tags": None, "store": "C"},
    {"_id": 7, "item": "fig", "qty": 4, "price": 5, "tags": "single", "store": "C"},
]


@pytest.fixture
def sales(db):
    db.sales.insert_many(SALES)
    return db.sales


def agg(coll, *stages):
    return list(coll.aggregate(list(stages)))


# -- $match / $project / $addFields / $set / $unset ---------------------------------


def test_match_and_project_with_computed_field(sales):
    got = agg(
        sales,
        {"$match": {"store": "A"}},
        {"$project": {"item": 1, "total": {"$multiply": ["$qty", "$price"]}}},
        {"$sort": {"_id": 1}},
    )
    assert got == [
        {"_id": 1, "item": "apple", "total": 10},
        {"_id": 3, "item": "carrot", "total": 12},
        {"_id": 5, "item": "durian", "total": 20},
    ]


def test_project_exclusion_and_id_suppression(sales):
    got = agg(sales, {"$match": {"_id": 1}}, {"$project": {"tags": 0, "store": 0}})
    assert got == [{"_id": 1, "item": "apple", "qty": 5, "price": 2}]
    got = agg(sales, {"$match": {"_id": 1}}, {"$project": {"_id": 0, "item": 1}})
    assert got == [{"item": "apple"}]


def test_project_field_path_renames(sales):
    got = agg(sales, {"$match": {"_id": 2}}, {"$project": {"_id": 0, "name": "$item", "n": "$qty"}})
    assert got == [{"name": "banana", "n": 10}]


def test_add_fields_and_set_keep_existing_fields(sales):
    for stage in ("$addFields", "$set"):
        got = agg(sales, {"$match": {"_id": 3}}, {stage: {"total": {"$multiply": ["$qty", "$price"]}}})
        assert got == [{**SALES[2], "total": 12}]


def test_unset_stage(sales):
    got = agg(sales, {"$match": {"_id": 1}}, {"$unset": ["tags", "store"]})
    assert got == [{"_id": 1, "item": "apple", "qty": 5, "price": 2}]
    got = agg(sales, {"$match": {"_id": 1}}, {"$unset": "tags"})
    assert got == [{"_id": 1, "item": "apple", "qty": 5, "price": 2, "store": "A"}]


# -- $sort / $skip / $limit -----------------------------------------------------------


def test_sort_skip_limit(sales):
    got = agg(sales, {"$sort": {"qty": -1}}, {"$skip": 1}, {"$limit": 2}, {"$project": {"_id": 1}})
    assert got == [{"_id": 4}, {"_id": 1}]


def test_sort_compound(sales):
    got = [d["_id"] for d in agg(sales, {"$sort": {"store": 1, "qty": -1}})]
    assert got == [1, 3, 5, 2, 4, 7, 6]


# -- $group -------------------------------------------------------------------------


def test_group_accumulators(sales):
    got = agg(
        sales,
        {"$sort": {"_id": 1}},
        {
            "$group": {
                "_id": "$store",
                "qty": {"$sum": "$qty"},
                "docs": {"$sum": 1},
                "avgPrice": {"$avg": "$price"},
                "minQty": {"$min": "$qty"},
                "maxQty": {"$max": "$qty"},
                "first": {"$first": "$item"},
                "last": {"$last": "$item"},
                "items": {"$push": "$item"},
                "uniqueItems": {"$addToSet": "$item"},
                "n": {"$count": {}},
            }
        },
        {"$sort": {"_id": 1}},
    )
    assert [g["_id"] for g in got] == ["A", "B", "C"]
    a, b, c = got
    assert (a["qty"], a["docs"], a["minQty"], a["maxQty"], a["n"]) == (9, 3, 1, 5, 3)
    assert (b["qty"], b["docs"], b["minQty"], b["maxQty"], b["n"]) == (17, 2, 7, 10, 2)
    assert (c["qty"], c["docs"], c["minQty"], c["maxQty"], c["n"]) == (6, 2, 2, 4, 2)
    assert a["avgPrice"] == pytest.approx(26 / 3)
    assert b["avgPrice"] == pytest.approx(1.5)
    assert c["avgPrice"] == pytest.approx(4.0) and isinstance(c["avgPrice"], float)
    assert (a["first"], a["last"]) == ("apple", "durian")
    assert (b["first"], b["last"]) == ("banana", "apple")
    assert a["items"] == ["apple", "carrot", "durian"]  # $push keeps input order
    assert b["items"] == ["banana", "apple"]
    assert sorted(a["uniqueItems"]) == ["apple", "carrot", "durian"]


def test_group_add_to_set_deduplicates(sales):
    (got,) = agg(sales, {"$group": {"_id": None, "items": {"$addToSet": "$item"}}})
    assert sorted(got["items"]) == ["apple", "banana", "carrot", "durian", "eggplant", "fig"]


def test_group_by_null_totals_everything(sales):
    assert agg(sales, {"$group": {"_id": None, "total": {"$sum": "$qty"}}}) == [{"_id": None, "total": 32}]


def test_group_by_compound_key(sales):
    got = agg(
        sales,
        {"$group": {"_id": {"store": "$store", "item": "$item"}, "qty": {"$sum": "$qty"}}},
        {"$match": {"_id.item": "apple"}},
        {"$sort": {"_id.store": 1}},
    )
    assert got == [
        {"_id": {"store": "A", "item": "apple"}, "qty": 5},
        {"_id": {"store": "B", "item": "apple"}, "qty": 7},
    ]


def test_group_sum_and_avg_ignore_missing_and_non_numeric(db):
    db.g.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": "x"}, {"_id": 3}, {"_id": 4, "v": None}])
    (got,) = agg(
        db.g,
        {"$group": {"_id": None, "s": {"$sum": "$v"}, "avg": {"$avg": "$v"}, "nothing": {"$sum": "$nope"}}},
    )
    assert got == {"_id": None, "s": 1, "avg": 1.0, "nothing": 0}


def test_group_missing_key_groups_under_null(sales):
    got = agg(sales, {"$group": {"_id": "$nope", "n": {"$sum": 1}}})
    assert got == [{"_id": None, "n": 7}]


# -- $unwind ---------------------------------------------------------------------------


def test_unwind_skips_missing_null_and_empty_arrays(sales):
    got = agg(sales, {"$sort": {"_id": 1}}, {"$unwind": "$tags"}, {"$project": {"tags": 1}})
    assert [(d["_id"], d["tags"]) for d in got] == [
        (1, "fruit"),
        (1, "red"),
        (2, "fruit"),
        (2, "yellow"),
        (3, "veg"),
        (7, "single"),  # a non-array value is treated as a one-element array
    ]


def test_unwind_preserve_null_and_empty_arrays_with_index(sales):
    got = agg(
        sales,
        {"$sort": {"_id": 1}},
        {"$unwind": {"path": "$tags", "preserveNullAndEmptyArrays": True, "includeArrayIndex": "idx"}},
        {"$project": {"tags": 1, "idx": 1}},
    )
    assert got == [
        {"_id": 1, "tags": "fruit", "idx": 0},
        {"_id": 1, "tags": "red", "idx": 1},
        {"_id": 2, "tags": "fruit", "idx": 0},
        {"_id": 2, "tags": "yellow", "idx": 1},
        {"_id": 3, "tags": "veg", "idx": 0},
        {"_id": 4, "idx": None},  # empty array: the field is removed
        {"_id": 5, "idx": None},  # missing stays missing
        {"_id": 6, "tags": None, "idx": None},  # null stays null
        {"_id": 7, "tags": "single", "idx": None},
    ]


def test_unwind_include_array_index_is_a_long(sales):
    got = agg(sales, {"$match": {"_id": 1}}, {"$unwind": {"path": "$tags", "includeArrayIndex": "i"}})
    assert [d["i"] for d in got] == [0, 1]
    assert all(isinstance(d["i"], Int64) for d in got)


# -- $count / $sortByCount ---------------------------------------------------------------


def test_count_stage(sales):
    assert agg(sales, {"$match": {"qty": {"$gte": 4}}}, {"$count": "n"}) == [{"n": 4}]


def test_count_stage_on_empty_input_returns_nothing(sales):
    assert agg(sales, {"$match": {"qty": {"$gt": 1000}}}, {"$count": "n"}) == []


def test_sort_by_count(db):
    db.colors.insert_many([{"c": c} for c in ["red", "blue", "red", "green", "blue", "red"]])
    assert agg(db.colors, {"$sortByCount": "$c"}) == [
        {"_id": "red", "count": 3},
        {"_id": "blue", "count": 2},
        {"_id": "green", "count": 1},
    ]


# -- $lookup / $replaceRoot --------------------------------------------------------------


def test_lookup_joins_matching_documents(db):
    db.orders.insert_many([{"_id": 1, "sku": "a", "n": 2}, {"_id": 2, "sku": "b", "n": 1}, {"_id": 3, "sku": "z"}])
    db.inventory.insert_many(
        [{"_id": 10, "sku": "a", "stock": 5}, {"_id": 11, "sku": "b", "stock": 0}, {"_id": 12, "sku": "a", "stock": 1}]
    )
    got = agg(
        db.orders,
        {"$lookup": {"from": "inventory", "localField": "sku", "foreignField": "sku", "as": "inv"}},
        {"$sort": {"_id": 1}},
    )
    assert [d["_id"] for d in got] == [1, 2, 3]
    joined = {d["_id"]: sorted(d["inv"], key=lambda x: x["_id"]) for d in got}
    assert joined[1] == [{"_id": 10, "sku": "a", "stock": 5}, {"_id": 12, "sku": "a", "stock": 1}]
    assert joined[2] == [{"_id": 11, "sku": "b", "stock": 0}]
    assert joined[3] == []
    assert got[0]["n"] == 2  # the local document is otherwise unchanged


def test_lookup_matches_array_local_field_elements(db):
    db.posts.insert_one({"_id": 1, "tagIds": [1, 3]})
    db.tags.insert_many([{"_id": 1, "t": "x"}, {"_id": 2, "t": "y"}, {"_id": 3, "t": "z"}])
    (got,) = agg(db.posts, {"$lookup": {"from": "tags", "localField": "tagIds", "foreignField": "_id", "as": "tags"}})
    assert sorted(t["t"] for t in got["tags"]) == ["x", "z"]


def test_replace_root(db):
    db.people.insert_many(
        [{"_id": 1, "name": "a", "address": {"city": "Oslo", "zip": "0150"}}, {"_id": 2, "name": "b", "address": {"city": "Rome"}}]
    )
    got = agg(db.people, {"$sort": {"_id": 1}}, {"$replaceRoot": {"newRoot": "$address"}})
    assert got == [{"city": "Oslo", "zip": "0150"}, {"city": "Rome"}]
    got = agg(db.people, {"$sort": {"_id": 1}}, {"$replaceRoot": {"newRoot": {"who": "$name", "c": "$address.city"}}})
    assert got == [{"who": "a", "c": "Oslo"}, {"who": "b", "c": "Rome"}]


# -- expressions -------------------------------------------------------------------------


@pytest.fixture
def expr(db):
    db.e.insert_one({"_id": 1, "a": 10, "b": 4, "f": 2.5, "s": "Hello", "arr": [1, 2, 3], "nul": None})
    return db.e


EXPRESSIONS = [
    ({"$add": ["$a", "$b"]}, 14),
    ({"$add": ["$a", "$f"]}, 12.5),
    ({"$subtract": ["$a", "$b"]}, 6),
    ({"$multiply": ["$a", "$b"]}, 40),
    ({"$divide": ["$a", "$b"]}, 2.5),
    ({"$concat": ["$s", " ", "World"]}, "Hello World"),
    ({"$concat": ["$s", "$nul"]}, None),
    ({"$concat": ["$s", "$nope"]}, None),
    ({"$toUpper": "$s"}, "HELLO"),
    ({"$toLower": "$s"}, "hello"),
    ({"$cond": [{"$gt": ["$a", 5]}, "big", "small"]}, "big"),
    ({"$cond": {"if": {"$eq": ["$b", 5]}, "then": "five", "else": "other"}}, "other"),
    ({"$ifNull": ["$nul", "dflt"]}, "dflt"),
    ({"$ifNull": ["$nope", "dflt"]}, "dflt"),
    ({"$ifNull": ["$a", "dflt"]}, 10),
    ({"$eq": ["$a", 10]}, True),
    ({"$eq": ["$a", 10.0]}, True),  # numeric types compare by value
    ({"$eq": ["$s", "hello"]}, False),
    ({"$gt": ["$a", "$b"]}, True),
    ({"$gt": ["$s", 100]}, True),  # expressions compare across types: string > number
    ({"$gt": ["$nope", None]}, False),
    ({"$size": "$arr"}, 3),
    ({"$arrayElemAt": ["$arr", 0]}, 1),
    ({"$arrayElemAt": ["$arr", -1]}, 3),
    ({"$literal": "$a"}, "$a"),
    ({"$literal": 1}, 1),
]


@pytest.mark.parametrize("expression,expected", EXPRESSIONS, ids=[repr(e[0]) for e in EXPRESSIONS])
def test_expression(expr, expression, expected):
    (got,) = agg(expr, {"$project": {"_id": 0, "r": expression}})
    assert got == {"r": expected}
    assert type(got["r"]) is type(expected)


def test_divide_always_returns_a_double(expr):
    (got,) = agg(expr, {"$project": {"_id": 0, "r": {"$divide": ["$a", 5]}}})
    assert got == {"r": 2.0} and isinstance(got["r"], float)


def test_array_elem_at_out_of_range_yields_missing_field(expr):
    (got,) = agg(expr, {"$project": {"_id": 0, "r": {"$arrayElemAt": ["$arr", 10]}, "k": {"$literal": 1}}})
    assert got == {"k": 1}


def test_expression_error_is_reported(expr):
    with pytest.raises(OperationFailure):
        agg(expr, {"$project": {"r": {"$size": "$s"}}})  # $size of a string is an error


def test_aggregate_on_missing_collection_is_empty(db):
    assert agg(db.nothing, {"$match": {}}) == []


def test_unknown_stage_is_an_error(sales):
    with pytest.raises(OperationFailure):
        agg(sales, {"$notAStage": {}})
