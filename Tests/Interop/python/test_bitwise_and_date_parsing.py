"""Bitwise query operators, the $bit update, $dateFromString and the expression forms of
$median, $percentile and $stdDev*, with the examples of MongoDB's manual and the results it
prints.
"""

from __future__ import annotations

import base64
import datetime

import pytest
from bson import Binary, Int64, Timestamp
from pymongo.errors import OperationFailure

UTC = datetime.timezone.utc


def one(db, expression, document=None):
    db.calc.delete_many({})
    db.calc.insert_one(document or {"_id": 1})
    return db.calc.aggregate([{"$project": {"_id": 0, "r": expression}}]).next()["r"]


def ids(cursor):
    return sorted(d["_id"] for d in cursor)


@pytest.fixture
def bits(db):
    db.collection.insert_many([
        {"_id": 1, "a": 54, "binaryValueofA": "00110110"},
        {"_id": 2, "a": 20, "binaryValueofA": "00010100"},
        {"_id": 3, "a": 20.0, "binaryValueofA": "00010100"},
        {"_id": 4, "a": Binary(base64.b64decode("Zg==")), "binaryValueofA": "01100110"},
    ])
    return db.collection


def test_bits_all_set(bits):
    assert ids(bits.find({"a": {"$bitsAllSet": [1, 5]}})) == [1, 4]
    assert ids(bits.find({"a": {"$bitsAllSet": 50}})) == [1]
    assert ids(bits.find({"a": {"$bitsAllSet": Binary(base64.b64decode("MC=="))}})) == [1]


def test_bits_any_set(bits):
    assert ids(bits.find({"a": {"$bitsAnySet": [1, 5]}})) == [1, 4]
    assert ids(bits.find({"a": {"$bitsAnySet": 35}})) == [1, 4]
    assert ids(bits.find({"a": {"$bitsAnySet": Binary(base64.b64decode("MC=="))}})) == [1, 2, 3, 4]


def test_bits_all_clear(bits):
    assert ids(bits.find({"a": {"$bitsAllClear": [1, 5]}})) == [2, 3]
    assert ids(bits.find({"a": {"$bitsAllClear": 35}})) == [2, 3]
    assert ids(bits.find({"a": {"$bitsAllClear": Binary(base64.b64decode("IA=="))}})) == [2, 3]


def test_bits_any_clear(bits):
    assert ids(bits.find({"a": {"$bitsAnyClear": [1, 5]}})) == [2, 3]
    assert ids(bits.find({"a": {"$bitsAnyClear": 35}})) == [1, 2, 3, 4]
    assert ids(bits.find({"a": {"$bitsAnyClear": Binary(base64.b64decode("MC=="))}})) == [2, 3, 4]


def test_bits_of_negative_numbers_fractions_and_bad_masks(db):
    db.n.insert_many([{"_id": 1, "a": -5}, {"_id": 2, "a": 2.5}, {"_id": 3, "a": "54"}, {"_id": 4, "a": [1, 54]}])
    # Two's complement: the sign repeats past bit 63.
    assert ids(db.n.find({"a": {"$bitsAllSet": [0, 63, 200]}})) == [1]
    assert ids(db.n.find({"a": {"$bitsAllClear": [2]}})) == [1, 4]
    # Arrays match through any element; fractions and strings never match.
    assert ids(db.n.find({"a": {"$bitsAllSet": [1, 2, 4, 5]}})) == [4]
    assert ids(db.n.find({"a": {"$bitsAnyClear": 0xFFFF}})) == [1, 4]
    for bad in (-1, 1.5, "x", [-1], [1.5]):
        with pytest.raises(OperationFailure):
            list(db.n.find({"a": {"$bitsAllSet": bad}}))


def test_bit_update(db):
    db.switches.insert_many([{"_id": 1, "expdata": 13}, {"_id": 2, "expdata": Int64(3)}, {"_id": 3, "expdata": Int64(1)}])
    db.switches.update_one({"_id": 1}, {"$bit": {"expdata": {"and": 10}}})
    db.switches.update_one({"_id": 2}, {"$bit": {"expdata": {"or": 5}}})
    db.switches.update_one({"_id": 3}, {"$bit": {"expdata": {"xor": 5}}})
    found = {d["_id"]: d["expdata"] for d in db.switches.find()}
    assert found == {1: 8, 2: 7, 3: 4}
    assert isinstance(found[2], Int64) and not isinstance(found[1], Int64)
    # Several operations in order; a missing field starts at 0.
    db.switches.update_one({"_id": 1}, {"$bit": {"expdata": {"or": 7, "and": 12}, "fresh": {"or": 6}}})
    after = db.switches.find_one({"_id": 1})
    assert after["expdata"] == 12 and after["fresh"] == 6
    for bad in ({"expdata": 5}, {"expdata": {"nand": 1}}, {"expdata": {"and": 1.5}}, {"expdata": {}}):
        with pytest.raises(OperationFailure):
            db.switches.update_one({"_id": 1}, {"$bit": bad})
    db.switches.insert_one({"_id": 4, "expdata": 2.5})
    with pytest.raises(OperationFailure):
        db.switches.update_one({"_id": 4}, {"$bit": {"expdata": {"and": 1}}})


