"""TTL indexes: documents whose indexed date is older than `expireAfterSeconds` are deleted by
the TTL monitor (one pass a second here, `--ttl-monitor-sleep-secs 1`), also after a restart."""

import datetime
import time

import pytest
from pymongo.errors import OperationFailure


def wait_for(predicate, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_expired_documents_are_deleted_and_others_stay(server_factory):
    srv = server_factory("--ttl-monitor-sleep-secs", "1")
    db = srv.client().app
    db.sessions.create_index("lastSeen", expireAfterSeconds=60)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    db.sessions.insert_many([
        {"_id": "old", "lastSeen": now - datetime.timedelta(minutes=5)},
        {"_id": "older-in-array", "lastSeen": [now, now - datetime.timedelta(hours=1)]},
        {"_id": "fresh", "lastSeen": now},
        {"_id": "not-a-date", "lastSeen": "yesterday"},
        {"_id": "missing"},
    ])
    assert wait_for(lambda: db.sessions.count_documents({}) == 3)
    assert sorted(d["_id"] for d in db.sessions.find()) == ["fresh", "missing", "not-a-date"]
    ttl = db.command("serverStatus")["metrics"]["ttl"]
    assert ttl["deletedDocuments"] >= 2 and ttl["passes"] >= 1
    # listIndexes shows the option as given.
    spec = [i for i in db.sessions.list_indexes() if i["name"] == "lastSeen_1"][0]
    assert spec["expireAfterSeconds"] == 60


def test_expire_at_a_specific_clock_time_and_after_a_restart(server_factory):
    srv = server_factory("--ttl-monitor-sleep-secs", "1")
    db = srv.client().app
    db.log.create_index("expireAt", expireAfterSeconds=0)
    soon = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(seconds=3)
    db.log.insert_one({"_id": 1, "expireAt": soon})
    srv.stop()
    srv.start()
    db = srv.client().app
    assert db.log.count_documents({}) == 1
    assert wait_for(lambda: db.log.count_documents({}) == 0)


@pytest.mark.parametrize("keys,options,code", [
    ([("a", 1), ("b", 1)], {"expireAfterSeconds": 10}, 67),
    ([("a", 1)], {"expireAfterSeconds": -1}, 67),
    ([("a", 1)], {"expireAfterSeconds": "10"}, 67),
    ([("_id", 1)], {"expireAfterSeconds": 10, "name": "id_ttl"}, 197),
])
def test_bad_ttl_indexes_are_refused(db, keys, options, code):
    with pytest.raises(OperationFailure) as error:
        db.c.create_index(keys, **options)
    assert error.value.code == code
