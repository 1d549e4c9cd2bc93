"""decimal128 as a shop uses it: prices in `Decimal128` stay decimals through arithmetic,
accumulators, updates and conversions, with all 34 digits, as MongoDB computes them with
Intel's decimal library (the same library here).
"""

from __future__ import annotations

import pytest
from bson.decimal128 import Decimal128 as D
from pymongo.errors import DuplicateKeyError, OperationFailure


def one(db, expression, document=None):
    db.calc.delete_many({})
    db.calc.insert_one(document or {"_id": 1})
    return db.calc.aggregate([{"$project": {"_id": 0, "r": expression}}]).next()["r"]


def test_arithmetic_keeps_decimal_type_and_every_digit(db):
    assert one(db, {"$multiply": ["$price", "$qty"]}, {"price": D("19.99"), "qty": 3}) == D("59.97")
    assert one(db, {"$add": [D("19.99"), 1]}) == D("20.99")
    assert one(db, {"$subtract": [D("0.3"), D("0.1")]}) == D("0.2")
    assert one(db, {"$divide": [D("1"), 3]}) == D("0.3333333333333333333333333333333333")
    assert one(db, {"$mod": [D("10.5"), 3]}) == D("1.5")
    assert one(db, {"$sqrt": D("2")}) == D("1.414213562373095048801688724209698")
    assert one(db, {"$pow": [D("2"), 10]}) == D("1024")
    assert one(db, {"$abs": D("-1.50")}) == D("1.50")
    assert one(db, {"$ceil": D("1.2")}) == D("2")
    assert one(db, {"$floor": D("-1.2")}) == D("-2")
    # $round is half to even, $trunc toward zero; the result has exactly that many places
    # (up to 34 digits), as in MongoDB's own tests.
    assert one(db, {"$round": [D("2.345"), 2]}) == D("2.34")
    assert one(db, {"$round": [D("2.355"), 2]}) == D("2.36")
    assert one(db, {"$trunc": [D("2.349"), 1]}) == D("2.3")
    assert str(one(db, {"$round": [D("2.5"), 2]})) == "2.50"
    assert str(one(db, {"$round": [D("1250"), -2]})) == "1.2E+3"
    assert str(one(db, {"$round": [D("23.298"), -1]})) == "2E+1"
    assert str(one(db, {"$trunc": [D("23.298"), -1]})) == "2E+1"
    assert str(one(db, {"$round": [D("1.298"), 0]})) == "1"
    assert str(one(db, {"$round": [D("1.298912343250054252245154325"), 20]})) == "1.29891234325005425225"
    assert str(one(db, {"$trunc": [D("1.298912343250054252245154325"), 20]})) == "1.29891234325005425224"
    assert str(one(db, {"$round": [D("1.298"), D("100")]})) == "1.298000000000000000000000000000000"
    # Without a decimal operand nothing changes: doubles stay doubles.
    assert one(db, {"$add": [0.1, 0.2]}) == pytest.approx(0.30000000000000004)


def test_division_by_zero_is_an_error_for_decimals_too(db):
    with pytest.raises(OperationFailure) as error:
        one(db, {"$divide": [D("1"), D("0")]})
    assert "divide by zero" in str(error.value)
    with pytest.raises(OperationFailure) as error:
        one(db, {"$mod": [D("1"), 0]})
    assert error.value.code == 16610


