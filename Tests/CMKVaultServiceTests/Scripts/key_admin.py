#!/usr/bin/env python3
"""One root-key runbook step against cmk-vault with Microsoft's SDK, as the service principal.

KEY_ACTION is principal (an administrator, ADMIN_CLIENT_ID / ADMIN_SECRET, gives the service
principal a key through Graph's addPassword: prints its client id and secret), create (RSA-HSM 2048), rotate (a new version, then the previous version's expiry
set to now), pull (begin_delete_key) or restore (begin_recover_deleted_key). The principal's
credential comes from PRINCIPAL_CLIENT_ID / PRINCIPAL_SECRET. Prints the current version as JSON,
and in "returned" the time (Unix seconds) the SDK call that changed the key returned; exit 3 when
a package is missing.
"""
import datetime
import json
import os
import sys
import time

try:
    from azure.keyvault.keys import KeyClient
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

from vault_client import CA, URL, call, credential, token

NAME = os.environ.get("KEY_NAME", "data-at-rest-rsa2048")
if os.environ["KEY_ACTION"] == "principal":
    admin = token(os.environ["ADMIN_CLIENT_ID"], os.environ["ADMIN_SECRET"])
    app_id = call("GET", "/v1.0/applications", admin)[1]["value"][0]["appId"]
    added = call("POST", f"/v1.0/applications/{app_id}/addPassword", admin, {"passwordCredential": {"displayName": "key-admin"}})[1]
    print(json.dumps({"clientId": app_id, "secret": added["secretText"]}))
    sys.exit(0)
keys = KeyClient(vault_url=URL, credential=credential(os.environ["PRINCIPAL_CLIENT_ID"], os.environ["PRINCIPAL_SECRET"]),
                 verify_challenge_resource=False, connection_verify=CA)
action = os.environ["KEY_ACTION"]
out = {"action": action}
if action == "create":
    out["version"] = keys.create_rsa_key(NAME, size=2048, hardware_protected=True).properties.version
elif action == "rotate":
    previous = keys.get_key(NAME).properties.version
    out["version"] = keys.create_rsa_key(NAME, size=2048, hardware_protected=True).properties.version
    out["returned"] = time.time()
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    keys.update_key_properties(NAME, version=previous, expires_on=now)
    out["previous"] = previous
elif action == "pull":
    keys.begin_delete_key(NAME).result()
    out["returned"] = time.time()
elif action == "restore":
    out["version"] = keys.begin_recover_deleted_key(NAME).result().properties.version
    out["returned"] = time.time()
print(json.dumps(out))
