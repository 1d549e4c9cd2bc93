"""Error reporting: codes, code names and write-error details as MongoDB 7.0 sends them."""

import pytest
from bson import Decimal128, Int64
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError


def ids(docs):
    return sorted(d["_id"] for d in docs)


# -- duplicate keys ------------------------------------------------------------


def test_insert_one_duplicate_id_raises_duplicate_key_error(db):
    db.c.insert_one({"_id": "double"})
    with pytest.raises(DuplicateKeyError) as excinfo:
        db.c.insert_one({"_id": "double", "other": True})
    err = excinfo.value
    assert err.code == 11000
    assert err.details["errmsg"].startswith("E11000 duplicate key error")
    assert err.details["keyPattern"] == {"_id": 1}
    assert err.details["keyValue"] == {"_id": "double"}
    assert db.c.find_one({"_id": "double"}) == {"_id": "double"}


@pytest.mark.parametrize("same_number", [1.0, Int64(1), Decimal128("1")], ids=["double", "long", "decimal"])
def test_numerically_equal_ids_of_different_types_collide(db, same_number):
    db.c.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        db.c.insert_one({"_id": same_number})


def test_ordered_insert_many_stops_at_first_duplicate(db):
    with pytest.raises(BulkWriteError) as excinfo:
        db.c.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}])
    details = excinfo.value.details
    assert details["nInserted"] == 2
    assert len(details["writeErrors"]) == 1
    write_error = details["writeErrors"][0]
    assert write_error["index"] == 2
    assert write_error["code"] == 11000
    assert ids(db.c.find()) == [1, 2]


def test_unordered_insert_many_continues_after_duplicates(db):
    with pytest.raises(BulkWriteError) as excinfo:
        db.c.insert_many(
            [{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}],
            ordered=False,
        )
    details = excinfo.value.details
    assert details["nInserted"] == 3
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000), (3, 11000)]
    assert ids(db.c.find()) == [1, 2, 3]


def test_update_that_violates_unique_index_is_rejected(db):
    db.c.create_index("email", unique=True)
    db.c.insert_many([{"_id": 1, "email": "a@x"}, {"_id": 2, "email": "b@x"}])
    with pytest.raises(DuplicateKeyError) as excinfo:
        db.c.update_one({"_id": 2}, {"$set": {"email": "a@x"}})
    assert excinfo.value.code == 11000
    assert excinfo.value.details["keyPattern"] == {"email": 1}
    assert excinfo.value.details["keyValue"] == {"email": "a@x"}
    assert db.c.find_one({"_id": 2})["email"] == "b@x"


def test_upsert_that_violates_unique_index_is_rejected(db):
    db.c.create_index("email", unique=True)
    db.c.insert_one({"_id": 1, "email": "a@x"})
    with pytest.raises(DuplicateKeyError):
        db.c.update_one({"_id": 2}, {"$set": {"email": "a@x"}}, upsert=True)
    assert db.c.count_documents({}) == 1


def test_unique_index_treats_missing_field_as_null(db):
    db.c.create_index("email", unique=True)
    db.c.insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        db.c.insert_one({"_id": 2})  # second document without "email" -> null again


# -- bad updates -------------------------------------------------------------


