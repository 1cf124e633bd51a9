#!/usr/bin/env python3
"""The customer's side of cmk-vault, driven by Microsoft's own client library.

The issue's chain in one run: an administrator (added by the operator) creates a principal key;
the principal gets a token and reads the Security Logs API; the administrator revokes the key;
the principal's next request with that token, on the same log route, is refused.

Run by VaultServiceProcessTests against a real cmk-vault over TLS on loopback. Uses
azure-identity's ClientSecretCredential (authority pointed at the service, instance discovery
off) for every token and PyJWT to verify tokens against the service's JWKS. Prints one JSON
object of observations; the Swift test asserts on them. Exit 3 when a package is missing.
"""
import json
import os
import sys
import urllib.parse

try:
    import jsonschema  # noqa: F401 (vault_client's OpenAPI check)
    import yaml  # noqa: F401
    import jwt
    from azure.identity import ClientSecretCredential  # noqa: F401 (vault_client)
    from azure.core.exceptions import ClientAuthenticationError
except ImportError as error:  # the Swift test turns this into a failure with the install hint
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

from vault_client import URL, TENANT, OpenAPI, call, token

out = {}
openapi = OpenAPI(os.environ["VAULT_OPENAPI"])


def token_error(client_id, secret):
    """The identity platform's error for a refused sign-in: its AADSTS code."""
    try:
        token(client_id, secret)
        return None
    except ClientAuthenticationError as error:
        text = str(error)
        return next((word.strip(":") for word in text.split() if word.startswith("AADSTS")), None)


def claims(raw):
    discovery = call("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration")[1]
    jwks = call("GET", discovery["jwks_uri"][len(URL):])[1]
    header = jwt.get_unverified_header(raw)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    return jwt.decode(raw, jwt.PyJWK(key).key, algorithms=["ES256"], audience=URL, issuer=discovery["issuer"])


admin_id, admin_secret = os.environ["ADMIN_CLIENT_ID"], os.environ["ADMIN_SECRET"]
admin = token(admin_id, admin_secret)
admin_claims = claims(admin)
out["admin_roles"] = admin_claims["roles"]
out["admin_lifetime"] = admin_claims["exp"] - admin_claims["iat"]
out["admin_tid"] = admin_claims["tid"]

status, body, _ = call("GET", "/v1.0/applications", admin)
out["applications_status"] = status
openapi.check("/v1.0/applications", "get", (status, body))
raw_form = f"grant_type=client_credentials&client_id={admin_id}&client_secret={admin_secret}&scope={URL}/.default"
token_answer = call("POST", f"/{TENANT}/oauth2/v2.0/token", raw=raw_form.encode(), content_type="application/x-www-form-urlencoded")
openapi.check("/{tenant}/oauth2/v2.0/token", "post", token_answer)
jwks_answer = call("GET", f"/{TENANT}/discovery/v2.0/keys")
openapi.check("/{tenant}/discovery/v2.0/keys", "get", jwks_answer)
app = body["value"][0]["appId"]
out["app_id"] = app

status, created, _ = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "prod-hsm"}})
out["add_status"] = status
openapi.check("/v1.0/applications/{appId}/addPassword", "post", (status, created))
out["add_fields"] = sorted(created.keys())
out["hint_matches"] = created["hint"] == created["secretText"][:3]
out["secret_length"] = len(created["secretText"])
out["duplicate"] = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "prod-hsm"}})[:2]
duplicate = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "prod-hsm"}})
openapi.check("/v1.0/applications/{appId}/addPassword", "post", duplicate)
wrong = call("POST", f"/{TENANT}/oauth2/v2.0/token", raw=b"grant_type=client_credentials&client_id=" + admin_id.encode() + b"&client_secret=x&scope=" + URL.encode() + b"/.default",
             content_type="application/x-www-form-urlencoded")
openapi.check("/{tenant}/oauth2/v2.0/token", "post", wrong)
out["too_long"] = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "x" * 17}})[:2]
out["unknown_field"] = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "y", "secretText": "mine"}})[:2]
out["too_far"] = call("POST", f"/v1.0/applications/{app}/addPassword", admin, {"passwordCredential": {"displayName": "far", "endDateTime": "2099-01-01T00:00:00Z"}})[:2]
out["not_json"] = call("POST", f"/v1.0/applications/{app}/addPassword", admin, raw=b"{not json")[:2]
status, listing, _ = call("GET", "/v1.0/applications", admin)
keys = listing["value"][0]["passwordCredentials"]
out["listed_fields"] = sorted(next(k for k in keys if k["keyId"] == created["keyId"]).keys())

principal = token(app, created["secretText"])
principal_claims = claims(principal)
out["principal_roles"] = principal_claims["roles"]
out["principal_cred"] = principal_claims["cred"] == created["keyId"]
out["principal_on_admin_route_before"] = call("GET", "/v1.0/applications", principal)[0]
out["no_token"] = call("GET", "/v1.0/applications")[:2]
out["no_token_challenge"] = call("GET", "/v1.0/applications")[2].get("WWW-Authenticate") or call("GET", "/v1.0/applications")[2].get("Www-Authenticate")
out["tampered"] = call("GET", "/v1.0/applications", admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB"))[0]

# The principal reads the Security Logs API with its token: its own sign-in is there.
LOG_QUERY = "/v1.0/securityLogs/records?" + urllib.parse.urlencode({"actor": app, "operation": "token-issued"})
status, page, _ = call("GET", LOG_QUERY, principal)
out["principal_log_before"] = status
out["principal_log_records"] = len(page["value"]) if status == 200 else None
out["principal_log_own_sign_in"] = status == 200 and any(
    item["record"].get("details", {}).get("credential") == created["keyId"] and item["record"].get("role") == "servicePrincipal"
    for item in page["value"])

out["revoke_status"] = call("POST", f"/v1.0/applications/{app}/removePassword", admin, {"keyId": created["keyId"]})[0]
# The next request with that token, on the same log route, is refused.
out["principal_log_after"] = call("GET", LOG_QUERY, principal)[:2]
out["principal_on_admin_route_after"] = call("GET", "/v1.0/applications", principal)[:2]
out["revoked_secret"] = token_error(app, created["secretText"])
out["revoke_again"] = call("POST", f"/v1.0/applications/{app}/removePassword", admin, {"keyId": created["keyId"]})[0]

out["expired_secret"] = token_error(app, os.environ["EXPIRED_SECRET"])
out["wrong_secret"] = token_error(admin_id, "not-the-secret")
out["unknown_client"] = token_error("00000000-0000-0000-0000-000000000000", "x")

# The failure throttle: VAULT_FAILURES_PER_CLIENT wrong secrets for one client, then 429.
victim = os.environ["THROTTLE_CLIENT_ID"]
form = f"grant_type=client_credentials&client_id={victim}&client_secret=wrong&scope={URL}/.default".encode()
statuses = [call("POST", f"/{TENANT}/oauth2/v2.0/token", raw=form, content_type="application/x-www-form-urlencoded")
            for _ in range(int(os.environ["VAULT_FAILURES_PER_CLIENT"]) + 1)]
out["throttle_statuses"] = [s[0] for s in statuses]
out["throttle_retry_after"] = statuses[-1][2].get("Retry-After")
out["throttle_error"] = statuses[-1][1].get("error") if isinstance(statuses[-1][1], dict) else None
out["openapi_conformance"] = openapi.problems
out["openapi_checked"] = openapi.checked
print(json.dumps(out))
