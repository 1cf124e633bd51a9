#!/usr/bin/env python3
"""The customer verifies cmk-vault's security log without trusting the service.

Run by SecurityLogAPITests against a real cmk-vault over TLS on loopback. An administrator gets a
token with azure-identity, causes events (failed sign-ins, a key added and revoked), keeps a
checkpoint, causes more, takes a second checkpoint, fetches the public key, every record (paging
with @odata.nextLink), inclusion proofs and the consistency proof between the two checkpoints, and
hands them to the independent verifier Tests/CMKTransparencyTests/Scripts/tlog_verify.py (run as a
program). A copy with one record altered must be rejected. Prints one JSON object of observations.
Exit 3 when a package is missing.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

try:
    from azure.identity import ClientSecretCredential  # noqa: F401 (vault_client)
    from azure.core.exceptions import ClientAuthenticationError
    import cryptography  # noqa: F401 (tlog_verify.py needs it)
    import jsonschema  # noqa: F401 (vault_client's OpenAPI check)
    import yaml  # noqa: F401
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

from vault_client import URL, OpenAPI, call, get, token

ADMIN_ID = os.environ["ADMIN_CLIENT_ID"]
ADMIN_SECRET = os.environ["ADMIN_SECRET"]
VERIFIER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "CMKTransparencyTests", "Scripts", "tlog_verify.py")
out = {}
openapi = OpenAPI(os.environ["VAULT_OPENAPI"])


def failed_sign_in(client_id):
    try:
        token(client_id, "not-the-secret-" + "x" * 30)
        return False
    except ClientAuthenticationError:
        return True


admin = token(ADMIN_ID, ADMIN_SECRET)
app_id = call("GET", "/v1.0/applications", admin)[1]["value"][0]["appId"]


def add_and_revoke(name):
    status, created, _ = call("POST", f"/v1.0/applications/{app_id}/addPassword", admin, {"passwordCredential": {"displayName": name}})
    assert status == 200, (status, created)
    status, _, _ = call("POST", f"/v1.0/applications/{app_id}/removePassword", admin, {"keyId": created["keyId"]})
    assert status == 204, status
    return created["secretText"]


# --- events, a kept checkpoint, more events, a second checkpoint ----------------------------
out["failed_sign_ins"] = [failed_sign_in(ADMIN_ID), failed_sign_in("00000000-0000-4000-8000-00000000dead")]
secrets = [ADMIN_SECRET, add_and_revoke("log-test-1")]

status, key, _ = get("/v1.0/securityLogs/publicKey", admin)
openapi.check("/v1.0/securityLogs/publicKey", "get", (status, key))
out["public_key_status"] = status
out["verifier_key"] = key["verifierKey"]
out["origin"] = key["origin"]

status, first_note, headers = get("/v1.0/securityLogs/checkpoint", admin)
openapi.check("/v1.0/securityLogs/checkpoint", "get", (status, first_note))
out["checkpoint_status"] = status
out["checkpoint_content_type"] = headers.get("Content-Type")
out["checkpoint_time"] = headers.get("CMK-Checkpoint-Time")
out["checkpoint_again_same"] = get("/v1.0/securityLogs/checkpoint", admin)[1] == first_note

out["failed_sign_ins"].append(failed_sign_in(ADMIN_ID))
secrets.append(add_and_revoke("log-test-2"))
second_note = get("/v1.0/securityLogs/checkpoint", admin)[1]
first_size = int(first_note.split("\n")[1])
second_size = int(second_note.split("\n")[1])
out["checkpoint_sizes"] = [first_size, second_size]

# --- every record, three at a time ----------------------------------------------------------
records, pages, path = [], 0, "/v1.0/securityLogs/records?%24top=3"
while path:
    answer = call("GET", path, admin)
    openapi.check("/v1.0/securityLogs/records", "get", answer)
    status, page, _ = answer
    assert status == 200, (status, page)
    pages += 1
    records += page["value"]
    link = page.get("@odata.nextLink")
    path = link[len(URL):] if link else None
    assert link is None or link.startswith(URL), link
out["pages"] = pages
out["record_count"] = len(records)
out["indices_in_order"] = [item["index"] for item in records] == list(range(len(records)))
leaves = [base64.b64decode(item["leaf"]) for item in records]
out["leaf_is_canonical_record"] = all(
    json.dumps(item["record"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == leaf
    for item, leaf in zip(records, leaves))
out["operations"] = sorted({item["record"]["operation"] for item in records})
out["secret_in_records"] = any(secret.encode() in leaf for secret in secrets for leaf in leaves)
out["revoked_by_admin"] = any(item["record"]["operation"] == "credential-revoked" and item["record"].get("actor") == ADMIN_ID for item in records)

# filters
status, failed, _ = get("/v1.0/securityLogs/records", admin, operation="authentication-failed")
out["filter_operation"] = sorted({item["record"]["operation"] for item in failed["value"]})
out["filter_operation_count"] = len(failed["value"])
status, mine, _ = get("/v1.0/securityLogs/records", admin, actor=ADMIN_ID)
out["filter_actor_only_admin"] = bool(mine["value"]) and all(item["record"].get("actor") == ADMIN_ID for item in mine["value"])
status, future, _ = get("/v1.0/securityLogs/records", admin, **{"from": "2999-01-01T00:00:00Z"})
out["filter_future_count"] = len(future["value"])

# --- proofs ---------------------------------------------------------------------------------
chosen = sorted({0, second_size // 2, second_size - 1})
inclusion = []
for index in chosen:
    status, proof, _ = get("/v1.0/securityLogs/proofs/inclusion", admin, index=index, size=second_size)
    openapi.check("/v1.0/securityLogs/proofs/inclusion", "get", (status, proof))
    assert status == 200, (status, proof)
    inclusion.append({"index": index, "tree_size": second_size, "hashes": proof["hashes"]})
status, consistency, _ = get("/v1.0/securityLogs/proofs/consistency", admin, **{"from": first_size, "to": second_size})
openapi.check("/v1.0/securityLogs/proofs/consistency", "get", (status, consistency))
assert status == 200, (status, consistency)
out["consistency_hashes"] = len(consistency["hashes"])

# --- the independent verifier ---------------------------------------------------------------
work = tempfile.mkdtemp(prefix="security-log-flow-")


def verify(leaf_list, name):
    log = {"records": [base64.b64encode(leaf).decode() for leaf in leaf_list[:second_size]],
           "checkpoints": [first_note, second_note],
           "inclusion_proofs": inclusion,
           "consistency_proofs": [{"old_size": first_size, "new_size": second_size, "hashes": consistency["hashes"]}]}
    with open(os.path.join(work, name + ".json"), "w") as handle:
        json.dump(log, handle)
    with open(os.path.join(work, "kept"), "w") as handle:
        handle.write(first_note)
    run = subprocess.run([sys.executable, VERIFIER, "--vkey", key["verifierKey"], "--origin", key["origin"],
                          "--kept", os.path.join(work, "kept"), os.path.join(work, name + ".json")],
                         capture_output=True, text=True)
    lines = run.stdout.strip().splitlines()
    return {"exit": run.returncode, "last": lines[-1] if lines else run.stderr[-500:], "checked": sum(1 for line in lines if line.startswith("checked"))}


out["verify_honest"] = verify(leaves, "honest")
tampered = list(leaves)
tampered[1] = tampered[1].replace(b'"address":"', b'"address":"6', 1)
out["tampered_differs"] = tampered[1] != leaves[1]
out["verify_tampered"] = verify(tampered, "tampered")

# --- refusals -------------------------------------------------------------------------------
out["errors"] = {
    "index_not_below_size": get("/v1.0/securityLogs/proofs/inclusion", admin, index=second_size, size=second_size)[0],
    "size_beyond_tree": get("/v1.0/securityLogs/proofs/inclusion", admin, index=0, size=10**6)[0],
    "from_above_to": get("/v1.0/securityLogs/proofs/consistency", admin, **{"from": 3, "to": 2})[0],
    "negative": get("/v1.0/securityLogs/proofs/inclusion", admin, index=-1, size=2)[0],
    "top_too_large": get("/v1.0/securityLogs/records", admin, **{"$top": 100000})[0],
    "unknown_parameter": get("/v1.0/securityLogs/records", admin, color="blue")[0],
    "bad_time": get("/v1.0/securityLogs/records", admin, **{"from": "yesterday"})[0],
    "no_token": get("/v1.0/securityLogs/checkpoint", None)[0],
}
status, message, _ = get("/v1.0/securityLogs/proofs/inclusion", admin, index=second_size, size=second_size)
out["error_shape"] = sorted(message.get("error", {}).keys()) if isinstance(message, dict) else message

# --- who has access -------------------------------------------------------------------------
status, access, _ = get("/v1.0/access", admin)
openapi.check("/v1.0/access", "get", (status, access))
out["access_status"] = status
out["access_admins"] = [entry["clientId"] for entry in access["administrators"]]
out["access_admin_last_used"] = all("lastUsed" in entry for entry in access["administrators"])
out["access_keys"] = [entry["displayName"] for entry in access["servicePrincipal"]["passwordCredentials"]]
out["access_platform"] = [entry["host"] for entry in access["platformIdentities"]]
out["reads_not_logged"] = get("/v1.0/securityLogs/records", admin, **{"$top": 1})[1]["treeSize"] == second_size

# --- roles: the service principal reads the log, a platform identity may not ----------------
status, created, _ = call("POST", f"/v1.0/applications/{app_id}/addPassword", admin, {"passwordCredential": {"displayName": "log-reader"}})
spn = token(app_id, created["secretText"])
out["service_principal_records"] = get("/v1.0/securityLogs/records", spn, **{"$top": 1})[0]
out["service_principal_checkpoint"] = get("/v1.0/securityLogs/checkpoint", spn)[0]
platform = token(os.environ["PLATFORM_CLIENT_ID"], os.environ["PLATFORM_SECRET"])
out["platform_records"] = get("/v1.0/securityLogs/records", platform)[0]
out["platform_access"] = get("/v1.0/access", platform)[0]
denied = get("/v1.0/securityLogs/records", admin, operation="access-denied")[1]["value"]
out["platform_denial_recorded"] = [item["record"].get("actor") for item in denied] == [os.environ["PLATFORM_CLIENT_ID"]] * 2

out["openapi_conformance"] = openapi.problems
out["openapi_checked"] = openapi.checked
print(json.dumps(out))
