#!/usr/bin/env python3
"""The customer's root-key runbooks against cmk-vault's keys API, with Microsoft's SDK.

Run by KeyVaultAPIProcessTests against a real cmk-vault over TLS on loopback. The service
principal (its key made by an administrator through Graph's addPassword) drives
azure-keyvault-keys' KeyClient and CryptographyClient, authenticated by azure-identity: create
an RSA-HSM key, rotate (a new version, then the previous version's expiry set to now), wrap
locally and unwrap in the vault, pull (begin_delete_key), restore (begin_recover_deleted_key),
purge refused. A platform identity reads and unwraps but may not rotate. Prints one JSON object of
observations; exit 3 when a package is missing.
"""
import base64
import datetime
import json
import os
import sys

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

from vault_client import CA, URL, call, credential, token

# The SDK checks that the challenge's resource (the service's public-url) is the vault's host;
# it compares "host:port" with "host", so a public-url with a port (this test's) needs the check
# off. On port 443 the default works.
CHECK = {"verify_challenge_resource": False, "connection_verify": CA}

out = {}
NAME = "data-at-rest-rsa2048"


def status_of(action):
    try:
        action()
        return 200
    except HttpResponseError as error:
        return error.status_code


# An administrator gives the service principal a key (Graph passwordCredential).
admin = token(os.environ["ADMIN_CLIENT_ID"], os.environ["ADMIN_SECRET"])
apps = call("GET", "/v1.0/applications", admin)[1]["value"]
app_id = apps[0]["appId"]
added = call("POST", f"/v1.0/applications/{app_id}/addPassword", admin, {"passwordCredential": {"displayName": "runbooks"}})[1]
principal = credential(app_id, added["secretText"])
keys = KeyClient(vault_url=URL, credential=principal, **CHECK)

# Create: RSA-HSM 2048, as the product's runbook says.
first = keys.create_rsa_key(NAME, size=2048, hardware_protected=True)
out["created_kty"] = getattr(first.key_type, "value", first.key_type)
out["created_kid_prefix"] = first.id.startswith(URL + "/keys/" + NAME + "/")

# Rotate: a new version, then the previous version's expiry set to now.
second = keys.create_rsa_key(NAME, size=2048, hardware_protected=True)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
expired = keys.update_key_properties(NAME, version=first.properties.version, expires_on=now)
out["rotated"] = second.properties.version != first.properties.version
out["old_expires"] = expired.properties.expires_on == now
out["current"] = keys.get_key(NAME).properties.version == second.properties.version
out["versions"] = sorted(v.version for v in keys.list_properties_of_key_versions(NAME))
out["expected_versions"] = sorted([first.properties.version, second.properties.version])

# Wrap locally with the current version's public key (RSA-OAEP-256), unwrap in the vault.
jwk = second.key
public = rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()
dek = os.urandom(32)
wrapped = public.encrypt(dek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
crypto = CryptographyClient(second, credential=principal, **CHECK)
out["unwrap_matches"] = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek

# A platform identity reads and unwraps; it may not rotate.
platform = credential(os.environ["PLATFORM_CLIENT_ID"], os.environ["PLATFORM_SECRET"])
platform_keys = KeyClient(vault_url=URL, credential=platform, **CHECK)
out["platform_get"] = platform_keys.get_key(NAME).properties.version == second.properties.version
platform_crypto = CryptographyClient(second.id, credential=platform, **CHECK)
out["platform_unwrap"] = platform_crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek
out["platform_rotate"] = status_of(lambda: platform_keys.create_rsa_key(NAME, size=2048))

# Pull: delete the key; reads are refused.
deleted = keys.begin_delete_key(NAME).result()
out["recovery_id"] = deleted.recovery_id == URL + "/deletedkeys/" + NAME
try:
    keys.get_key(NAME)
    out["pulled_get"] = 200
except ResourceNotFoundError as error:
    out["pulled_get"] = error.status_code
out["pulled_unwrap"] = status_of(lambda: crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped))

# Restore: recover; every version is back and unwraps again.
keys.begin_recover_deleted_key(NAME).result()
out["restored_unwrap"] = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == dek

# Purge is refused under purge protection.
keys.begin_delete_key(NAME).result()
out["purge"] = status_of(lambda: keys.purge_deleted_key(NAME))
keys.begin_recover_deleted_key(NAME).result()

# The security log holds each change and each key use, with who and from where.
log = call("GET", "/v1.0/securityLogs/records?$top=1000", admin)
out["log_status"] = log[0]
out["operations"] = [item["record"].get("operation") for item in (log[1].get("value", []) if isinstance(log[1], dict) else [])]
records = [item["record"] for item in (log[1].get("value", []) if isinstance(log[1], dict) else [])]
out["updated_versions"] = [r.get("details", {}).get("version") for r in records if r.get("operation") == "key-updated"]
out["first_version"] = first.properties.version
# Each key use names who and from where: the platform identity's unwrap, by its client id, from loopback.
out["platform_unwraps"] = [{"role": r.get("role"), "address": r.get("address"), "key": r.get("details", {}).get("key"),
                            "version": r.get("details", {}).get("version")}
                           for r in records if r.get("operation") == "key-unwrapkey" and r.get("actor") == os.environ["PLATFORM_CLIENT_ID"]]
out["principal_unwrap_actors"] = sorted({r.get("actor") for r in records if r.get("operation") == "key-unwrapkey" and r.get("role") == "servicePrincipal"})
out["app_id"] = app_id
out["second_version"] = second.properties.version
print(json.dumps(out))
