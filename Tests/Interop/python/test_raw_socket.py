"""Hand-built wire-protocol messages and hostile input on raw TCP sockets.

Whatever a client sends, the server must keep serving everybody else: after
each abuse a fresh pymongo client must still be able to ping.
"""

import socket
import struct

import bson
import pytest

from mongo_wire import (
    MAX_MESSAGE_SIZE_BYTES,
    MORE_TO_COME,
    OP_MSG,
    OP_REPLY,
    ConnectionClosed,
    connect,
    doc_sequence,
    frame,
    op_msg,
    op_query,
    parse_op_msg,
    parse_op_reply,
    raw_header,
    read_message,
    roundtrip,
    wait_for_close,
)


def assert_server_still_serves(server):
    with server.client() as fresh:
        assert fresh.admin.command("ping")["ok"] == 1.0


# -- well-formed messages built by hand ----------------------------------------------


def test_hand_built_op_msg_ping_gets_ok_reply(server):
    with server.raw_connection() as sock:
        sock.sendall(op_msg(1234, {"ping": 1, "$db": "admin"}))
        header, payload = read_message(sock)
        assert header.op_code == OP_MSG
        assert header.response_to == 1234
        assert header.message_length == 16 + len(payload)
        flags, body, sequences = parse_op_msg(payload)
        assert flags & MORE_TO_COME == 0
        assert sequences == {}
        assert body["ok"] == 1.0


def test_hand_built_hello_over_op_msg(server):
    with server.raw_connection() as sock:
        reply = roundtrip(sock, 7, {"hello": 1, "$db": "admin"})
        assert reply["isWritablePrimary"] is True
        assert reply["maxWireVersion"] == 21


def test_legacy_op_query_is_master_gets_op_reply(server):
    # Old drivers (and some tools) still open with OP_QUERY isMaster on admin.$cmd.
    with server.raw_connection() as sock:
        sock.sendall(op_query(99, "admin.$cmd", {"isMaster": 1}))
        header, payload = read_message(sock)
        assert header.op_code == OP_REPLY
        assert header.response_to == 99
        _flags, cursor_id, starting_from, docs = parse_op_reply(payload)
        assert (cursor_id, starting_from, len(docs)) == (0, 0, 1)
        assert docs[0]["ismaster"] is True
        assert docs[0]["maxWireVersion"] == 21
        assert docs[0]["ok"] == 1.0


def test_pipelined_requests_are_answered_in_order(server):
    with server.raw_connection() as sock:
        sock.sendall(b"".join(op_msg(100 + i, {"ping": 1, "$db": "admin"}) for i in range(5)))
        for i in range(5):
            header, payload = read_message(sock)
            assert header.response_to == 100 + i
            assert parse_op_msg(payload)[1]["ok"] == 1.0


def test_a_client_that_does_not_read_its_replies_is_held_back_and_loses_nothing(server):
    # 60 pipelined finds of a 1 MB document (60 MB of replies) sent while nobody reads: the
    # server stops taking requests from that socket once the replies fill the socket (TCP
    # pushes back), keeps serving everybody else, and when the client reads, every reply
    # arrives whole and in order.
    import threading

    with server.client() as setup:
        setup.rawpipe.big.insert_one({"_id": 1, "blob": "x" * 1_000_000})
    count = 60
    messages = b"".join(op_msg(10_000 + i, {"find": "big", "filter": {"_id": 1}, "$db": "rawpipe"}) for i in range(count))
    with server.raw_connection(timeout=60) as sock:
        sent = threading.Event()

        def send():
            sock.sendall(messages)
            sent.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        assert sent.wait(10.0)
        assert_server_still_serves(server)
        for i in range(count):
            header, payload = read_message(sock)
            assert header.response_to == 10_000 + i
            batch = parse_op_msg(payload)[1]["cursor"]["firstBatch"]
            assert len(batch) == 1 and len(batch[0]["blob"]) == 1_000_000
        sender.join(timeout=30)


def test_the_node_stops_promptly_while_a_client_does_not_read_its_replies(tmp_path):
    # SIGTERM while a connection waits for its client to read 60 MB of replies (and more
    # requests wait queued): the node closes that connection and exits cleanly.
    import time

    from conftest import ServerProcess

    node = ServerProcess(tmp_path / "data")
    node.start()
    try:
        with node.client() as setup:
            setup.rawpipe.big.insert_one({"_id": 1, "blob": "x" * 1_000_000})
        sock = node.raw_connection(timeout=30)
        sock.sendall(b"".join(op_msg(20_000 + i, {"find": "big", "filter": {"_id": 1}, "$db": "rawpipe"}) for i in range(60)))
        time.sleep(1.0)
        started = time.monotonic()
        assert node.stop(timeout=20) == 0
        assert time.monotonic() - started < 20
        sock.close()
    finally:
        node.stop()

def test_requests_before_a_broken_frame_are_answered_then_the_connection_closes(server):
    with server.raw_connection() as sock:
        sock.sendall(b"".join(op_msg(500 + i, {"ping": 1, "$db": "admin"}) for i in range(3)) + raw_header(-1) + b"\x00" * 32)
        for i in range(3):
            header, payload = read_message(sock)
            assert header.response_to == 500 + i
            assert parse_op_msg(payload)[1]["ok"] == 1.0
        assert wait_for_close(sock)
    assert_server_still_serves(server)

