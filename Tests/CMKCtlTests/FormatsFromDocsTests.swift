import CMKTesting
import Foundation
import Testing

/// Issue 20, item 5: the formats are documented so that someone else can implement them. A
/// decoder written from docs/storage.md, docs/providers/local.md and docs/envelope-format.md
/// alone (below, in Python with `cryptography`, which scripts/install-deps.sh installs) reads the
/// files the real `cmk-syncer run --once` and `cmkctl data put` write: the local vault's master-key
/// check and sealed keys, each driver's keyring (epochs, base64, check values, suspension) and a
/// 1 MiB object of each driver, whose overhead must be the documented `599 + A + O` bytes.
@Suite("Formats: a decoder written from the docs reads real files")
struct FormatsFromDocsTests {
    @Test("the documented keyring, vault.json and envelope formats match the bytes cmk-syncer and cmkctl write")
    func decoderFromDocs() throws {
        let harness = try Harness()
        defer { harness.cleanUp() }
        #expect(try harness.once().code == 0)
        var plaintext = Data(count: 1_048_576)
        plaintext.withUnsafeMutableBytes { for index in $0.indices { $0[index] = UInt8.random(in: 0...255) } }
        let input = harness.root + "/big.bin"
        try plaintext.write(to: URL(fileURLWithPath: input))
        for account in ["files-1", "sql-1"] {
            let put = try harness.ctl(["data", "put", account, "big", input])
            #expect(put.code == 0, "\(put.stderr)")
        }
        // A rotation and a rebind give every DEK a check value; a pull suspends every account.
        #expect(try harness.ctl(["keys", "rotate"]).code == 0)
        #expect(try harness.once().code == 0)
        #expect(try harness.ctl(["keys", "pull"]).code == 0)
        _ = try harness.once()
        let run = try Harness.run("/usr/bin/env", ["python3", "-c", Self.decoder, harness.state, harness.root + "/master.key", "test-root-key", input])
        #expect(run.code == 0, "the decoder written from the docs failed:\n\(run.text)\(run.stderr)")
        let lines = run.text.split(separator: "\n").map(String.init)
        for expected in [
            "vault.json: the master-key check opens with the documented associated data",
            "vault.json: a wrong master key or the associated data with spaces does not open it",
            "files-1: generation 3, 2 DEKs unwrapped, every kcv matches, created now on the 2001 epoch, suspended key-pulled since now",
            "sql-1: generation 3, 2 DEKs unwrapped, every kcv matches, created now on the 2001 epoch, suspended key-pulled since now",
            "files-1/big: the 1048576 bytes put, envelope overhead 609 B = 599 + A + O",
            "sql-1/big: the 1048576 bytes put, envelope overhead 607 B = 599 + A + O",
        ] {
            #expect(lines.contains(expected), "missing '\(expected)' in:\n\(run.text)")
        }
    }

