"""Read-only views (`create` with `viewOn` and `pipeline`), as MongoDB's manual shows them."""

import pytest
from bson import Int64
from pymongo.errors import OperationFailure, WriteError


@pytest.fixture
def students(db):
    db.students.insert_many([
        {"sID": 22001, "name": "Alex", "year": 1, "score": 4.0},
        {"sID": 21001, "name": "bernie", "year": 2, "score": 3.7},
        {"sID": 20010, "name": "Chris", "year": 3, "score": 2.5},
        {"sID": 22021, "name": "Drew", "year": 1, "score": 3.2},
        {"sID": 17301, "name": "harley", "year": 6, "score": 3.1},
    ])
    db.command("create", "firstYears", viewOn="students", pipeline=[{"$match": {"year": 1}}])
    return db


def test_a_view_reads_like_a_collection(students):
    db = students
    assert [d["name"] for d in db.firstYears.find({}, {"_id": 0}).sort("sID", 1)] == ["Alex", "Drew"]
    assert [d["name"] for d in db.firstYears.find({"score": {"$gt": 3.5}})] == ["Alex"]
    assert db.firstYears.count_documents({}) == 2
    assert db.firstYears.estimated_document_count() == 2
    assert sorted(db.firstYears.distinct("name")) == ["Alex", "Drew"]
    assert list(db.firstYears.aggregate([{"$group": {"_id": None, "avg": {"$avg": "$score"}}}]))[0]["avg"] == 3.6
    info = [c for c in db.list_collections() if c["name"] == "firstYears"][0]
    assert info["type"] == "view" and info["options"]["viewOn"] == "students" and info["info"]["readOnly"] is True


def test_find_on_a_view_honours_batch_size(students):
    db = students
    db.command("create", "everyone", viewOn="students", pipeline=[])
    first = db.command("find", "everyone", batchSize=2)["cursor"]
    assert len(first["firstBatch"]) == 2 and first["id"] != 0
    assert len(list(db.everyone.find().batch_size(2))) == 5
    single = db.command("find", "everyone", batchSize=2, singleBatch=True)["cursor"]
    assert single["id"] == 0 and len(single["firstBatch"]) == 2


def test_views_on_views_and_new_documents_show_through(students):
    db = students
    db.command("create", "goodFirstYears", viewOn="firstYears", pipeline=[{"$match": {"score": {"$gte": 3.5}}}])
    assert [d["name"] for d in db.goodFirstYears.find()] == ["Alex"]
    db.students.insert_one({"sID": 23000, "name": "Eve", "year": 1, "score": 3.9})
    assert sorted(d["name"] for d in db.goodFirstYears.find()) == ["Alex", "Eve"]


def test_a_view_refuses_writes_and_indexes(students):
    db = students
    with pytest.raises(OperationFailure) as error:
        db.firstYears.insert_one({"name": "x"})
    assert error.value.code == 166
    with pytest.raises(OperationFailure) as error:
        db.firstYears.update_one({}, {"$set": {"x": 1}})
    assert error.value.code == 166
    with pytest.raises(OperationFailure) as error:
        db.firstYears.delete_many({})
    assert error.value.code == 166
    with pytest.raises(OperationFailure) as error:
        db.firstYears.create_index("name")
    assert error.value.code == 166
    with pytest.raises(OperationFailure) as error:
        db.command("create", "badView", viewOn="students", pipeline=[{"$out": "x"}])
    assert error.value.code == 167
    db.firstYears.drop()
    assert "firstYears" not in db.list_collection_names()
    assert db.students.count_documents({}) == 5


def test_a_huge_limit_is_not_a_crash(students):
    db = students
    assert len(db.command("find", "students", limit=Int64(-2**63))["cursor"]["firstBatch"]) == 5
    assert len(db.command("find", "firstYears", limit=Int64(-2**63))["cursor"]["firstBatch"]) == 2
    assert db.command("count", "students", limit=Int64(-2**63))["n"] == 5