def test_insert_with_document_sequence_section(server, db):
    with server.raw_connection() as sock:
        reply = roundtrip(
            sock,
            11,
            {"insert": "seq", "$db": db.name},
            sequences=[doc_sequence("documents", [{"_id": 1}, {"_id": 2}, {"_id": 3}])],
        )
        assert reply["ok"] == 1.0
        assert reply["n"] == 3
    assert sorted(d["_id"] for d in db.seq.find()) == [1, 2, 3]


def test_more_to_come_insert_gets_no_reply_and_is_applied(server, db):
    with server.raw_connection() as sock:
        sock.sendall(
            op_msg(
                21,
                {"insert": "fire", "documents": [{"_id": "fnf"}], "writeConcern": {"w": 0}, "$db": db.name},
                flags=MORE_TO_COME,
            )
        )
        # The next reply on this connection must answer the find, not the insert;
        # requests on one connection are processed in order, so the find sees it.
        reply = roundtrip(sock, 22, {"find": "fire", "filter": {"_id": "fnf"}, "$db": db.name})
        assert reply["cursor"]["firstBatch"] == [{"_id": "fnf"}]
    assert db.fire.find_one({"_id": "fnf"}) == {"_id": "fnf"}


def test_command_error_over_raw_op_msg_keeps_connection_open(server):
    with server.raw_connection() as sock:
        reply = roundtrip(sock, 31, {"noSuchCommand": 1, "$db": "admin"})
        assert reply["ok"] == 0.0
        assert reply["code"] == 59
        assert reply["codeName"] == "CommandNotFound"
        assert roundtrip(sock, 32, {"ping": 1, "$db": "admin"})["ok"] == 1.0


# -- invalid framing: the server must drop the connection and carry on ----------------

BAD_FRAMES = {
    "http_request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "negative_length": raw_header(-1) + b"\x00" * 32,
    "length_smaller_than_header": raw_header(8) + b"\x00" * 32,
    "length_above_max_message_size": raw_header(MAX_MESSAGE_SIZE_BYTES + 1),
    "length_far_too_large": raw_header(0x7FFFFFFF),
}


