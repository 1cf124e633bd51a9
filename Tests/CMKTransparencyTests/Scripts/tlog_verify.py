#!/usr/bin/env python3
"""An independent verifier of a transparency log: checkpoints, inclusion and consistency proofs.

Written from the specifications, not from the Swift code it checks:
  - RFC 9162 (Certificate Transparency v2) section 2.1: the Merkle Tree Hash, and the verification
    algorithms of inclusion proofs (2.1.3.2) and consistency proofs (2.1.4.2);
  - c2sp.org/signed-note: note format, Ed25519 signature lines, key IDs, verifier keys;
  - c2sp.org/tlog-checkpoint: the checkpoint body (origin, size, root hash).

Usage:
  tlog_verify.py --vkey VERIFIER_KEY --origin ORIGIN [--kept CHECKPOINT_FILE ...] [--records-jsonl FILE] LOG_JSON

LOG_JSON holds what a log serves:
  {"records": [base64 record, ...],
   "checkpoints": [signed checkpoint note, ...],
   "inclusion_proofs": [{"index": i, "tree_size": n, "hashes": [base64, ...]}, ...],
   "consistency_proofs": [{"old_size": m, "new_size": n, "hashes": [base64, ...]}, ...]}
Each --kept file is a signed checkpoint the customer kept from an earlier visit.
With --records-jsonl, the records are the lines of FILE instead (a JSON Lines log such as the host
daemon's security.log): record i is line i+1 exactly as stored, without its newline; bytes after
the last newline (an interrupted write) are not a record. LOG_JSON's "records" must then be absent.

Prints one line per check. Exit 0: the log is accepted. Exit 1: rejected (the last line starts
with "REJECTED:" and says why). Exit 2: bad usage or unreadable input. Exit 3: the Python
`cryptography` package is missing.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
except ImportError:  # pragma: no cover - reported to the Swift test, which fails naming the fix
    print("MISSING: the Python package 'cryptography' (pip install cryptography; scripts/install-deps.sh installs it)")
    sys.exit(3)


class Rejected(Exception):
    """The log, a checkpoint or a proof does not verify."""


def say(message):
    print(message, flush=True)


# --- RFC 9162 section 2.1.1: Merkle Tree Hash -----------------------------------------------

def sha256(data):
    return hashlib.sha256(data).digest()


def hash_leaf(record):
    return sha256(b"\x00" + record)


def hash_children(left, right):
    return sha256(b"\x01" + left + right)


def largest_power_of_two_smaller_than(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaf_hashes):
    """MTH(D[n]) over already-hashed leaves, exactly as the RFC defines it."""
    n = len(leaf_hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hashes[0]
    k = largest_power_of_two_smaller_than(n)
    return hash_children(mth(leaf_hashes[:k]), mth(leaf_hashes[k:]))


# --- RFC 9162 section 2.1.3.2: verifying an inclusion proof --------------------------------

def verify_inclusion(leaf_index, tree_size, leaf_hash, inclusion_path, root_hash):
    if leaf_index >= tree_size:
        raise Rejected("inclusion proof: leaf index %d is not below tree size %d" % (leaf_index, tree_size))
    fn = leaf_index
    sn = tree_size - 1
    r = leaf_hash
    for p in inclusion_path:
        if sn == 0:
            raise Rejected("inclusion proof for leaf %d of %d has too many hashes" % (leaf_index, tree_size))
        if fn % 2 == 1 or fn == sn:
            r = hash_children(p, r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Rejected("inclusion proof for leaf %d of %d has too few hashes" % (leaf_index, tree_size))
    if r != root_hash:
        raise Rejected("inclusion proof for leaf %d of %d does not lead to the checkpoint's root" % (leaf_index, tree_size))


# --- RFC 9162 section 2.1.4.2: verifying a consistency proof -------------------------------

def verify_consistency(first, second, first_hash, second_hash, consistency_path):
    if first > second:
        raise Rejected("consistency: the tree shrank from %d to %d leaves" % (first, second))
    if first == second:
        # Same size: nothing to prove, the roots must be the same.
        if consistency_path:
            raise Rejected("consistency proof between equal sizes %d must be empty" % first)
        if first_hash != second_hash:
            raise Rejected("two different roots for the same tree size %d" % first)
        return
    if first == 0:
        # Every tree extends the empty tree, whose root is SHA-256 of nothing.
        if consistency_path:
            raise Rejected("consistency proof from the empty tree must be empty")
        if first_hash != sha256(b""):
            raise Rejected("the root given for size 0 is not the empty tree's root")
        return
    if not consistency_path:
        raise Rejected("consistency proof from %d to %d is empty" % (first, second))
    path = list(consistency_path)
    if first & (first - 1) == 0:  # first is an exact power of 2
        path.insert(0, first_hash)
    fn = first - 1
    sn = second - 1
    if fn % 2 == 1:
        while fn % 2 == 1:
            fn >>= 1
            sn >>= 1
    fr = path[0]
    sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Rejected("consistency proof from %d to %d has too many hashes" % (first, second))
        if fn % 2 == 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Rejected("consistency proof from %d to %d has too few hashes" % (first, second))
    if fr != first_hash:
        raise Rejected("consistency proof from %d to %d does not lead to the older root" % (first, second))
    if sr != second_hash:
        raise Rejected("consistency proof from %d to %d does not lead to the newer root" % (first, second))


# --- c2sp.org/signed-note and c2sp.org/tlog-checkpoint -------------------------------------

EM_DASH_SPACE = "\u2014 "


def strict_b64(text, what):
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise Rejected("%s is not standard base64" % what)
    if base64.b64encode(raw).decode("ascii") != text:
        raise Rejected("%s is not canonical padded base64" % what)
    return raw


def valid_key_name(name):
    return name != "" and "+" not in name and not any(ch.isspace() for ch in name)


class PinnedKey:
    """A verifier key <name>+<hex key ID>+<base64(0x01 || Ed25519 public key)>."""

    def __init__(self, vkey):
        parts = vkey.split("+", 2)  # the first two '+' only: base64 may contain '+'
        if len(parts) != 3:
            raise Rejected("verifier key: expected <name>+<key ID>+<key>")
        self.name, key_id_hex, key_b64 = parts
        if not valid_key_name(self.name):
            raise Rejected("verifier key: the key name is empty or has a space or '+'")
        if len(key_id_hex) != 8 or any(ch not in "0123456789abcdef" for ch in key_id_hex):
            raise Rejected("verifier key: the key ID is not 8 lowercase hex digits")
        key = strict_b64(key_b64, "verifier key")
        if len(key) != 33 or key[0] != 0x01:
            raise Rejected("verifier key: not an Ed25519 key (type 0x01 and 32 bytes)")
        expected = sha256(self.name.encode("utf-8") + b"\n" + key)[:4]
        if expected.hex() != key_id_hex:
            raise Rejected("verifier key: the key ID does not match the name and key")
        self.key_id = bytes.fromhex(key_id_hex)
        self.public_key = Ed25519PublicKey.from_public_bytes(key[1:])
        self.vkey = vkey


def open_note(note_bytes, pinned, where):
    """Returns the note's text if a signature by the pinned key verifies."""
    if len(note_bytes) > 1 << 20:
        raise Rejected("%s: note larger than 1 MiB" % where)
    try:
        note = note_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("%s: note is not UTF-8" % where)
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise Rejected("%s: note holds a control character" % where)
    split = note.rfind("\n\n")
    if split < 0:
        raise Rejected("%s: note has no blank line before its signatures" % where)
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise Rejected("%s: note has no signature lines" % where)
    lines = block[:-1].split("\n")
    if len(lines) > 100:
        raise Rejected("%s: note has too many signature lines" % where)
    verified = False
    for line in lines:
        if not line.startswith(EM_DASH_SPACE):
            raise Rejected("%s: signature line does not start with an em dash and a space" % where)
        name, sep, sig_b64 = line[len(EM_DASH_SPACE) :].partition(" ")
        if not sep or not valid_key_name(name):
            raise Rejected("%s: malformed signature line" % where)
        raw = strict_b64(sig_b64, "%s: signature" % where)
        if len(raw) < 5:
            raise Rejected("%s: signature too short" % where)
        key_id, signature = raw[:4], raw[4:]
        if name != pinned.name or key_id != pinned.key_id:
            continue  # unknown keys are ignored (witnesses, rotated keys)
        try:
            pinned.public_key.verify(signature, text.encode("utf-8"))
        except InvalidSignature:
            raise Rejected("%s: the signature by the pinned key %s does not verify (forged or altered checkpoint)" % (where, pinned.name))
        verified = True
    if not verified:
        raise Rejected("%s: no signature by the pinned key %s" % (where, pinned.name))
    return text