def test_views_are_sources_for_lookup_and_union_with(students):
    db = students
    db.scores.insert_many([{"sID": 22001, "test": "a"}, {"sID": 21001, "test": "b"}, {"sID": 22021, "test": "c"}])
    # $lookup from a view sees the view's documents only (first years).
    joined = list(db.scores.aggregate([
        {"$lookup": {"from": "firstYears", "localField": "sID", "foreignField": "sID", "as": "student"}},
        {"$project": {"_id": 0, "test": 1, "names": "$student.name"}}, {"$sort": {"test": 1}}]))
    assert joined == [{"test": "a", "names": ["Alex"]}, {"test": "b", "names": []}, {"test": "c", "names": ["Drew"]}]
    # The pipeline form, with let, on a view of a view.
    db.command("create", "goodFirstYears", viewOn="firstYears", pipeline=[{"$match": {"score": {"$gte": 3.5}}}])
    found = list(db.scores.aggregate([
        {"$lookup": {"from": "goodFirstYears", "let": {"id": "$sID"},
                     "pipeline": [{"$match": {"$expr": {"$eq": ["$sID", "$$id"]}}}, {"$project": {"_id": 0, "name": 1}}], "as": "s"}},
        {"$match": {"s": {"$ne": []}}}, {"$project": {"_id": 0, "test": 1, "s": 1}}]))
    assert found == [{"test": "a", "s": [{"name": "Alex"}]}]
    # A view without stages is its collection, for joins too.
    db.command("create", "everyone", viewOn="students", pipeline=[])
    names = [d["n"] for d in db.scores.aggregate([
        {"$lookup": {"from": "everyone", "localField": "sID", "foreignField": "sID", "as": "s"}},
        {"$project": {"n": {"$size": "$s"}}}])]
    assert names == [1, 1, 1]
    # $unionWith a view.
    names = [d["name"] for d in db.students.aggregate([
        {"$match": {"year": 6}}, {"$unionWith": {"coll": "firstYears", "pipeline": [{"$sort": {"sID": 1}}]}}, {"$project": {"name": 1}}])]
    assert names == ["harley", "Alex", "Drew"]


def test_graph_lookup_through_a_view(db):
    db.employees.insert_many([
        {"_id": 1, "name": "Dev", "active": True}, {"_id": 2, "name": "Eliot", "reportsTo": "Dev", "active": True},
        {"_id": 3, "name": "Ron", "reportsTo": "Eliot", "active": False}, {"_id": 4, "name": "Andrew", "reportsTo": "Eliot", "active": True},
    ])
    db.command("create", "activeEmployees", viewOn="employees", pipeline=[{"$match": {"active": True}}])
    chain = list(db.employees.aggregate([
        {"$match": {"name": "Andrew"}},
        {"$graphLookup": {"from": "activeEmployees", "startWith": "$reportsTo", "connectFromField": "reportsTo",
                          "connectToField": "name", "as": "hierarchy"}},
        {"$project": {"names": "$hierarchy.name"}}]))
    assert sorted(chain[0]["names"]) == ["Dev", "Eliot"]
    # Ron is not active: nobody reaches him through the view.
    below = list(db.employees.aggregate([
        {"$match": {"name": "Dev"}},
        {"$graphLookup": {"from": "activeEmployees", "startWith": "$name", "connectFromField": "name",
                          "connectToField": "reportsTo", "as": "team"}},
        {"$project": {"names": "$team.name"}}]))
    assert sorted(below[0]["names"]) == ["Andrew", "Eliot"]


def test_a_view_whose_pipeline_reads_itself_fails_cleanly(db):
    db.base.insert_one({"_id": 1, "k": 1})
    db.command("create", "loop", viewOn="base", pipeline=[{"$lookup": {"from": "loop", "localField": "k", "foreignField": "k", "as": "x"}}])
    with pytest.raises(OperationFailure) as error:
        list(db.loop.find())
    assert error.value.code == 165
    # The node is fine afterwards.
    assert db.base.count_documents({}) == 1
