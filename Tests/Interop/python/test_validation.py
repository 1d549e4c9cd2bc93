"""Schema validation: `validator` with `$jsonSchema` or query operators, `validationLevel`,
`validationAction`, `collMod` and `bypassDocumentValidation`, as MongoDB's manual shows them."""

import pytest
from pymongo.errors import OperationFailure, WriteError

STUDENTS = {
    "$jsonSchema": {
        "bsonType": "object",
        "title": "Student Object Validation",
        "required": ["address", "major", "name", "year"],
        "properties": {
            "name": {"bsonType": "string", "description": "'name' must be a string and is required"},
            "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017},
            "gpa": {"bsonType": ["double"]},
            "major": {"enum": ["Math", "English", "Computer Science", "History", None]},
            "address": {"bsonType": "object", "required": ["city"], "properties": {"city": {"bsonType": "string", "minLength": 2}}},
            "tags": {"bsonType": "array", "items": {"bsonType": "string"}, "uniqueItems": True, "maxItems": 3},
        },
    }
}

GOOD = {"name": "Alice", "year": 2019, "major": "History", "gpa": 3.0, "address": {"city": "NYC"}}


def rules(error):
    return error.details["errInfo"]["details"]["schemaRulesNotSatisfied"]


def test_json_schema_accepts_valid_and_refuses_invalid_documents(db):
    db.create_collection("students", validator=STUDENTS)
    db.students.insert_one(dict(GOOD))
    with pytest.raises(WriteError) as error:
        db.students.insert_one({"name": "Bob", "year": 2019, "major": "History", "gpa": 3, "address": {"city": "NYC"}})
    assert error.value.code == 121 and error.value.details["errmsg"] == "Document failed validation"
    info = error.value.details["errInfo"]
    assert "failingDocumentId" in info and info["details"]["operatorName"] == "$jsonSchema"
    failed = rules(error.value)
    assert failed[0]["operatorName"] == "properties"
    assert failed[0]["propertiesNotSatisfied"][0]["propertyName"] == "gpa"
    assert failed[0]["propertiesNotSatisfied"][0]["details"][0]["consideredType"] == "int"
    with pytest.raises(WriteError) as error:
        db.students.insert_one({"name": "Carol", "year": 2019})
    assert rules(error.value)[0] == {"operatorName": "required", "specifiedAs": {"required": ["address", "major", "name", "year"]},
                                     "missingProperties": ["address", "major"]}
    for bad in [{"year": 2016}, {"major": "Art"}, {"address": {"city": "X"}}, {"tags": ["a", "a"]}, {"tags": ["a", "b", "c", "d"]}, {"tags": [1]}]:
        with pytest.raises(WriteError) as error:
            db.students.insert_one(dict(GOOD, **bad))
        assert error.value.code == 121, bad
    assert db.students.count_documents({}) == 1


def test_updates_are_validated(db):
    db.create_collection("students", validator=STUDENTS)
    db.students.insert_one(dict(GOOD, _id=1))
    with pytest.raises(WriteError) as error:
        db.students.update_one({"_id": 1}, {"$set": {"year": "2020"}})
    assert error.value.code == 121
    with pytest.raises(WriteError):
        db.students.replace_one({"_id": 1}, {"name": "only"})
    with pytest.raises(OperationFailure) as error:
        db.students.find_one_and_update({"_id": 1}, {"$unset": {"name": 1}})
    assert error.value.code == 121
    db.students.update_one({"_id": 1}, {"$set": {"year": 2020}})
    assert db.students.find_one({"_id": 1})["year"] == 2020


def test_query_operator_validator(db):
    db.create_collection("contacts", validator={"$or": [{"phone": {"$type": "string"}}, {"email": {"$regex": "@mongodb\\.com$"}}]})
    db.contacts.insert_one({"name": "Amanda", "email": "amanda@mongodb.com"})
    with pytest.raises(WriteError) as error:
        db.contacts.insert_one({"name": "Anne", "phone": 5551234})
    assert error.value.code == 121


def test_moderate_level_lets_invalid_documents_be_updated(db):
    db.create_collection("students")
    db.students.insert_one({"_id": 1, "name": 5})  # written before the validator existed
    db.students.insert_one(dict(GOOD, _id=2))
    db.command("collMod", "students", validator=STUDENTS, validationLevel="moderate")
    db.students.update_one({"_id": 1}, {"$set": {"note": "still invalid, left alone"}})
    with pytest.raises(WriteError):
        db.students.update_one({"_id": 2}, {"$set": {"year": 1}})
    db.command("collMod", "students", validationLevel="strict")
    with pytest.raises(WriteError):
        db.students.update_one({"_id": 1}, {"$set": {"note": "now checked"}})
    options = db.students.options()
    assert options["validationLevel"] == "strict" and "$jsonSchema" in options["validator"]