    static let decoder = #"""
# Written from docs/storage.md, docs/providers/local.md and docs/envelope-format.md alone.
# usage: <state directory> <master key file> <key name> <the file put as object 'big'>
import base64, hashlib, hmac, json, sqlite3, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

state, master_file, key_name, put_file = sys.argv[1:5]
b64 = lambda text: base64.b64decode(text, validate=True)  # standard alphabet, padding required
now = time.time()
recent = lambda unix: abs(unix - now) < 600
UNIX_2001 = 978307200  # keyring dates count from 2001-01-01T00:00:00Z

# The local vault: the master key, vault.json's check, the sealed private keys.
def aad(key, version):
    return b"cmk-syncer/local-vault/v1\0key=" + key.encode() + b"\0version=" + version.encode()

def unseal(box, master, associated):
    assert box["algorithm"] == "A256GCM", box["algorithm"]
    return AESGCM(master).decrypt(b64(box["nonce"]), b64(box["ciphertext"]) + b64(box["tag"]), associated)

raw = open(master_file, "rb").read()
master = raw if len(raw) == 32 else b64(raw.rstrip(b" \t\r\n"))
assert len(master) == 32
vault = json.load(open(state + "/vault/vault.json"))
assert vault["format"] == 1 and recent(vault["created"]), vault["created"]
check_aad = aad("master-key-check", "0")
assert len(check_aad) == 56 and b" " not in check_aad
assert unseal(vault["masterKeyCheck"], master, check_aad) == b"cmk-syncer local vault"
print("vault.json: the master-key check opens with the documented associated data")
for wrong_key, wrong_aad in [(bytes(32), check_aad), (master, b"cmk-syncer/local-vault/v1 \0 key=master-key-check \0 version=0")]:
    try:
        unseal(vault["masterKeyCheck"], wrong_key, wrong_aad)
        sys.exit("vault.json: opened with a wrong key or associated data")
    except Exception as error:
        assert type(error).__name__ == "InvalidTag", error
print("vault.json: a wrong master key or the associated data with spaces does not open it")
document = json.load(open("%s/vault/keys/%s.json" % (state, key_name)))
private = {}
for version in document["versions"]:
    assert recent(version["created"])
    private[version["id"]] = serialization.load_der_private_key(unseal(version["sealedPrivateKey"], master, aad(key_name, version["id"])), None)
    assert private[version["id"]].private_numbers().public_numbers.n == int.from_bytes(b64(version["publicKey"]["n"]), "big")
    assert private[version["id"]].private_numbers().public_numbers.e == int.from_bytes(b64(version["publicKey"]["e"]), "big")

# Keyrings: the same JSON in keyring.json and in the SQLite row.
def keyring(account, data, row_generation=None):
    k = json.loads(data)
    assert k["account"] == account and k["key"] == key_name and 1 <= k["generation"] <= 2**63 - 2
    assert row_generation is None or row_generation == k["generation"]
    ids = [d["id"] for d in k["deks"]]
    assert ids and len(set(ids)) == len(ids) and k["activeDEK"] in ids
    deks = {}
    for d in k["deks"]:
        assert d["algorithm"] == "RSA-OAEP-256" and recent(d["created"] + UNIX_2001) and not recent(d["created"]), d["created"]
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        dek, dek_id = private[d["keyVersion"]].decrypt(b64(d["wrappedKey"]), oaep), bytes.fromhex(d["id"])
        message = b"cmk-syncer dek-check v1\0" + len(account.encode()).to_bytes(4, "big") + account.encode() + dek_id
        assert len(dek) == 32 and hmac.new(dek, message, hashlib.sha256).digest()[:16] == b64(d["kcv"]), "kcv of " + d["id"]
        deks[dek_id] = dek
    suspension = k.get("suspension")
    if suspension:
        assert suspension["reason"] in ("key-pulled", "key-missing", "operator") and recent(suspension["since"] + UNIX_2001)
    print("%s: generation %d, %d DEKs unwrapped, every kcv matches, created now on the 2001 epoch%s" % (
        account, k["generation"], len(deks), ", suspended %s since now" % suspension["reason"] if suspension else ""))
    return deks

# Envelopes.
def envelope(blob, deks, account, name):
    assert blob[:4] == b"CMKE" and blob[4] == 1 and blob[5] == 1
    H, S = int.from_bytes(blob[6:8], "big"), int.from_bytes(blob[8:12], "big")
    dek_id, salt, prefix = blob[12:28], blob[28:60], blob[60:67]
    A = int.from_bytes(blob[67:69], "big")
    O = int.from_bytes(blob[69 + A:71 + A], "big")
    assert 16 <= S <= 16 << 20 and H == 71 + A + O
    assert blob[69:69 + A].decode() == account and blob[71 + A:H].decode() == name
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"cmk-syncer object key v1").derive(deks[dek_id])
    plaintext, at, index, final = b"", H, 0, False
    while not final:
        frame = blob[at:at + 17]
        flags, length = frame[4], int.from_bytes(frame[5:9], "big")
        assert int.from_bytes(frame[:4], "big") == index and flags in (0, 1) and frame[9:17] == salt[:8]
        final = flags == 1
        assert length == S or (final and 0 < length <= S)
        nonce = prefix + index.to_bytes(4, "big") + bytes([flags])
        plaintext += AESGCM(key).decrypt(nonce, blob[at + 17:at + 17 + length + 16], blob[:H] + frame)
        at, index = at + 17 + length + 16, index + 1
    assert at == len(blob)
    assert plaintext == open(put_file, "rb").read()
    overhead = len(blob) - len(plaintext)
    assert overhead == 599 + A + O
    print("%s/%s: the %d bytes put, envelope overhead %d B = 599 + A + O" % (account, name, len(plaintext), overhead))

deks = keyring("files-1", open(state + "/accounts/files-1/keyring.json", "rb").read())
blob = open(state + "/accounts/files-1/objects/big", "rb").read()
assert blob[:8] == b"CMKOBJ1\n"  # the directory driver's 24-byte revision header
envelope(blob[24:], deks, "files-1", "big")

db = sqlite3.connect("file:%s/accounts/sql-1.sqlite?mode=ro" % state, uri=True)
generation, data = db.execute("SELECT generation, json FROM keyring WHERE id = 1").fetchone()
deks = keyring("sql-1", data, generation)
revision, size = db.execute("SELECT revision, size FROM objects WHERE name = 'big'").fetchone()
blob = b"".join(row[0] for row in db.execute("SELECT bytes FROM object_chunks WHERE revision = ? ORDER BY seq", (revision,)))
assert len(blob) == size
envelope(blob, deks, "sql-1", "big")
"""#
}
