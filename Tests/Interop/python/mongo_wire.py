"""Minimal MongoDB wire-protocol helpers for the raw-socket tests.

Only what the tests need: build OP_MSG / OP_QUERY requests by hand, read one
framed reply, and decode OP_MSG / OP_REPLY bodies. Layouts follow the MongoDB
wire protocol specification:

    MsgHeader  := int32 messageLength, int32 requestID, int32 responseTo, int32 opCode
    OP_MSG     := MsgHeader, uint32 flagBits, Section+, [uint32 checksum]
    Section    := 0x00 <BSON document>
                | 0x01 int32 size, cstring identifier, <BSON document>*
    OP_QUERY   := MsgHeader, int32 flags, cstring fullCollectionName,
                  int32 numberToSkip, int32 numberToReturn, <BSON query>
    OP_REPLY   := MsgHeader, int32 responseFlags, int64 cursorID,
                  int32 startingFrom, int32 numberReturned, <BSON document>*
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import bson

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

# OP_MSG flag bits
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

MAX_MESSAGE_SIZE_BYTES = 48_000_000
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024

_HEADER = struct.Struct("<iiii")
HEADER_SIZE = _HEADER.size


class ConnectionClosed(Exception):
    """The server closed (or reset) the connection."""


@dataclass(frozen=True)
class Header:
    message_length: int
    request_id: int
    response_to: int
    op_code: int


# ---------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------


def frame(request_id: int, op_code: int, body: bytes, *, response_to: int = 0) -> bytes:
    """Prefix ``body`` with a correct MsgHeader."""
    return _HEADER.pack(HEADER_SIZE + len(body), request_id, response_to, op_code) + body


def raw_header(message_length: int, request_id: int = 1, op_code: int = OP_MSG) -> bytes:
    """A header with an arbitrary (possibly lying) messageLength."""
    return _HEADER.pack(message_length, request_id, 0, op_code)


def doc_sequence(identifier: str, documents: Iterable[Mapping[str, Any] | bytes]) -> bytes:
    """An OP_MSG kind-1 section (document sequence)."""
    payload = identifier.encode() + b"\x00" + b"".join(
        d if isinstance(d, bytes) else bson.encode(d) for d in documents
    )
    return b"\x01" + struct.pack("<i", 4 + len(payload)) + payload


def op_msg(
    request_id: int,
    body: Mapping[str, Any] | bytes,
    *,
    flags: int = 0,
    sequences: Iterable[bytes] = (),
) -> bytes:
    """An OP_MSG with one kind-0 body section and optional kind-1 sections.

    ``body`` may be pre-encoded bytes (to send deliberately broken BSON).
    """
    encoded = body if isinstance(body, bytes) else bson.encode(body)
    payload = struct.pack("<I", flags) + b"\x00" + encoded + b"".join(sequences)
    return frame(request_id, OP_MSG, payload)


def op_query(
    request_id: int,
    full_collection_name: str,
    query: Mapping[str, Any],
    *,
    flags: int = 0,
    number_to_skip: int = 0,
    number_to_return: int = -1,
) -> bytes:
    """A legacy OP_QUERY (still used for the initial isMaster handshake by old drivers)."""
    payload = (
        struct.pack("<i", flags)
        + full_collection_name.encode()
        + b"\x00"
        + struct.pack("<ii", number_to_skip, number_to_return)
        + bson.encode(query)
    )
    return frame(request_id, OP_QUERY, payload)


# ---------------------------------------------------------------------------
# Reading replies
# ---------------------------------------------------------------------------


def connect(address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def scram_sha256_login(sock: socket.socket, user: str, password: str, request_id: int = 900_000) -> None:
    """Logs a raw socket in with SCRAM-SHA-256 (RFC 5802, RFC 7677), as drivers do."""
    import base64
    import hashlib
    import hmac
    import os

    client_nonce = base64.b64encode(os.urandom(24)).decode()
    first_bare = f"n={user},r={client_nonce}"
    reply = roundtrip(sock, request_id, {"saslStart": 1, "mechanism": "SCRAM-SHA-256",
                                         "payload": bson.Binary(("n,," + first_bare).encode()), "$db": "admin"})
    assert reply.get("ok") == 1, reply
    server_first = bytes(reply["payload"]).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    reply = roundtrip(sock, request_id + 1, {"saslContinue": 1, "conversationId": reply["conversationId"],
                                             "payload": bson.Binary(f"{without_proof},p={proof}".encode()), "$db": "admin"})
    assert reply.get("ok") == 1 and reply.get("done"), reply


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        try:
            chunk = sock.recv(min(remaining, 1 << 20))
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ConnectionClosed(str(exc)) from exc
        if not chunk:
            raise ConnectionClosed(f"EOF after {n - remaining} of {n} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> tuple[Header, bytes]:
    """Read one framed message; returns its header and the bytes after the header."""
    header = Header(*_HEADER.unpack(recv_exact(sock, HEADER_SIZE)))
    if not HEADER_SIZE <= header.message_length <= MAX_MESSAGE_SIZE_BYTES:
        raise AssertionError(f"server sent an invalid messageLength: {header}")
    return header, recv_exact(sock, header.message_length - HEADER_SIZE)


def parse_op_msg(payload: bytes) -> tuple[int, dict, dict[str, list[dict]]]:
    """Decode an OP_MSG body into (flags, kind-0 document, {identifier: documents})."""
    (flags,) = struct.unpack_from("<I", payload, 0)
    end = len(payload) - (4 if flags & CHECKSUM_PRESENT else 0)
    pos = 4
    body = None
    sequences: dict[str, list[dict]] = {}
    while pos < end:
        kind = payload[pos]
        pos += 1
        if kind == 0:
            (size,) = struct.unpack_from("<i", payload, pos)
            assert body is None, "OP_MSG has more than one kind-0 section"
            body = bson.decode(payload[pos : pos + size])
            pos += size
        elif kind == 1:
            (size,) = struct.unpack_from("<i", payload, pos)
            section_end = pos + size
            name_end = payload.index(b"\x00", pos + 4)
            identifier = payload[pos + 4 : name_end].decode()
            docs = []
            cursor = name_end + 1
            while cursor < section_end:
                (doc_size,) = struct.unpack_from("<i", payload, cursor)
                docs.append(bson.decode(payload[cursor : cursor + doc_size]))
                cursor += doc_size
            sequences[identifier] = docs
            pos = section_end
        else:
            raise AssertionError(f"unknown OP_MSG section kind {kind}")
    assert body is not None, "OP_MSG reply has no kind-0 section"
    return flags, body, sequences


def parse_op_reply(payload: bytes) -> tuple[int, int, int, list[dict]]:
    """Decode an OP_REPLY body into (responseFlags, cursorID, startingFrom, documents)."""
    flags, cursor_id, starting_from, number_returned = struct.unpack_from("<iqii", payload, 0)
    docs = bson.decode_all(payload[20:])
    assert len(docs) == number_returned, (number_returned, docs)
    return flags, cursor_id, starting_from, docs


def roundtrip(sock: socket.socket, request_id: int, body: Mapping[str, Any], **kw) -> dict:
    """Send an OP_MSG command and return the decoded reply document."""
    sock.sendall(op_msg(request_id, body, **kw))
    header, payload = read_message(sock)
    assert header.op_code == OP_MSG, header
    assert header.response_to == request_id, header
    return parse_op_msg(payload)[1]


def wait_for_close(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Drain the socket until the peer closes it.

    Returns True if the server closed/reset the connection within ``timeout``
    seconds (anything it sent before closing, e.g. an error reply, is
    discarded), False if it was still open when the time ran out.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        sock.settimeout(remaining)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
