"""Handshake and administrative commands, as a driver or a shell sees them.

Expected values are those of a standalone MongoDB 7.0 mongod.
"""

import datetime
import re

import pytest
from bson import Binary
from pymongo.errors import OperationFailure


def assert_standalone_handshake_limits(reply):
    """The limits drivers read from hello/isMaster to size their batches."""
    assert reply["ok"] == 1.0
    assert reply["maxBsonObjectSize"] == 16777216
    assert reply["maxMessageSizeBytes"] == 48000000
    assert reply["maxWriteBatchSize"] == 100000
    assert reply["minWireVersion"] == 0
    assert reply["maxWireVersion"] == 21  # MongoDB 7.0
    assert reply["logicalSessionTimeoutMinutes"] == 30
    assert reply["readOnly"] is False
    assert isinstance(reply["connectionId"], int)
    assert isinstance(reply["localTime"], datetime.datetime)
    # A standalone server is neither a replica-set member nor a mongos.
    assert "setName" not in reply
    assert "hosts" not in reply
    assert reply.get("msg") != "isdbgrid"


# -- hello / isMaster --------------------------------------------------------


def test_hello_reports_writable_primary_with_mongodb_7_limits(client):
    reply = client.admin.command("hello")
    assert reply["isWritablePrimary"] is True
    assert_standalone_handshake_limits(reply)


@pytest.mark.parametrize("name", ["isMaster", "ismaster"])
def test_legacy_ismaster_reports_ismaster_true(client, name):
    reply = client.admin.command(name)
    assert reply["ismaster"] is True
    assert_standalone_handshake_limits(reply)


def test_hello_works_on_any_database(client):
    assert client["some_other_db"].command("hello")["isWritablePrimary"] is True


def test_each_connection_has_its_own_connection_id(server):
    with server.client(maxPoolSize=1) as c1, server.client(maxPoolSize=1) as c2:
        id1 = c1.admin.command("hello")["connectionId"]
        id2 = c2.admin.command("hello")["connectionId"]
    assert id1 != id2


def test_pymongo_sees_a_standalone_server(client):
    from pymongo.server_type import SERVER_TYPE

    client.admin.command("ping")
    (description,) = client.topology_description.server_descriptions().values()
    assert description.server_type == SERVER_TYPE.Standalone
    assert description.max_wire_version == 21


# -- simple diagnostics ------------------------------------------------------


def test_ping_returns_ok(client):
    assert client.admin.command("ping") == {"ok": 1.0}


def test_build_info_has_version_string_and_version_array(client):
    info = client.admin.command("buildInfo")
    assert info["ok"] == 1.0
    version, array = info["version"], info["versionArray"]
    assert isinstance(version, str) and version
    assert isinstance(array, list) and len(array) == 4
    assert all(isinstance(part, int) for part in array)
    # "7.0.8" <-> [7, 0, 8, 0]
    assert version.startswith(f"{array[0]}.{array[1]}.{array[2]}")


def test_build_info_claims_mongodb_7_0_like_the_wire_version(client):
    # maxWireVersion 21 means 7.0; shells and GUIs feature-detect on buildInfo.
    info = client.admin.command("buildInfo")
    assert re.match(r"^7\.0\.\d+", info["version"])
    assert info["versionArray"][:2] == [7, 0]


def test_server_info_helper_works(client):
    assert "version" in client.server_info()


def test_server_status_reports_uptime_and_connections(client):
    status = client.admin.command("serverStatus")
    assert status["ok"] == 1.0
    assert isinstance(status["uptime"], (int, float)) and status["uptime"] >= 0
    connections = status["connections"]
    assert isinstance(connections, dict)
    assert connections["current"] >= 1  # at least this connection
    assert "available" in connections
    assert status["version"] == client.admin.command("buildInfo")["version"]
    assert isinstance(status["localTime"], datetime.datetime)


def test_host_info_describes_the_system(client):
    info = client.admin.command("hostInfo")
    assert info["ok"] == 1.0
    system = info["system"]
    assert isinstance(system["hostname"], str) and system["hostname"]
    assert isinstance(system["currentTime"], datetime.datetime)
    assert isinstance(system["numCores"], int) and system["numCores"] >= 1
    assert isinstance(info["os"], dict)


def test_get_parameter_star_returns_ok(client):
    reply = client.admin.command({"getParameter": "*"})
    assert reply["ok"] == 1.0
    # pymongo's own test harness reads enableTestCommands from getParameter "*".
    assert reply["enableTestCommands"] is False and reply["requireApiVersion"] is False
    assert client.admin.command({"getParameter": 1, "enableTestCommands": 1})["enableTestCommands"] is False