def parse_checkpoint(text, origin, where):
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise Rejected("%s: a checkpoint body is at least three non-empty lines" % where)
    if lines[0] != origin:
        raise Rejected("%s: origin %r is not the pinned origin" % (where, lines[0]))
    size_text = lines[1]
    if not size_text.isascii() or not size_text.isdigit() or (size_text.startswith("0") and size_text != "0"):
        raise Rejected("%s: tree size is not plain decimal" % where)
    size = int(size_text)
    if size >= 1 << 64:
        raise Rejected("%s: tree size does not fit 64 bits" % where)
    root = strict_b64(lines[2], "%s: root hash" % where)
    if len(root) != 32:
        raise Rejected("%s: root hash is not 32 bytes" % where)
    return {"size": size, "root": root, "where": where}


def open_checkpoint(note_bytes, pinned, origin, where):
    checkpoint = parse_checkpoint(open_note(note_bytes, pinned, where), origin, where)
    say("checked: %s signed by %s+%s, origin %s, size %d" % (where, pinned.name, pinned.key_id.hex(), origin, checkpoint["size"]))
    return checkpoint


# --- The log ---------------------------------------------------------------------------------

def decode_hashes(items, what):
    hashes = [strict_b64(item, what) for item in items]
    if any(len(h) != 32 for h in hashes):
        raise Rejected("%s: a hash is not 32 bytes" % what)
    return hashes


