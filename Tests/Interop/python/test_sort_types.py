"""Sort order across BSON types, exactly as MongoDB 7.0 orders them.

MongoDB's comparison order (lowest first):
    MinKey < Null (= missing) < Numbers (int, long, double, decimal by value)
    < String < Object < Array < BinData < ObjectId < Boolean < Date
    < Timestamp < Regular Expression < MaxKey

When the sort field itself holds an array, the sort key is the array's
smallest element for an ascending sort and its largest element for a
descending sort, and an empty array sorts before null/missing. So the "Array"
slot of the type order is only observable when arrays are compared as
values, e.g. inside embedded documents.
"""

import datetime
import math
import random

import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

MISSING = object()  # marker: the document has no "v" field


def insert_shuffled(coll, docs):
    docs = list(docs)
    random.Random(1234).shuffle(docs)  # insertion order must not matter
    coll.insert_many(docs)


def ranked_docs(ranked_values, field="v"):
    """[(rank, value)] -> documents with _id = position; equal ranks are ties."""
    docs = []
    for _id, (_rank, value) in enumerate(ranked_values):
        doc = {"_id": _id}
        if value is not MISSING:
            doc[field] = value
        docs.append(doc)
    return docs


def expected_ids(ranked_values, direction):
    """Ids sorted by rank (in ``direction``), ties broken by ascending _id."""
    order = sorted(range(len(ranked_values)), key=lambda i: (direction * ranked_values[i][0], i))
    return order


def sorted_ids(coll, direction, field="v"):
    return [d["_id"] for d in coll.find().sort([(field, direction), ("_id", 1)])]


# Values in ascending MongoDB order; equal ranks compare equal.
CROSS_TYPE = [
    (0, MinKey()),
    (1, None),
    (1, MISSING),  # a missing field sorts exactly like null
    (2, -2.5),
    (3, 1),
    (4, Int64(2)),
    (5, Decimal128("2.5")),
    (6, 3.0),
    (7, Int64(10**12)),
    (8, ""),
    (9, "A"),
    (10, "Z"),
    (11, "a"),  # simple binary comparison: upper case before lower case
    (12, "ab"),
    (13, "b"),
    (14, "é"),  # UTF-8 bytes 0xC3 0xA9 sort after ASCII
    (15, {}),
    (16, {"a": 1}),
    (17, {"a": 1, "b": 1}),
    (18, {"b": 0}),
    (19, Binary(b"\x01", 0)),
    (20, ObjectId("000000000000000000000001")),
    (21, ObjectId("ffffffffffffffffffffffff")),
    (22, False),
    (23, True),
    (24, datetime.datetime(1960, 1, 1)),  # dates compare as signed milliseconds
    (25, datetime.datetime(2020, 1, 1)),
    (26, Timestamp(1, 1)),
    (27, Timestamp(2, 0)),
    (28, Regex("a")),
    (29, MaxKey()),
]


@pytest.fixture
def cross(db):
    insert_shuffled(db.cross, ranked_docs(CROSS_TYPE))
    return db.cross


def test_ascending_sort_follows_bson_type_order(cross):
    assert sorted_ids(cross, 1) == expected_ids(CROSS_TYPE, 1)


def test_descending_sort_is_the_reverse_type_order(cross):
    assert sorted_ids(cross, -1) == expected_ids(CROSS_TYPE, -1)


# Wrapping each value as {"k": value} makes every sort key an embedded
# document; documents compare field by field (type first, then name, then
# value), so arrays now appear in their own slot between objects and binData.
WRAPPED = [
    MinKey(),
    None,
    5,
    "s",
    {"x": 1},
    [1, 2],
    Binary(b"\x00", 0),
    ObjectId("000000000000000000000001"),
    True,
    datetime.datetime(2000, 1, 1),
    Timestamp(5, 5),
    Regex("a"),
    MaxKey(),
]


def test_embedded_values_sort_by_type_including_arrays(db):
    insert_shuffled(db.wrapped, [{"_id": i, "w": {"k": v}} for i, v in enumerate(WRAPPED)])
    assert [d["_id"] for d in db.wrapped.find().sort("w", 1)] == list(range(len(WRAPPED)))
    assert [d["_id"] for d in db.wrapped.find().sort("w", -1)] == list(reversed(range(len(WRAPPED))))


