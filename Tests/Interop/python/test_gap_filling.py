"""Gap filling and calculus over ordered data, with the examples of MongoDB's manual: `$densify`,
`$fill`, and the window functions `$linearFill`, `$locf`, `$derivative` and `$integral`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pymongo.errors import OperationFailure


def at(hour, minute=0, second=0):
    return datetime(2021, 5, 18, hour, minute, second)


def strip(documents):
    return [{k: v for k, v in d.items() if k != "_id"} for d in documents]


def test_densify_time_series_with_explicit_bounds(db):
    db.weather.insert_many([{"timestamp": at(h), "temp": t} for h, t in ((0, 12), (4, 11), (8, 11), (12, 12))])
    out = strip(db.weather.aggregate([
        {"$densify": {"field": "timestamp", "range": {"step": 1, "unit": "hour", "bounds": [at(0), at(8)]}}},
    ]))
    assert [d["timestamp"].hour for d in out] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 12]
    # Generated documents hold only the field; existing ones are untouched.
    assert out[1] == {"timestamp": at(1)} and out[0]["temp"] == 12 and out[-1]["temp"] == 12


COFFEE = [
    (600, "Arabica Typica"), (750, "Arabica Typica"), (950, "Arabica Typica"), (1250, "Gesha"), (1700, "Gesha"),
    (1600, "SL28"), (1800, "SL28"),
]


def test_densify_partitions_over_the_full_range(db):
    db.coffee.insert_many([{"altitude": a, "variety": v, "score": 70} for a, v in COFFEE])
    out = strip(db.coffee.aggregate([
        {"$densify": {"field": "altitude", "partitionByFields": ["variety"], "range": {"bounds": "full", "step": 200}}},
    ]))
    by_variety = {}
    for d in out:
        by_variety.setdefault(d["variety"], []).append(d["altitude"])
    assert by_variety == {
        "Arabica Typica": [600, 750, 800, 950, 1000, 1200, 1400, 1600, 1800],
        "Gesha": [600, 800, 1000, 1200, 1250, 1400, 1600, 1700, 1800],
        "SL28": [600, 800, 1000, 1200, 1400, 1600, 1800],
    }
    assert {"altitude": 800, "variety": "Gesha"} in out


def test_densify_each_partition_over_its_own_range(db):
    db.coffee.insert_many([{"altitude": a, "variety": v} for a, v in COFFEE])
    out = strip(db.coffee.aggregate([
        {"$densify": {"field": "altitude", "partitionByFields": ["variety"], "range": {"bounds": "partition", "step": 200}}},
    ]))
    assert [(d["variety"], d["altitude"]) for d in out] == [
        ("Arabica Typica", 600), ("Arabica Typica", 750), ("Arabica Typica", 800), ("Arabica Typica", 950),
        ("Gesha", 1250), ("Gesha", 1450), ("Gesha", 1650), ("Gesha", 1700), ("SL28", 1600), ("SL28", 1800),
    ]


def test_densify_refuses_bad_input_and_runaway_generation(db):
    db.points.insert_many([{"x": 0}, {"x": 10_000_000}, {"other": 1}])
    with pytest.raises(OperationFailure) as error:
        list(db.points.aggregate([{"$densify": {"field": "x", "range": {"step": 1, "bounds": "full"}}}]))
    assert error.value.code == 5897900
    with pytest.raises(OperationFailure):
        list(db.points.aggregate([{"$densify": {"field": "x", "range": {"step": -1, "bounds": "full"}}}]))
    # Documents without the field pass through.
    out = list(db.points.aggregate([{"$densify": {"field": "x", "range": {"step": 5_000_000, "bounds": "full"}}}]))
    assert [d.get("x") for d in out] == [None, 0, 5_000_000, 10_000_000]


def test_fill_with_values(db):
    db.dailySales.insert_many([
        {"date": datetime(2022, 2, 2), "bootsSold": 10, "sandalsSold": 20, "sneakersSold": 12},
        {"date": datetime(2022, 2, 3), "bootsSold": 7, "sneakersSold": 18},
        {"date": datetime(2022, 2, 4), "sneakersSold": 5},
    ])
    out = strip(db.dailySales.aggregate([
        {"$fill": {"output": {"bootsSold": {"value": 0}, "sandalsSold": {"value": 0}, "sneakersSold": {"value": 0}}}},
    ]))
    assert [(d["bootsSold"], d["sandalsSold"], d["sneakersSold"]) for d in out] == [(10, 20, 12), (7, 0, 18), (0, 0, 5)]


def test_fill_linear_and_locf(db):
    base = datetime(2021, 3, 8, 9)
    prices = [500, None, 515, None, None, 485]
    db.stock.insert_many([{"time": base + timedelta(hours=i), **({"price": p} if p is not None else {})} for i, p in enumerate(prices)])
    linear = [d["price"] for d in db.stock.aggregate([{"$fill": {"sortBy": {"time": 1}, "output": {"price": {"method": "linear"}}}}])]
    assert linear == [500, 507.5, 515, 505, 495, 485]
    locf = [d["price"] for d in db.stock.aggregate([{"$fill": {"sortBy": {"time": 1}, "output": {"price": {"method": "locf"}}}}])]
    assert locf == [500, 500, 515, 515, 515, 485]
    with pytest.raises(OperationFailure):
        list(db.stock.aggregate([{"$fill": {"output": {"price": {"method": "linear"}}}}]))  # a method needs sortBy
    # The same through $setWindowFields.
    out = [d["filled"] for d in db.stock.aggregate([
        {"$setWindowFields": {"sortBy": {"time": 1}, "output": {"filled": {"$linearFill": "$price"}}}},
    ])]
    assert out == [500, 507.5, 515, 505, 495, 485]


def test_fill_partitions(db):
    db.scores.insert_many([
        {"t": 1, "team": "a", "score": 1}, {"t": 2, "team": "a"}, {"t": 1, "team": "b"}, {"t": 2, "team": "b", "score": 7}, {"t": 3, "team": "b"},
    ])
    out = [(d["team"], d["t"], d.get("score")) for d in db.scores.aggregate([
        {"$fill": {"partitionByFields": ["team"], "sortBy": {"t": 1}, "output": {"score": {"method": "locf"}}}},
        {"$sort": {"team": 1, "t": 1}},
    ])]
    assert out == [("a", 1, 1), ("a", 2, 1), ("b", 1, None), ("b", 2, 7), ("b", 3, 7)]


def test_derivative_and_integral(db):
    start = datetime(2020, 5, 18, 14, 10, 30)
    miles = [1295.1, 1295.63, 1296.25, 1296.76]
    db.fleet.insert_many([{"truck": "1", "ts": start + timedelta(seconds=30 * i), "miles": m} for i, m in enumerate(miles)])
    speeds = [d["speed"] for d in db.fleet.aggregate([
        {"$setWindowFields": {"partitionBy": "$truck", "sortBy": {"ts": 1}, "output": {
            "speed": {"$derivative": {"input": "$miles", "unit": "hour"}, "window": {"range": [-30, 0], "unit": "second"}}}}},
    ])]
    assert speeds[0] is None
    assert speeds[1:] == pytest.approx([63.6, 74.4, 61.2])

    kilowatts = [2.95, 2.7, 2.6, 2.98]
    db.power.insert_many([{"meter": "1", "ts": start + timedelta(seconds=30 * i), "kw": k} for i, k in enumerate(kilowatts)])
    energy = [d["kwh"] for d in db.power.aggregate([
        {"$setWindowFields": {"partitionBy": "$meter", "sortBy": {"ts": 1}, "output": {
            "kwh": {"$integral": {"input": "$kw", "unit": "hour"}, "window": {"range": [-10, 0], "unit": "minute"}}}}},
    ])]
    assert energy == pytest.approx([0, 0.023541666666666666, 0.045625, 0.068875])
    # Over numbers, no unit: the area under the points.
    db.line.insert_many([{"x": x, "y": 2 * x} for x in range(5)])
    area = [d["a"] for d in db.line.aggregate([{"$setWindowFields": {"sortBy": {"x": 1}, "output": {"a": {"$integral": {"input": "$y"}}}}}])]
    assert area == [16, 16, 16, 16, 16]
    with pytest.raises(OperationFailure):
        list(db.line.aggregate([{"$setWindowFields": {"sortBy": {"x": 1}, "output": {"d": {"$derivative": {"input": "$y"}}}}}]))


def test_covariance_over_a_range_window(db):
    db.pts.insert_many([{"x": x, "y": 2 * x} for x in (0, 1, 2, 10, 11)])
    out = [d["c"] for d in db.pts.aggregate([{"$setWindowFields": {"sortBy": {"x": 1}, "output": {
        "c": {"$covariancePop": ["$x", "$y"], "window": {"range": [-1, 1]}}}}}])]
    # Neighbours within 1: {0,1}, {0,1,2}, {1,2}, {10,11}, {10,11}.
    assert out == pytest.approx([0.5, 4 / 3, 0.5, 0.5, 0.5])


def test_densify_refuses_what_it_cannot_fill(db):
    db.odd.insert_many([{"x": float("nan")}, {"x": 1.0}])
    with pytest.raises(OperationFailure):
        list(db.odd.aggregate([{"$densify": {"field": "x", "range": {"step": 1, "bounds": "full"}}}]))
    db.big.insert_many([{"x": 1e17}, {"x": 1e17 + 64}])
    with pytest.raises(OperationFailure) as error:
        list(db.big.aggregate([{"$densify": {"field": "x", "range": {"step": 1, "bounds": "full"}}}]))
    assert error.value.code == 5733300