def find_consistency(log, old_size, new_size):
    for proof in log.get("consistency_proofs", []):
        if proof["old_size"] == old_size and proof["new_size"] == new_size:
            return decode_hashes(proof["hashes"], "consistency proof %d->%d" % (old_size, new_size))
    return None


def check_linked(log, older, newer, what):
    """Two checkpoints are consistent only if a consistency proof links them."""
    if older["size"] == newer["size"]:
        verify_consistency(older["size"], newer["size"], older["root"], newer["root"], [])
        return
    path = find_consistency(log, older["size"], newer["size"])
    if path is None and older["size"] != 0:
        raise Rejected("fork: no consistency proof links %s (size %d) to %s (size %d)" % (older["where"], older["size"], newer["where"], newer["size"]))
    try:
        verify_consistency(older["size"], newer["size"], older["root"], newer["root"], path or [])
    except Rejected as error:
        raise Rejected("fork: %s (size %d) and %s (size %d) are not consistent: %s" % (older["where"], older["size"], newer["where"], newer["size"], error))
    say("checked: consistency %d -> %d (%s -> %s)" % (older["size"], newer["size"], older["where"], newer["where"]))


def verify_log(log, pinned, origin, kept_notes):
    checkpoints = [open_checkpoint(note.encode("utf-8"), pinned, origin, "checkpoint %d" % number)
                   for number, note in enumerate(log.get("checkpoints", []), start=1)]
    if not checkpoints:
        raise Rejected("the log serves no checkpoint")
    checkpoints.sort(key=lambda c: c["size"])
    latest = checkpoints[-1]
    kept = [open_checkpoint(note, pinned, origin, "kept checkpoint %d" % number)
            for number, note in enumerate(kept_notes, start=1)]

    # A kept checkpoint must still be part of the log: never larger than the newest one, and
    # linked to it by a consistency proof (else the log was truncated, rewritten or forked).
    for checkpoint in kept:
        if checkpoint["size"] > latest["size"]:
            raise Rejected("truncated: %s has %d leaves but the log's newest checkpoint only %d" % (checkpoint["where"], checkpoint["size"], latest["size"]))
        check_linked(log, checkpoint, latest, "kept")

    # Every pair of successive checkpoints the log serves must be linked too.
    for older, newer in zip(checkpoints, checkpoints[1:]):
        check_linked(log, older, newer, "served")

    records = [strict_b64(record, "record %d" % index) for index, record in enumerate(log.get("records", []))]
    leaf_hashes = [hash_leaf(record) for record in records]
    for checkpoint in checkpoints + kept:
        if checkpoint["size"] > len(records):
            raise Rejected("truncated: %s commits to %d records but the log serves %d" % (checkpoint["where"], checkpoint["size"], len(records)))
        if mth(leaf_hashes[: checkpoint["size"]]) != checkpoint["root"]:
            raise Rejected("records 0..%d do not hash to the root of %s: records were rewritten, reordered or removed" % (checkpoint["size"], checkpoint["where"]))
        say("checked: records 0..<%d hash to the root of %s" % (checkpoint["size"], checkpoint["where"]))

    by_size = {c["size"]: c for c in checkpoints + kept}
    for proof in log.get("inclusion_proofs", []):
        index, size = proof["index"], proof["tree_size"]
        if size not in by_size:
            raise Rejected("inclusion proof for leaf %d names tree size %d, for which no signed checkpoint exists" % (index, size))
        if index >= len(records):
            raise Rejected("inclusion proof for leaf %d: the log serves no such record" % index)
        verify_inclusion(index, size, leaf_hashes[index], decode_hashes(proof["hashes"], "inclusion proof %d" % index), by_size[size]["root"])
        say("checked: inclusion of record %d in tree size %d" % (index, size))

    if len(records) > latest["size"]:
        say("note: %d record(s) after the newest checkpoint are not yet covered by a signature" % (len(records) - latest["size"]))
    say("OK: %d checkpoint(s), %d kept checkpoint(s), %d record(s), %d inclusion and %d consistency proof(s) verified against %s"
        % (len(checkpoints), len(kept), latest["size"], len(log.get("inclusion_proofs", [])), len(log.get("consistency_proofs", [])), pinned.vkey))