def test_numbers_of_different_types_compare_by_value(db):
    values = [
        (0, -1),
        (1, 1.5),
        (2, Decimal128("1.75")),
        (3, 2),
        (3, 2.0),
        (3, Int64(2)),
        (3, Decimal128("2")),
        (4, Int64(3)),
        (5, Decimal128("1E+3")),
    ]
    insert_shuffled(db.nums, ranked_docs(values))
    assert sorted_ids(db.nums, 1) == expected_ids(values, 1)
    assert sorted_ids(db.nums, -1) == expected_ids(values, -1)


def test_nan_sorts_below_every_other_number(db):
    values = [(0, None), (1, float("nan")), (2, float("-inf")), (3, -1e308), (4, 0), (5, float("inf"))]
    insert_shuffled(db.nan, ranked_docs(values))
    assert sorted_ids(db.nan, 1) == [0, 1, 2, 3, 4, 5]
    got = db.nan.find_one({"_id": 1})["v"]
    assert math.isnan(got)


def test_arrays_sort_by_min_element_ascending_and_max_element_descending(db):
    db.arr.insert_many(
        [
            {"_id": "A", "v": [1, 5]},
            {"_id": "B", "v": [2, 3]},
            {"_id": "C", "v": 4},
            {"_id": "D", "v": [0, 10]},
        ]
    )
    # ascending uses the minimum: D(0) A(1) B(2) C(4)
    assert [d["_id"] for d in db.arr.find().sort("v", 1)] == ["D", "A", "B", "C"]
    # descending uses the maximum: D(10) A(5) C(4) B(3)
    assert [d["_id"] for d in db.arr.find().sort("v", -1)] == ["D", "A", "C", "B"]


def test_empty_array_sorts_before_null_and_missing(db):
    values = [
        (0, []),
        (1, None),
        (1, MISSING),
        (2, [0, 1]),  # min 0 (ascending), max 1 (descending)
        (3, 1),
        (3, [1]),  # a one-element array compares like its element
    ]
    insert_shuffled(db.empty, ranked_docs(values))
    assert sorted_ids(db.empty, 1) == [0, 1, 2, 3, 4, 5]
    # Descending: max keys are 1, 1, 1 (ids 3, 4, 5 tie), then null/missing, then [].
    assert sorted_ids(db.empty, -1) == [3, 4, 5, 1, 2, 0]


def test_missing_field_sorts_like_null(db):
    db.nulls.insert_many([{"_id": 1, "v": 1}, {"_id": 2}, {"_id": 3, "v": None}, {"_id": 4, "v": 0}])
    assert [d["_id"] for d in db.nulls.find().sort([("v", 1), ("_id", 1)])] == [2, 3, 4, 1]
    assert [d["_id"] for d in db.nulls.find().sort([("v", 1), ("_id", -1)])] == [3, 2, 4, 1]


def test_embedded_documents_compare_pair_by_pair(db):
    # Field by field: type of the value first, then field name, then value;
    # a document that is a prefix of another sorts first.
    ordered = [{}, {"a": 1}, {"a": 1, "b": 1}, {"a": 2}, {"b": 0}, {"a": "x"}]
    insert_shuffled(db.objs, [{"_id": i, "v": v} for i, v in enumerate(ordered)])
    assert [d["_id"] for d in db.objs.find().sort("v", 1)] == list(range(len(ordered)))


def test_bindata_sorts_by_length_then_subtype_then_bytes(db):
    db.bins.insert_many(
        [
            {"_id": 0, "v": Binary(b"\x02", 0)},
            {"_id": 1, "v": Binary(b"\x01", 5)},
            {"_id": 2, "v": Binary(b"\x01\x01", 0)},
            {"_id": 3, "v": Binary(b"\x00\x00", 1)},
            {"_id": 4, "v": Binary(b"\x00\x05", 0)},
        ]
    )
    assert [d["_id"] for d in db.bins.find().sort("v", 1)] == [0, 1, 4, 2, 3]


def test_sort_on_field_absent_everywhere_returns_all_documents(db):
    db.absent.insert_many([{"_id": i} for i in range(5)])
    assert sorted(d["_id"] for d in db.absent.find().sort("nope", 1)) == [0, 1, 2, 3, 4]