@pytest.mark.parametrize("payload", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_invalid_message_length_closes_connection(server, payload):
    with server.raw_connection() as sock:
        sock.sendall(payload)
        assert wait_for_close(sock), "server kept a connection with an invalid header open"
    assert_server_still_serves(server)


def test_random_garbage_then_disconnect(server):
    garbage = bytes((i * 97 + 13) % 256 for i in range(4096))
    with server.raw_connection() as sock:
        try:
            sock.sendall(garbage)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may already have hung up
    assert_server_still_serves(server)


def test_truncated_message_then_close(server):
    message = op_msg(41, {"ping": 1, "$db": "admin"})
    with server.raw_connection() as sock:
        sock.sendall(message[: len(message) // 2])
    # Client went away mid-message; nothing to read, the server must just clean up.
    assert_server_still_serves(server)


def test_truncated_header_then_close(server):
    with server.raw_connection() as sock:
        sock.sendall(b"\x10\x00\x00")
    assert_server_still_serves(server)


def test_connect_and_close_without_sending(server):
    for _ in range(20):
        socket.create_connection(server.address, timeout=5).close()
    assert_server_still_serves(server)


# -- well-framed messages with bad contents ------------------------------------------


def _assert_error_reply_or_close(sock, request_id):
    """Accept either an ok:0 reply to ``request_id`` or the server closing the connection."""
    try:
        header, payload = read_message(sock)
    except ConnectionClosed:
        return
    assert header.op_code == OP_MSG
    assert header.response_to == request_id
    assert parse_op_msg(payload)[1]["ok"] == 0.0


def bson_bytes(elements: bytes, *, declared_length=None, terminator=b"\x00") -> bytes:
    """Hand-assemble a BSON document, optionally lying about its length or terminator."""
    length = len(elements) + 5 if declared_length is None else declared_length
    return struct.pack("<i", length) + elements + terminator


INT32_A = b"\x10a\x00" + struct.pack("<i", 1)  # "a": int32(1)

MALFORMED_BODIES = {
    # declared BSON length runs past the end of the message
    "bson_length_past_end": bson_bytes(INT32_A, declared_length=1000),
    # declared BSON length smaller than the smallest possible document (5)
    "bson_length_too_small": bson_bytes(INT32_A, declared_length=3),
    # element type 0x42 does not exist
    "unknown_element_type": bson_bytes(b"\x42a\x00" + struct.pack("<i", 1)),
    # last byte is not the NUL terminator
    "missing_terminator": bson_bytes(INT32_A, terminator=b"\x01"),
    # string element whose length prefix (50) overruns the document
    "bad_string_length": bson_bytes(b"\x02s\x00" + struct.pack("<i", 50) + b"hello\x00"),
    # string element not NUL terminated
    "unterminated_string": bson_bytes(b"\x02s\x00" + struct.pack("<i", 6) + b"hello!"),
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_op_msg_with_malformed_bson_gets_error_or_close(server, body):
    with server.raw_connection() as sock:
        sock.sendall(op_msg(51, body))
        _assert_error_reply_or_close(sock, 51)
    assert_server_still_serves(server)


def test_op_msg_without_db_field_is_rejected(server):
    with server.raw_connection() as sock:
        sock.sendall(op_msg(61, {"ping": 1}))
        _assert_error_reply_or_close(sock, 61)
    assert_server_still_serves(server)


def test_op_msg_with_unknown_section_kind(server):
    body = struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"}) + b"\x07junk"
    with server.raw_connection() as sock:
        sock.sendall(frame(71, OP_MSG, body))
        _assert_error_reply_or_close(sock, 71)
    assert_server_still_serves(server)


def test_unknown_opcode_does_not_break_the_server(server):
    with server.raw_connection() as sock:
        sock.sendall(frame(81, 9999, b"\x00" * 24))
        # Follow up with a valid ping on the same socket. Acceptable outcomes:
        # the server closes the connection, answers the unknown op with an
        # error, or ignores it - but if it answers the ping, it answers it right.
        try:
            sock.sendall(op_msg(82, {"ping": 1, "$db": "admin"}))
            for _ in range(2):
                header, payload = read_message(sock)
                if header.response_to == 82:
                    assert header.op_code == OP_MSG
                    assert parse_op_msg(payload)[1]["ok"] == 1.0
                    break
                assert header.response_to == 81, header
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
            pass
    assert_server_still_serves(server)


def test_many_abusive_connections_in_a_row(server):
    for i in range(30):
        with server.raw_connection() as sock:
            try:
                sock.sendall(raw_header(-(i + 1)) + bytes(range(i)))
            except (BrokenPipeError, ConnectionResetError):
                pass
    assert_server_still_serves(server)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _checksummed_op_msg(request_id: int, body: dict, *, corrupt: bool) -> bytes:
    import struct

    import bson

    payload = struct.pack("<I", 1) + b"\x00" + bson.encode(body)
    header = struct.pack("<iiii", 16 + len(payload) + 4, request_id, 0, 2013)
    checksum = _crc32c(header + payload) ^ (1 if corrupt else 0)
    return header + payload + struct.pack("<I", checksum)


def test_op_msg_checksums_are_verified(server, client, db):
    """checksumPresent: a message with a wrong CRC-32C is refused and never runs; a right one runs."""
    from mongo_wire import parse_op_msg, read_message

    with server.raw_connection() as sock:
        sock.sendall(_checksummed_op_msg(31, {"insert": "crc", "documents": [{"_id": "bad"}], "$db": db.name}, corrupt=True))
        reply = parse_op_msg(read_message(sock)[1])[1]
        assert reply["ok"] == 0 and "checksum" in reply["errmsg"]
        sock.sendall(_checksummed_op_msg(32, {"insert": "crc", "documents": [{"_id": "good"}], "$db": db.name}, corrupt=False))
        header, payload = read_message(sock)
        # The reply carries a checksum too, since the request did.
        import struct
        raw = struct.pack("<iiii", header.message_length, header.request_id, header.response_to, header.op_code) + payload
        assert struct.unpack("<I", payload[:4])[0] & 1 == 1
        assert _crc32c(raw[:-4]) == struct.unpack("<I", raw[-4:])[0]
        reply = parse_op_msg(payload)[1], reply
    assert [d["_id"] for d in db.crc.find()] == ["good"]


def test_empty_database_names_and_empty_write_batches_are_refused(server):
    from mongo_wire import roundtrip

    with server.raw_connection() as sock:
        reply = roundtrip(sock, 41, {"ping": 1, "$db": ""})
        assert reply["ok"] == 0 and reply["code"] == 73
        reply = roundtrip(sock, 42, {"insert": "c", "documents": [], "$db": "emptybatch"})
        assert reply["ok"] == 0 and reply["code"] == 16
        assert "between 1 and 100000" in reply["errmsg"]


def test_large_messages_need_a_login_first(server):
    """Before a connection logs in, a message over 1 MiB closes it unread (a client that has not
    proven who it is cannot make the node buffer megabytes); after login the usual 48 MB holds."""
    import bson

    from mongo_wire import op_msg, parse_op_msg, read_message, wait_for_close

    big = {"insert": "big", "documents": [{"_id": 1, "pad": "x" * (2 << 20)}], "$db": "bigframes"}
    with server.raw_connection(authenticate=False) as sock:
        try:
            sock.sendall(op_msg(51, big))
        except (BrokenPipeError, ConnectionResetError):
            pass  # The node closed the connection while the rest was still being sent.
        else:
            assert wait_for_close(sock)
    with server.raw_connection() as sock:
        sock.sendall(op_msg(52, big))
        reply = parse_op_msg(read_message(sock)[1])[1]
        assert reply["ok"] == 1 and reply["n"] == 1
    # The node kept serving.
    assert server.client().admin.command("ping")["ok"] == 1
    del bson