def test_date_from_string_manual_examples(db):
    def at(*parts):
        return datetime.datetime(*parts)

    assert one(db, {"$dateFromString": {"dateString": "2017-02-08T12:10:40.787", "timezone": "America/New_York"}}) == \
        at(2017, 2, 8, 17, 10, 40, 787000)
    assert one(db, {"$dateFromString": {"dateString": "2017-02-08"}}) == at(2017, 2, 8)
    assert one(db, {"$dateFromString": {"dateString": "06-15-2018", "format": "%m-%d-%Y"}}) == at(2018, 6, 15)
    assert one(db, {"$dateFromString": {"dateString": "15-06-2018", "format": "%d-%m-%Y"}}) == at(2018, 6, 15)
    assert one(db, {"$dateFromString": {"dateString": "2017-02-09T03:35:02.055", "timezone": "+0530"}}) == \
        at(2017, 2, 8, 22, 5, 2, 55000)
    assert one(db, {"$dateFromString": {"dateString": "2017-02-08T12:10:40.787Z"}}) == at(2017, 2, 8, 12, 10, 40, 787000)
    assert one(db, {"$dateFromString": {"dateString": "2017-02-08 12:10:40-05:00"}}) == at(2017, 2, 8, 17, 10, 40)
    assert one(db, {"$dateFromString": {"dateString": "2018-W01-1T10:00", "format": "%G-W%V-%uT%H:%M"}}) == at(2018, 1, 1, 10)
    assert one(db, {"$dateFromString": {"dateString": "2020/060", "format": "%Y/%j"}}) == at(2020, 2, 29)
    # onError and onNull, as the manual shows them.
    assert one(db, {"$dateFromString": {"dateString": "20177-02-09T03:35:02.055", "onError": "An error occurred"}}) == "An error occurred"
    assert one(db, {"$dateFromString": {"dateString": "$missing", "onNull": at(1970, 1, 1)}}) == at(1970, 1, 1)
    assert one(db, {"$dateFromString": {"dateString": None}}) is None
    assert one(db, {"$dateFromString": {"dateString": 5, "onError": "bad"}}) == "bad"
    with pytest.raises(OperationFailure) as error:
        one(db, {"$dateFromString": {"dateString": "2017-02-30"}})
    assert error.value.code == 241 and "2017" not in str(error.value)
    with pytest.raises(OperationFailure) as error:
        one(db, {"$dateFromString": {"dateString": "2017-02-08T00:00:00Z", "timezone": "Europe/London"}})
    assert error.value.code == 241
    with pytest.raises(OperationFailure) as error:
        one(db, {"$dateFromString": {"dateString": "2017-02-08", "bogus": 1}})
    assert error.value.code == 40541


def test_median_percentile_and_std_dev_as_expressions(db):
    doc = {"_id": 1, "test01": 62, "test02": 81, "test03": 80}
    assert one(db, {"$median": {"input": ["$test01", "$test02", "$test03"], "method": "approximate"}}, doc) == 80
    assert one(db, {"$percentile": {"input": ["$test01", "$test02", "$test03"], "p": [0.5, 0.95], "method": "approximate"}}, doc) == [80, 81]
    assert one(db, {"$median": {"input": "$test01", "method": "approximate"}}, doc) == 62
    assert one(db, {"$median": {"input": [], "method": "approximate"}}, doc) is None
    assert one(db, {"$stdDevPop": ["$test01", "$test02", "$test03"]}, doc) == pytest.approx(8.73053390247253)
    assert one(db, {"$stdDevSamp": [[1, 2, 3, 4]]}, doc) == pytest.approx(1.2909944487358056)
    assert one(db, {"$stdDevPop": [5]}, doc) == 0.0
    with pytest.raises(OperationFailure):
        one(db, {"$percentile": {"input": [1], "p": [1.5], "method": "approximate"}}, doc)
    with pytest.raises(OperationFailure):
        one(db, {"$median": {"input": [1], "method": "exact"}}, doc)


def test_timestamp_parts(db):
    doc = {"_id": 1, "t": Timestamp(1622731060, 10)}
    assert one(db, {"$tsSecond": "$t"}, doc) == 1622731060
    assert one(db, {"$tsIncrement": "$t"}, doc) == 10
    assert one(db, {"$tsSecond": "$missing"}, doc) is None
    with pytest.raises(OperationFailure):
        one(db, {"$tsSecond": 5}, doc)


def test_sample_rate_keeps_about_that_share(db):
    db.many.insert_many([{"_id": i} for i in range(2000)])
    kept = db.many.count_documents({"$sampleRate": 0.25})
    assert 300 < kept < 700
    assert db.many.count_documents({"$sampleRate": 0}) == 0 and db.many.count_documents({"$sampleRate": 1}) == 2000
    with pytest.raises(OperationFailure):
        db.many.count_documents({"$sampleRate": 1.5})


def test_median_of_a_missing_field_is_null(db):
    assert one(db, {"$median": {"input": "$missing", "method": "approximate"}}) is None
    assert one(db, {"$percentile": {"input": "$missing", "p": [0.5, 0.9], "method": "approximate"}}) == [None, None]