def main():
    parser = argparse.ArgumentParser(description="Verify a transparency log's checkpoints and proofs (RFC 9162, C2SP).")
    parser.add_argument("--vkey", required=True, help="the pinned verifier key <name>+<key ID>+<key>")
    parser.add_argument("--origin", required=True, help="the pinned checkpoint origin")
    parser.add_argument("--kept", action="append", default=[], help="a signed checkpoint kept from earlier (file)")
    parser.add_argument("--records-jsonl", help="take the records from the lines of this JSON Lines file (each line without its newline)")
    parser.add_argument("log", help="the log as JSON (file)")
    arguments = parser.parse_args()
    try:
        with open(arguments.log, "rb") as handle:
            log = json.load(handle)
        kept = []
        for path in arguments.kept:
            with open(path, "rb") as handle:
                kept.append(handle.read())
        if arguments.records_jsonl is not None:
            if "records" in log:
                print("UNUSABLE: --records-jsonl replaces the log's records; LOG_JSON must not hold \"records\"")
                return 2
            with open(arguments.records_jsonl, "rb") as handle:
                lines = handle.read().split(b"\n")
            if lines[-1]:
                say("note: %d byte(s) after the last newline of %s are not a record" % (len(lines[-1]), arguments.records_jsonl))
            log["records"] = [base64.b64encode(line).decode("ascii") for line in lines[:-1]]
    except (OSError, ValueError) as error:
        print("UNUSABLE: cannot read the input: %s" % error)
        return 2
    try:
        pinned = PinnedKey(arguments.vkey)
        verify_log(log, pinned, arguments.origin, kept)
    except Rejected as error:
        say("REJECTED: %s" % error)
        return 1
    except (KeyError, TypeError) as error:
        say("REJECTED: the log's JSON is not in the expected shape (%r)" % (error,))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
