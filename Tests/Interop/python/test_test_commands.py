"""MongoDB's test commands, as drivers' own test suites use them: a node started with
`--enable-test-commands` offers `configureFailPoint` with the `failCommand` fail point; any
other node answers that no such command exists."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect, OperationFailure, WriteConcernError


def fail_point(client, mode, **data):
    return client.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})


def test_without_the_flag_there_are_no_test_commands(client):
    with pytest.raises(OperationFailure) as error:
        fail_point(client, {"times": 1}, failCommands=["insert"], errorCode=8)
    assert error.value.code == 59
    assert client.admin.command({"getParameter": 1, "enableTestCommands": 1})["enableTestCommands"] is False


def test_fail_command_errors_closes_waits_and_turns_off(server_factory):
    node = server_factory("--enable-test-commands")
    client = node.client(retryReads=False, retryWrites=False)
    db = client.shop
    assert client.admin.command({"getParameter": "*"})["enableTestCommands"] is True
    # {times: 1}: the next insert fails with the code, the one after works.
    fail_point(client, {"times": 1}, failCommands=["insert"], errorCode=8, errorLabels=["RetryableWriteError"])
    with pytest.raises(OperationFailure) as error:
        db.items.insert_one({"_id": 1})
    assert error.value.code == 8 and error.value.details["codeName"] == "UnknownError"
    assert error.value.has_error_label("RetryableWriteError")
    db.items.insert_one({"_id": 1})
    assert db.items.count_documents({}) == 1
    # closeConnection: the client sees the connection drop, then reconnects.
    fail_point(client, {"times": 1}, failCommands=["find"], closeConnection=True)
    with pytest.raises(AutoReconnect):
        db.items.find_one({})
    assert db.items.find_one({}) == {"_id": 1}
    # writeConcernError: the write happens and the reply carries the error.
    fail_point(client, {"times": 1}, failCommands=["insert"], writeConcernError={"code": 91, "errmsg": "Replication is being shut down"})
    with pytest.raises(WriteConcernError) as concern:
        db.items.insert_one({"_id": 2})
    assert concern.value.code == 91
    assert db.items.count_documents({}) == 2
    # {skip: 1} lets one through; "alwaysOn" until "off"; appName picks one client.
    fail_point(client, {"skip": 1}, failCommands=["count"], errorCode=2)
    assert db.items.estimated_document_count() == 2
    with pytest.raises(OperationFailure):
        db.items.estimated_document_count()
    fail_point(client, "alwaysOn", failCommands=["delete"], errorCode=112, appName="batch-job")
    db.items.delete_one({"_id": 2})
    job = node.client(appname="batch-job")
    for _ in range(2):
        with pytest.raises(OperationFailure) as error:
            job.shop.items.delete_one({"_id": 1})
        assert error.value.code == 112
    assert fail_point(client, "off")["count"] == 2
    job.shop.items.delete_one({"_id": 1})
    assert db.items.count_documents({}) == 0
    # Bad arguments are refused with their reasons.
    for mode, data in [({"sometimes": 1}, {"failCommands": ["find"]}), ("alwaysOn", {})]:
        with pytest.raises(OperationFailure) as error:
            fail_point(client, mode, **data)
        assert error.value.code == 2
    with pytest.raises(OperationFailure) as error:
        db.command({"configureFailPoint": "failCommand", "mode": "off"})
    assert error.value.code == 13