def test_server_status_network_counts_traffic(client):
    """The Prometheus exporter reports traffic from serverStatus.network."""
    before = client.admin.command("serverStatus")["network"]
    payload = "x" * 10_000
    client.stratos_network_test.items.insert_one({"payload": payload})
    client.stratos_network_test.items.find_one()
    after = client.admin.command("serverStatus")["network"]
    assert after["numRequests"] >= before["numRequests"] + 3
    assert after["bytesIn"] >= before["bytesIn"] + 10_000
    assert after["bytesOut"] >= before["bytesOut"] + 10_000
    assert after["physicalBytesIn"] == after["bytesIn"] and after["physicalBytesOut"] == after["bytesOut"]
    client.drop_database("stratos_network_test")


def test_get_cmd_line_opts_returns_argv_and_parsed(client):
    reply = client.admin.command("getCmdLineOpts")
    assert reply["ok"] == 1.0
    assert isinstance(reply["argv"], list) and reply["argv"]
    assert all(isinstance(arg, str) for arg in reply["argv"])
    assert isinstance(reply["parsed"], dict)


def test_whatsmyuri_returns_the_client_address(client, server):
    reply = client.admin.command("whatsmyuri")
    assert reply["ok"] == 1.0
    host, _, port = reply["you"].rpartition(":")
    assert host == "127.0.0.1"
    assert port.isdigit() and int(port) != server.port  # our ephemeral port


def test_connection_status_reports_the_logged_in_user(client):
    reply = client.admin.command("connectionStatus")
    assert reply["ok"] == 1.0
    users = reply["authInfo"]["authenticatedUsers"]
    assert [(u["user"], u["db"]) for u in users] == [("owner", "admin")]
    assert users[0]["did"].startswith("did:key:z6Mk")


# -- listDatabases -----------------------------------------------------------


def test_database_is_listed_only_after_data_is_written(client, db):
    assert db.name not in client.list_database_names()
    db.things.insert_one({"x": 1})
    assert db.name in client.list_database_names()


def test_list_databases_full_entries(client, db):
    db.things.insert_one({"x": 1})
    reply = client.admin.command("listDatabases")
    assert reply["ok"] == 1.0
    assert isinstance(reply["totalSize"], (int, float))
    (entry,) = [d for d in reply["databases"] if d["name"] == db.name]
    assert isinstance(entry["sizeOnDisk"], (int, float))
    assert entry["empty"] is False


def test_list_databases_name_only_returns_just_names(client, db):
    db.things.insert_one({"x": 1})
    reply = client.admin.command("listDatabases", nameOnly=True)
    assert reply["ok"] == 1.0
    assert {"name": db.name} in reply["databases"]
    assert all(set(entry) == {"name"} for entry in reply["databases"])


def test_list_databases_filter_by_name(client, db):
    db.things.insert_one({"x": 1})
    names = [d["name"] for d in client.list_databases(filter={"name": db.name})]
    assert names == [db.name]


# -- sessions ----------------------------------------------------------------


def test_start_session_and_use_it(client, db):
    with client.start_session() as session:
        lsid = session.session_id["id"]
        assert isinstance(lsid, Binary) and lsid.subtype == 4
        db.things.insert_one({"_id": 1}, session=session)
        assert db.things.find_one({"_id": 1}, session=session) == {"_id": 1}
        assert db.things.count_documents({}, session=session) == 1


def test_end_sessions_is_accepted(client, db):
    session = client.start_session()
    db.things.insert_one({"_id": 1}, session=session)
    reply = client.admin.command("endSessions", [session.session_id])
    assert reply["ok"] == 1.0
    session.end_session()


def test_kill_sessions_is_accepted(client):
    assert client.admin.command("killSessions", [])["ok"] == 1.0


# -- unknown commands --------------------------------------------------------


def test_unknown_command_is_command_not_found_and_connection_survives(server):
    with server.client(maxPoolSize=1) as c:
        with pytest.raises(OperationFailure) as excinfo:
            c.admin.command("thisCommandDoesNotExist")
        err = excinfo.value
        assert err.code == 59
        assert err.details["codeName"] == "CommandNotFound"
        assert err.details["ok"] == 0.0
        assert "no such command" in err.details["errmsg"]
        assert "thisCommandDoesNotExist" in err.details["errmsg"]
        # Same (single) pooled connection keeps working.
        assert c.admin.command("ping")["ok"] == 1.0