def test_unknown_update_operator_is_failed_to_parse(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as excinfo:  # a WriteError in MongoDB 7.0
        db.c.update_one({"_id": 1}, {"$foo": {"a": 1}})
    assert excinfo.value.code == 9
    assert "Unknown modifier: $foo" in str(excinfo.value)
    assert db.c.find_one() == {"_id": 1}


def test_set_id_is_immutable_field(db):
    db.c.insert_one({"_id": 1, "x": 1})
    with pytest.raises(WriteError) as excinfo:
        db.c.update_one({"_id": 1}, {"$set": {"_id": 2}})
    assert excinfo.value.code == 66
    assert "_id" in excinfo.value.details["errmsg"]
    assert ids(db.c.find()) == [1]


def test_replacement_changing_id_is_immutable_field(db):
    db.c.insert_one({"_id": 1, "x": 1})
    with pytest.raises(WriteError) as excinfo:
        db.c.replace_one({"_id": 1}, {"_id": 2, "x": 2})
    assert excinfo.value.code == 66
    assert db.c.find_one() == {"_id": 1, "x": 1}


# -- bad queries -------------------------------------------------------------


def test_unknown_field_query_operator_is_bad_value(db):
    db.c.insert_one({"_id": 1, "a": 1})
    with pytest.raises(OperationFailure) as excinfo:
        list(db.c.find({"a": {"$foo": 1}}))
    err = excinfo.value
    assert err.code == 2
    assert err.details["codeName"] == "BadValue"
    assert err.details["errmsg"] == "unknown operator: $foo"


def test_unknown_top_level_query_operator_is_bad_value(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as excinfo:
        list(db.c.find({"$foo": 1}))
    assert excinfo.value.code == 2
    # 7.0 appends a hint ("If you have a field name that starts with a '$' ...").
    assert excinfo.value.details["errmsg"].startswith("unknown top level operator: $foo")


# -- namespaces ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "bad$name"], ids=["empty", "dollar"])
def test_invalid_collection_name_is_invalid_namespace(db, name):
    # pymongo refuses these names client-side, so send the raw command.
    with pytest.raises(OperationFailure) as excinfo:
        db.command({"create": name})
    assert excinfo.value.code == 73
    assert excinfo.value.details["codeName"] == "InvalidNamespace"


def test_dropping_a_missing_collection_does_not_raise(db):
    db.drop_collection("never_created")
    db.never_created_either.drop()
    assert "never_created" not in db.list_collection_names()


def test_rename_missing_collection_is_namespace_not_found(client, db):
    with pytest.raises(OperationFailure) as excinfo:
        client.admin.command("renameCollection", f"{db.name}.nope", to=f"{db.name}.other")
    assert excinfo.value.code == 26
    assert excinfo.value.details["codeName"] == "NamespaceNotFound"


# -- error reply shape ---------------------------------------------------------


def _command_errors(client, db):
    """Yield (description, callable) pairs that each produce a command error."""
    db.c.insert_one({"_id": 1})
    yield "unknown command", lambda: db.command("definitelyNotACommand")
    yield "bad query operator", lambda: db.command("find", "c", filter={"a": {"$foo": 1}})
    yield "invalid namespace", lambda: db.command({"create": "bad$name"})
    yield "unknown cursor", lambda: db.command("getMore", Int64(987654321), collection="c")
    yield "missing rename source", lambda: client.admin.command(
        "renameCollection", f"{db.name}.nope", to=f"{db.name}.x"
    )


EXPECTED_CODES = {
    "unknown command": (59, "CommandNotFound"),
    "bad query operator": (2, "BadValue"),
    "invalid namespace": (73, "InvalidNamespace"),
    "unknown cursor": (43, "CursorNotFound"),
    "missing rename source": (26, "NamespaceNotFound"),
}


def test_command_error_replies_carry_ok_errmsg_code_and_code_name(client, db):
    for description, action in _command_errors(client, db):
        with pytest.raises(OperationFailure) as excinfo:
            action()
        details = excinfo.value.details
        assert details["ok"] == 0.0, description
        assert isinstance(details["errmsg"], str) and details["errmsg"], description
        assert isinstance(details["code"], int), description
        assert isinstance(details["codeName"], str), description
        assert (details["code"], details["codeName"]) == EXPECTED_CODES[description], description
    # The connection pool is still healthy afterwards.
    assert db.command("ping")["ok"] == 1.0


def test_write_errors_carry_index_code_and_errmsg(db):
    db.c.insert_one({"_id": 1})
    reply = db.command("insert", "c", documents=[{"_id": 2}, {"_id": 1}], ordered=True)
    # Write errors come back inside an ok:1 reply.
    assert reply["ok"] == 1.0
    assert reply["n"] == 1
    (write_error,) = reply["writeErrors"]
    assert write_error["index"] == 1
    assert write_error["code"] == 11000
    assert isinstance(write_error["errmsg"], str)


def test_transactions_are_refused_rather_than_silently_committed(client, db):
    # Known difference (docs/compatibility.md): no multi-document transactions yet. The first
    # command of a transaction fails with IllegalOperation and nothing is written.
    with client.start_session() as session:
        with pytest.raises(OperationFailure) as caught:
            with session.start_transaction():
                db.t.insert_one({"_id": 1}, session=session)
    assert caught.value.code == 20
    assert db.t.count_documents({}) == 0


def test_sparse_index_does_not_hide_documents_missing_the_field(db):
    db.s.insert_many([{"_id": 1, "e": 5}, {"_id": 2}, {"_id": 3, "e": None}])
    db.s.create_index("e", sparse=True)
    assert sorted(d["_id"] for d in db.s.find({"e": None})) == [2, 3]