def test_warn_action_and_bypass_let_writes_through(db, server):
    db.create_collection("students", validator=STUDENTS, validationAction="warn")
    db.students.insert_one({"name": 1, "secret": "planted-value-42"})
    # The node logs the write that would have failed, naming the collection, never the document.
    warnings = [line for line in server.output().splitlines() if "Document would fail validation" in line]
    assert warnings and "collection=students" in warnings[-1]
    assert "planted-value-42" not in server.output()
    db.command("collMod", "students", validationAction="error")
    with pytest.raises(WriteError):
        db.students.insert_one({"name": 2})
    db.students.insert_one({"name": 3}, bypass_document_validation=True)
    db.students.update_one({"name": 3}, {"$set": {"name": 4}}, bypass_document_validation=True)
    assert db.students.count_documents({}) == 2
    db.command("collMod", "students", validator={})
    db.students.insert_one({"name": 5})
    assert "validator" not in db.students.options()


@pytest.mark.parametrize("validator,code", [
    ({"$jsonSchema": {"bsonType": "object", "nope": 1}}, 9),
    ({"$jsonSchema": {"bsonType": "nonsense"}}, 2),
    ({"$jsonSchema": {"required": []}}, 2),
    ({"$where": "true"}, 72),
    ({"$jsonSchema": 5}, 14),
])
def test_a_bad_validator_is_refused_when_created(db, validator, code):
    with pytest.raises(OperationFailure) as error:
        db.create_collection("c", validator=validator)
    assert error.value.code == code


def test_collmod_refuses_unsupported_options_and_missing_collections(db):
    db.create_collection("c")
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "c", index={"keyPattern": {"a": 1}, "prepareUnique": True})
    assert error.value.code == 72
    with pytest.raises(OperationFailure) as error:
        db.command("collMod", "missing", validator={"a": 1})
    assert error.value.code == 26


def test_validator_survives_a_restart(server_factory):
    srv = server_factory()
    db = srv.client().school
    db.create_collection("students", validator=STUDENTS)
    srv.stop()
    srv.start()
    db = srv.client().school
    with pytest.raises(WriteError):
        db.students.insert_one({"name": "x"})
    db.students.insert_one(dict(GOOD))


def test_json_schema_in_queries(db):
    # The manual's "Query Conditions" example: find the documents a schema accepts.
    db.inventory.insert_many([
        {"item": "journal", "qty": 25, "size": {"h": 14, "w": 21, "uom": "cm"}, "instock": True},
        {"item": "notebook", "qty": 50, "size": {"h": 8.5, "w": 11, "uom": "in"}, "instock": True},
        {"item": "paper", "qty": 100, "size": {"h": 8.5, "w": 11, "uom": "in"}, "instock": 1},
        {"item": "planner", "qty": 75, "size": {"h": 22.85, "w": 30, "uom": "cm"}, "instock": 1},
        {"item": "postcard", "qty": 45, "size": {"h": 10, "w": 15.25, "uom": "cm"}, "instock": True},
        {"item": "apple", "qty": 45, "status": "A", "instock": True},
        {"item": "pears", "qty": 50, "status": "A", "instock": True},
    ])
    schema = {"required": ["item", "qty", "instock"], "properties": {
        "item": {"bsonType": "string"}, "qty": {"bsonType": "int"},
        "size": {"bsonType": "object", "required": ["uom"], "properties": {"uom": {"bsonType": "string"}, "h": {"bsonType": "double"}, "w": {"bsonType": "double"}}},
        "instock": {"bsonType": "bool"}}}
    found = sorted(d["item"] for d in db.inventory.find({"$jsonSchema": schema}))
    assert found == ["apple", "pears"]
    # With $nor: the documents that do not match.
    assert db.inventory.count_documents({"$nor": [{"$jsonSchema": schema}]}) == 5
    # Combined with other conditions, in aggregation too.
    assert [d["item"] for d in db.inventory.aggregate([{"$match": {"$jsonSchema": schema, "qty": {"$gt": 45}}}])] == ["pears"]
    with pytest.raises(OperationFailure) as error:
        list(db.inventory.find({"$jsonSchema": {"bsonType": "nonsense"}}))
    assert error.value.code == 2
    with pytest.raises(OperationFailure) as error:
        list(db.inventory.find({"$where": "this.qty > 1"}))
    assert error.value.code == 2


def test_a_json_schema_nested_in_a_validator(db):
    db.create_collection("orders", validator={"$or": [{"$jsonSchema": {"required": ["sku"]}}, {"legacy": True}]})
    db.orders.insert_one({"sku": "a1"})
    db.orders.insert_one({"legacy": True})
    with pytest.raises(WriteError) as error:
        db.orders.insert_one({"qty": 1})
    assert error.value.code == 121
    # A schema's enum ignores collation, as MongoDB's does.
    db.words.insert_one({"a": "str"})
    assert db.words.count_documents({"$jsonSchema": {"properties": {"a": {"enum": ["STR"]}}}}, collation={"locale": "en", "strength": 1}) == 0
    # Not in a partial index.
    with pytest.raises(OperationFailure) as error:
        db.words.create_index("a", partialFilterExpression={"$jsonSchema": {"required": ["a"]}})
    assert error.value.code == 67
