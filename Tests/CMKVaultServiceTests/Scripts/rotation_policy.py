#!/usr/bin/env python3
"""Key rotation policies against cmk-vault, with Microsoft's SDK (azure-keyvault-keys), as the
service principal (PRINCIPAL_CLIENT_ID / PRINCIPAL_SECRET, made by key_admin.py principal).

POLICY_ACTION is:
- crosscheck: the SDK's get_key_rotation_policy on a new key (Azure's default), then
  update_key_rotation_policy with the recording's policy and get again, a refused policy
  (Notify after create: 400 BadParameter), rotate_key (the new version expires expiryTime after its
  creation); a platform identity (PLATFORM_CLIENT_ID / PLATFORM_SECRET) reads the policy but may
  not set it.
- setup: creates KEY_NAME (RSA-HSM 2048, expiring EXPIRES_DAYS from now when set) and gives it the
  policy in POLICY_JSON (the REST body).
- rotate: rotate_key(KEY_NAME) (the API rotation; the service may die under the test's crash point).
Prints one JSON object of observations; exit 3 when a package is missing.
"""
import datetime
import json
import os
import sys

try:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
    from azure.keyvault.keys import KeyClient, KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

from vault_client import CA, URL, credential

CHECK = {"verify_challenge_resource": False, "connection_verify": CA}
NAME = os.environ.get("KEY_NAME", "policy-key")
keys = KeyClient(vault_url=URL, credential=credential(os.environ["PRINCIPAL_CLIENT_ID"], os.environ["PRINCIPAL_SECRET"]), **CHECK)
action = os.environ["POLICY_ACTION"]
out = {"action": action}


def actions_of(policy):
    return sorted(
        [getattr(a.action, "value", a.action), a.time_after_create, a.time_before_expiry] for a in policy.lifetime_actions)


def policy_from_rest(body):
    lifetime = []
    for item in body.get("lifetimeActions", []):
        trigger = item.get("trigger", {})
        lifetime.append(KeyRotationLifetimeAction(
            KeyRotationPolicyAction(item["action"]["type"]),
            time_after_create=trigger.get("timeAfterCreate"), time_before_expiry=trigger.get("timeBeforeExpiry")))
    return KeyRotationPolicy(lifetime_actions=lifetime, expires_in=body.get("attributes", {}).get("expiryTime"))


if action == "crosscheck":
    keys.create_rsa_key(NAME, size=2048, hardware_protected=True)
    default = keys.get_key_rotation_policy(NAME)
    out["default_actions"] = actions_of(default)
    out["default_expires_in"] = default.expires_in
    out["default_created"] = default.created_on is not None

    policy = KeyRotationPolicy(expires_in="P90D", lifetime_actions=[
        KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_before_expiry="P30D")])
    updated = keys.update_key_rotation_policy(NAME, policy)
    out["updated_actions"] = actions_of(updated)
    out["updated_expires_in"] = updated.expires_in
    out["updated_id"] = updated.id
    out["updated_dates"] = updated.created_on is not None and updated.updated_on is not None
    fetched = keys.get_key_rotation_policy(NAME)
    out["fetched_same"] = actions_of(fetched) == actions_of(updated) and fetched.expires_in == updated.expires_in \
        and fetched.created_on == updated.created_on

    try:
        keys.update_key_rotation_policy(NAME, KeyRotationPolicy(lifetime_actions=[
            KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_after_create="P30D")]))
        out["refused_status"] = 200
    except HttpResponseError as error:
        out["refused_status"] = error.status_code
        out["refused_code"] = error.error.code if error.error else None
        out["refused_message"] = error.error.message if error.error else str(error)
    out["kept_after_refusal"] = actions_of(keys.get_key_rotation_policy(NAME)) == actions_of(updated)

    rotated = keys.rotate_key(NAME)
    out["rotated_lifetime"] = int((rotated.properties.expires_on - rotated.properties.created_on).total_seconds())

    if os.environ.get("PLATFORM_CLIENT_ID"):
        platform = KeyClient(vault_url=URL, credential=credential(os.environ["PLATFORM_CLIENT_ID"], os.environ["PLATFORM_SECRET"]), **CHECK)
        out["platform_get"] = actions_of(platform.get_key_rotation_policy(NAME)) == actions_of(updated)
        try:
            platform.update_key_rotation_policy(NAME, policy)
            out["platform_put"] = 200
        except HttpResponseError as error:
            out["platform_put"] = error.status_code
elif action == "setup":
    days = os.environ.get("EXPIRES_DAYS")
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=float(days)) if days else None
    out["version"] = keys.create_rsa_key(NAME, size=2048, hardware_protected=True, expires_on=expires).properties.version
    out["policy"] = actions_of(keys.update_key_rotation_policy(NAME, policy_from_rest(json.loads(os.environ["POLICY_JSON"]))))
elif action == "rotate":
    try:
        out["version"] = keys.rotate_key(NAME, retry_total=0).properties.version
    except (ServiceRequestError, ServiceResponseError, HttpResponseError) as error:
        out["error"] = type(error).__name__
print(json.dumps(out))