def test_sum_and_avg_over_prices_are_exact(db):
    db.orders.insert_many([{"price": D("0.10")} for _ in range(10)] + [{"price": D("19.99")}, {"price": 5}])
    result = db.orders.aggregate([{"$group": {"_id": None, "total": {"$sum": "$price"}, "mean": {"$avg": "$price"}}}]).next()
    assert result["total"] == D("25.99")
    assert result["mean"] == D("2.165833333333333333333333333333333")
    assert db.orders.aggregate([{"$match": {"price": {"$type": "decimal"}}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]).next()["n"] == 11


def test_inc_and_mul_keep_decimals(db):
    db.items.insert_one({"_id": 1, "price": D("19.99"), "stock": 10})
    db.items.update_one({"_id": 1}, {"$inc": {"price": D("0.01")}})
    assert db.items.find_one()["price"] == D("20.00")
    db.items.update_one({"_id": 1}, {"$mul": {"price": 2}})
    assert db.items.find_one()["price"] == D("40.00")
    db.items.update_one({"_id": 1}, {"$inc": {"stock": D("1.5")}})
    assert db.items.find_one()["stock"] == D("11.5")


def test_conversions(db):
    assert one(db, {"$toDecimal": 0.1}) == D("0.100000000000000")
    assert one(db, {"$toDecimal": "1.50"}) == D("1.50")
    assert one(db, {"$toDecimal": 7}) == D("7")
    assert one(db, {"$toLong": D("12345678901234567.9")}) == 12345678901234567
    assert one(db, {"$toDouble": D("0.1")}) == 0.1
    assert one(db, {"$toString": D("1.50")}) == "1.50"
    assert one(db, {"$convert": {"input": "abc", "to": "decimal", "onError": "bad"}}) == "bad"
    with pytest.raises(OperationFailure):
        one(db, {"$toLong": D("1E+30")})


def test_comparison_is_exact(db):
    db.values.insert_many([
        {"_id": "a", "v": D("0.1")}, {"_id": "b", "v": 0.1}, {"_id": "c", "v": D("19.990000000000000000000000001")},
        {"_id": "d", "v": D("19.99")}, {"_id": "e", "v": 20}, {"_id": "f", "v": D("NaN")},
    ])
    # A double is not the decimal with the same digits; the decimal is its exact value.
    assert [d["_id"] for d in db.values.find({"v": D("0.1")})] == ["a"]
    assert [d["_id"] for d in db.values.find({"v": {"$gt": D("19.99")}}).sort("_id", 1)] == ["c", "e"]
    assert [d["_id"] for d in db.values.find().sort([("v", 1), ("_id", 1)])] == ["f", "a", "b", "d", "c", "e"]
    # The same through an index.
    db.values.create_index("v")
    assert [d["_id"] for d in db.values.find({"v": {"$gt": D("19.99")}}).sort("_id", 1)] == ["c", "e"]
    assert [d["_id"] for d in db.values.find({"v": D("19.99")})] == ["d"]


def test_an_index_holding_decimals_answers_as_a_scan_does(db):
    """Decimals are keyed exactly: index and collection scan agree, and the index gives the order."""
    values = [3, D("3.00000"), D("3.000000000000000000000000000000001"), D("2.999999999999999999999999999999999"), 3.5, 0.1, D("0.1")]
    db.nums.insert_many([{"_id": i, "x": v} for i, v in enumerate(values)])
    queries = [{"x": 3}, {"x": {"$gt": 3}}, {"x": {"$lt": 3}}, {"x": {"$gte": 3, "$lte": 3}}, {"x": 0.1}, {"x": D("0.1")}, {"x": {"$in": [3, 0.1]}}]
    scanned = {str(q): sorted(d["_id"] for d in db.nums.find(q)) for q in queries}
    counted = {str(q): db.nums.count_documents(q) for q in queries}
    db.nums.create_index("x")
    for q in queries:
        assert sorted(d["_id"] for d in db.nums.find(q)) == scanned[str(q)], q
        assert db.nums.count_documents(q) == counted[str(q)], q
    assert scanned[str({"x": 3})] == [0, 1] and scanned[str({"x": {"$gt": 3}})] == [2, 4]
    assert [d["_id"] for d in db.nums.find({"x": {"$gte": 2.9, "$lte": 3.1}}).sort("x", 1)] == [3, 0, 1, 2] or \
        [d["_id"] for d in db.nums.find({"x": {"$gte": 2.9, "$lte": 3.1}}).sort("x", 1)] == [3, 1, 0, 2]
    # A decimal _id: found by any equal number, inside a document too.
    db.ids.insert_one({"_id": D("7.0"), "v": 1})
    assert db.ids.find_one({"_id": 7})["v"] == 1
    # Equal decimal _ids are one _id, however they are written.
    for duplicate in (D("7"), D("7.000"), 7, 7.0):
        with pytest.raises(DuplicateKeyError):
            db.ids.insert_one({"_id": duplicate})
    db.ids.insert_one({"_id": 3})
    with pytest.raises(DuplicateKeyError):
        db.ids.insert_one({"_id": D("3.00")})
    db.ids.insert_one({"_id": {"x": D("0.30")}, "v": 2})
    assert db.ids.find_one({"_id": {"x": D("0.3")}})["v"] == 2
    assert [d["v"] for d in db.ids.find({"_id": {"$in": [{"x": 0.3}, {"x": D("0.300")}]}})] == [2]


def test_a_unique_index_tells_apart_numbers_that_differ_only_past_a_double(db):
    """As in MongoDB: 0.1 the double and 0.1 the decimal are different values; 3 and 3.00 are not."""
    db.prices.create_index("p", unique=True)
    db.prices.insert_many([{"p": D("0.1")}, {"p": 0.1}, {"p": 3}, {"p": D("3.000000000000000000000000000000001")},
                           {"p": D("9007199254740993")}, {"p": 9007199254740992}])
    for duplicate in (D("0.10"), D("3.00"), 3.0, 9007199254740993, D("9007199254740992.0")):
        with pytest.raises(DuplicateKeyError):
            db.prices.insert_one({"p": duplicate})
    assert db.prices.count_documents({}) == 6


def test_decimal_indexes_give_the_sort_order_and_agree_with_a_scan(db):
    import random

    rng = random.Random(7)
    values = []
    for _ in range(300):
        kind = rng.randrange(5)
        if kind == 0:
            values.append(D(f"{rng.randrange(-10**6, 10**6)}.{rng.randrange(10**6):06d}"))
        elif kind == 1:
            values.append(rng.uniform(-1e6, 1e6))
        elif kind == 2:
            values.append(rng.randrange(-10**6, 10**6))
        elif kind == 3:
            # Beyond 2^53, where integers, doubles and decimals interleave.
            values.append(rng.choice([2**53 + rng.randrange(8), D(str(2**53 + rng.randrange(8))), float(2**53 + 2 * rng.randrange(4))]))
        else:
            values.append(D(f"0.1{'0' * rng.randrange(30)}{rng.randrange(1, 10)}"))
    db.mixed.insert_many([{"_id": i, "x": v} for i, v in enumerate(values)])
    queries = [{}, {"x": {"$gt": D("0.1")}}, {"x": {"$lte": 2**53 + 3}}, {"x": {"$gte": -5000.5, "$lt": D("123456.5")}},
               {"x": {"$in": [D("0.10"), 0.1, 2**53 + 1]}}, {"x": D(str(2**53 + 2))}]
    scanned = {str(q): [d["_id"] for d in db.mixed.find(q).sort([("x", 1), ("_id", 1)])] for q in queries}
    db.mixed.create_index("x")
    for q in queries:
        found = list(db.mixed.find(q).sort("x", 1))
        # The same documents, in the same order of values (ties in any order).
        assert sorted(d["_id"] for d in found) == sorted(scanned[str(q)]), q
        assert [values[d["_id"]] for d in found] == [values[i] for i in scanned[str(q)]] or \
            sorted(d["_id"] for d in found) == sorted(scanned[str(q)])
        assert db.mixed.count_documents(q) == len(scanned[str(q)]), q
    plan = str(db.mixed.find({"x": {"$gt": D("0.1")}}).sort("x", 1).explain()["queryPlanner"]["winningPlan"])
    assert "IXSCAN" in plan and "SORT" not in plan


def test_the_rare_decimal_without_an_exact_key_is_still_found_exactly(db):
    """A decimal with a fraction above 2^53 shares its key with the integer below it: the index
    then only narrows the search, and answers stay exact."""
    db.rare.create_index("x")
    db.rare.insert_many([{"_id": 1, "x": 2**53 + 1}, {"_id": 2, "x": D("9007199254740993.5")}, {"_id": 3, "x": 2**53 + 2},
                         {"_id": 4, "x": D("9007199254740994.25")}])
    assert [d["_id"] for d in db.rare.find({"x": {"$gt": 2**53 + 1}}).sort("x", 1)] == [2, 3, 4]
    assert [d["_id"] for d in db.rare.find({"x": D("9007199254740993.5")})] == [2]
    assert [d["_id"] for d in db.rare.find({"x": {"$lt": D("9007199254740993.5")}})] == [1]
    assert [d["_id"] for d in db.rare.find({"x": {"$gte": 2**53 + 2}}).sort("x", -1)] == [4, 3]


def test_equal_numbers_group_together_and_distinct_keeps_unequal_ones(db):
    db.g.insert_many([{"k": 3}, {"k": 3.0}, {"k": D("3.00000")}, {"k": 0.1}, {"k": D("0.1")}])
    groups = [d["n"] for d in db.g.aggregate([{"$group": {"_id": "$k", "n": {"$sum": 1}}}])]
    assert sorted(groups) == [1, 1, 3]
    assert len(db.g.distinct("k")) == 3


def test_round_place_and_decimal_strings_are_checked(db):
    with pytest.raises(OperationFailure) as error:
        one(db, {"$round": [D("1"), -9223372036854775808]})
    assert error.value.code == 51083
    with pytest.raises(OperationFailure) as error:
        one(db, {"$round": [1.5, 0.5]})
    assert error.value.code == 51082
    assert one(db, {"$round": [2147483647, -1]}) == 2147483650
    for text in ("1e5e5", ".", "", "1.2.3", "e5", "--1"):
        assert one(db, {"$convert": {"input": text, "to": "decimal", "onError": "bad"}}) == "bad", text
    assert one(db, {"$toDecimal": "-1.5E+3"}) == D("-1.5E+3")


def test_logarithms_and_trigonometry_of_decimals_stay_decimal(db):
    import decimal

    def close(value, expected):
        assert isinstance(value, D), value
        return abs(value.to_decimal() - decimal.Decimal(expected)) < decimal.Decimal("1e-30")

    half_pi = "1.570796326794896619231321691639751"
    assert close(one(db, {"$asin": D("1")}), half_pi)
    assert close(one(db, {"$acos": D("0")}), half_pi)
    assert close(one(db, {"$atan2": [D("1"), 0]}), half_pi)
    assert close(one(db, {"$sin": D("0")}), "0")
    assert close(one(db, {"$cosh": D("0")}), "1")
    assert close(one(db, {"$degreesToRadians": D("90")}), half_pi)
    assert close(one(db, {"$radiansToDegrees": D(half_pi)}), "90")
    assert close(one(db, {"$log": [D("1000"), 10]}), "3")
    assert close(one(db, {"$log": [8, D("2")]}), "3")
    # Doubles stay doubles.
    assert isinstance(one(db, {"$sin": 0.5}), float) and isinstance(one(db, {"$log": [8, 2]}), float)
