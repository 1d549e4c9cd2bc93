#!/usr/bin/env python3
"""Check a StratosDB anchor proof by hand: every hash and signature recomputed from the bytes,
with nothing from StratosDB but the proof itself (hashlib and the `cryptography` package).

    python3 tools/verify_anchor_by_hand.py reply.json [genesis.json]

`reply.json` is a proveRecord reply saved as JSON (bson.json_util.dumps). It checks that the
reply's commit (space, commit hash) is a leaf of the anchor batch, that the batch root is what
the anchor transaction carries, that the transaction is in the block's data tree, that the
commit certificate is for that block, and that validators holding more than 2/3 of the power
signed it. With genesis.json, the validator set must be the genesis set (a proof from a later
validator set needs the skipping check of `stratosdb verify-proof`). docs/ledger.md explains
each step.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Reader:
    """The canonical encoding: big-endian integers, u32 length before strings and byte strings."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.offset:self.offset + count]
        self.offset += count
        return chunk

    def u8(self): return self.take(1)[0]
    def u32(self): return struct.unpack(">I", self.take(4))[0]
    def u64(self): return struct.unpack(">Q", self.take(8))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]
    def blob(self): return self.take(self.u32())
    def text(self): return self.blob().decode()


def leaf_hash(data: bytes) -> bytes:          # RFC 6962: SHA-256(0x00 ‖ data)
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:  # RFC 6962: SHA-256(0x01 ‖ left ‖ right)
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion path leads to."""
    if not 0 <= index < size:
        raise ValueError("leaf index out of range")
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    return result


def merkle_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 over already-hashed leaves (split at the largest power of two below n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return node_hash(merkle_root(leaves[:split]), merkle_root(leaves[split:]))


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">I", len(raw)) + raw


def verify(reply: dict, genesis: dict | None = None) -> dict:
    space, commit_hash = reply["space"], bytes.fromhex(reply["commit"]["hash"])
    text = reply["anchorProof"]
    r = Reader(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    assert r.text() == "stratosdb/anchor-proof/v1"

    # 1. The leaf names this space's commit.
    leaf = r.blob()
    lr = Reader(leaf)
    assert lr.text() == "stratosdb/anchor-leaf/v1"
    assert lr.text() == space, "the leaf is for another space"
    lr.u64()  # the commit's seq
    assert lr.blob() == commit_hash, "the leaf is for another commit"

    # 2. The leaf's path leads to the batch root.
    leaf_index, batch_size = r.u64(), r.u64()
    batch_path = [r.take(32) for _ in range(r.u32())]
    batch_root = root_from_path(leaf_hash(leaf), leaf_index, batch_size, batch_path)

    # 3. The anchor transaction carries that root and size, signed by its sender.
    transaction = r.blob()
    tr = Reader(transaction)
    sender, nonce, fee, kind = tr.take(32), tr.u64(), tr.u64(), tr.u8()
    assert kind == 4, "not an anchor transaction"
    root, size, signature = tr.take(32), tr.u64(), tr.take(64)
    assert root == batch_root and size == batch_size, "the transaction anchors another batch"

    # 4. The transaction is in the block's data tree.
    tx_index, tx_count = r.u64(), r.u64()
    tx_path = [r.take(32) for _ in range(r.u32())]
    data_hash = root_from_path(leaf_hash(transaction), tx_index, tx_count, tx_path)

    # 5. The header names that data hash; the block ID is SHA-256 of the header's bytes.
    header = r.blob()
    hr = Reader(header)
    assert hr.text() == "stratosdb/block-header/v1"
    chain_id, height, time_ms = hr.text(), hr.u64(), hr.i64()
    if hr.u8():
        hr.take(32)  # last block ID
    hr.take(32)  # last commit hash
    assert hr.take(32) == data_hash, "the transaction is not in this block"
    validators_hash = hr.take(32)
    block_id = hashlib.sha256(header).digest()
    tx_sign_bytes = string("stratosdb/transaction/v1") + string(chain_id) + transaction[:-64]
    Ed25519PublicKey.from_public_bytes(sender).verify(signature, tx_sign_bytes)

    # 6. The commit certificate is for this block.
    commit_height, commit_round, commit_block = r.u64(), r.u32(), r.take(32)
    assert commit_height == height and commit_block == block_id, "the commit is for another block"
    signatures = [(r.take(32), r.take(64)) for _ in range(r.u32())]

    # 7. The validator set is the header's, and > 2/3 of its power signed the precommit.
    r.take(32)  # the set's current proposer (not hashed)
    validators = [(r.take(32), r.i64(), r.i64()) for _ in range(r.u32())]
    assert merkle_root([leaf_hash(key + struct.pack(">q", power)) for key, power, _ in validators]) == validators_hash
    if genesis is not None:
        from_genesis = sorted(a["did"] for a in genesis["accounts"] if a["stake"] >= genesis["parameters"]["stakePerPower"])
        assert chain_id == genesis["chainId"], "another chain"
        assert sorted(did_key(key) for key, _, _ in validators) == from_genesis, "not the genesis validators"
    power = dict((key, weight) for key, weight, _ in validators)
    vote = (string("stratosdb/vote/v1") + string(chain_id) + bytes([2]) + struct.pack(">QI", height, commit_round)
            + b"\x01" + block_id)
    signed, seen = 0, set()
    for key, sig in signatures:
        if key in seen or key not in power:
            raise ValueError("a signer is counted twice or is not a validator")
        seen.add(key)
        Ed25519PublicKey.from_public_bytes(key).verify(sig, vote)
        signed += power[key]
    total = sum(power.values())
    assert 3 * signed > 2 * total, "not more than 2/3 of the power signed"
    return {"chain": chain_id, "height": height, "block": block_id.hex(), "signed": signed, "total": total}


ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def did_key(public_key: bytes) -> str:
    """did:key of an Ed25519 key: 'z' + base58btc(0xed 0x01 ‖ key)."""
    data = b"\xed\x01" + public_key
    number, encoded = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        encoded = ALPHABET[digit] + encoded
    encoded = "1" * (len(data) - len(data.lstrip(b"\x00"))) + encoded
    return "did:key:z" + encoded


if __name__ == "__main__":
    from bson import json_util

    reply = json_util.loads(open(sys.argv[1]).read())
    genesis = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    try:
        result = verify(reply, genesis)
    except (AssertionError, ValueError, InvalidSignature) as error:
        print(f"anchor proof does NOT verify: {error or type(error).__name__}", file=sys.stderr)
        sys.exit(1)
    print(f"anchored in block {result['height']} ({result['block']}) of {result['chain']}, signed by {result['signed']}/{result['total']} of the power")
