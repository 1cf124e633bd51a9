#!/usr/bin/env python3
"""Drives the Azure Key Vault emulator with Microsoft's own Python SDK (azure-identity's
ClientSecretCredential through MSAL, azure-keyvault-keys' KeyClient and CryptographyClient) and
prints one JSON object with what each step saw. Exit status 0 only if every step behaved as the
SDK expects of the real service.

Input (environment): AKV_VAULT_URL, AKV_AUTHORITY, AKV_TENANT_ID, AKV_CLIENT_ID, AKV_CLIENT_SECRET,
AKV_CA_FILE, AKV_CLIENT_CERTIFICATE (PEM with the registered client certificate and its key),
AKV_MANAGED_IDENTITY_CLIENT_ID, AZURE_POD_IDENTITY_AUTHORITY_HOST (the emulator's IMDS listener,
which azure-identity's IMDS credential honours), optional AKV_API_VERSION (default: the SDK's default).
"""
import json
import os
import sys
import traceback

try:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.identity import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
except ImportError as error:  # the Swift test turns this into a failure with install instructions
    print(json.dumps({"ok": False, "missing": str(error)}))
    sys.exit(3)


def main():
    env = os.environ
    ca = env["AKV_CA_FILE"]
    vault_url = env["AKV_VAULT_URL"]
    api_version = env.get("AKV_API_VERSION") or None
    results = {"steps": []}

    def step(step_name, **values):
        results["steps"].append({"step": step_name, **values})

    credential = ClientSecretCredential(
        env["AKV_TENANT_ID"], env["AKV_CLIENT_ID"], env["AKV_CLIENT_SECRET"],
        authority=env["AKV_AUTHORITY"], disable_instance_discovery=True, connection_verify=ca)
    options = {"verify_challenge_resource": False, "connection_verify": ca}
    if api_version:
        options["api_version"] = api_version
    client = KeyClient(vault_url, credential, **options)
    results["api_version"] = client.api_version

    name = "sdk-cross-check"
    created = client.create_rsa_key(name, size=2048, key_operations=["wrapKey", "unwrapKey"], tags={"purpose": "cross-check"})
    step("create", kid=created.id, version=created.properties.version, kty=str(created.key_type),
         key_ops=[str(op) for op in created.key_operations], tags=created.properties.tags,
         recovery_level=created.properties.recovery_level, recoverable_days=created.properties.recoverable_days,
         enabled=created.properties.enabled, created_on=created.properties.created_on.timestamp())

    rotated = client.rotate_key(name)
    step("rotate", kid=rotated.id, version=rotated.properties.version, differs=rotated.properties.version != created.properties.version,
         new_modulus=rotated.key.n != created.key.n)

    latest = client.get_key(name)
    step("get_latest", version=latest.properties.version)

    pages = client.list_properties_of_key_versions(name, max_page_size=1).by_page()
    versions, page_count = [], 0
    for page in pages:
        page_count += 1
        versions.extend(item.version for item in page)
    step("list_versions", versions=sorted(versions), pages=page_count)

    # Wrap locally with the rotated version's public JWK (RSA-OAEP-256: SHA-256, MGF1-SHA-256),
    # then have the vault unwrap it.
    public_key = rsa.RSAPublicNumbers(int.from_bytes(rotated.key.e, "big"), int.from_bytes(rotated.key.n, "big")).public_key()
    oaep256 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    dek = os.urandom(32)
    wrapped = public_key.encrypt(dek, oaep256)
    crypto = CryptographyClient(rotated.id, credential, **options)
    unwrapped = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
    step("unwrap_rsa_oaep_256", matches=unwrapped.key == dek, kid=unwrapped.key_id)

    # The same with the first version and RSA-OAEP (SHA-1), as older clients wrap.
    old_public = rsa.RSAPublicNumbers(int.from_bytes(created.key.e, "big"), int.from_bytes(created.key.n, "big")).public_key()
    oaep1 = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    old_wrapped = old_public.encrypt(dek, oaep1)
    old_crypto = CryptographyClient(created.id, credential, **options)
    step("unwrap_rsa_oaep_old_version", matches=old_crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep, old_wrapped).key == dek)

    disabled = client.update_key_properties(name, created.properties.version, enabled=False, tags={"state": "retired"})
    step("disable_old_version", enabled=disabled.properties.enabled, tags=disabled.properties.tags,
         updated_after_created=disabled.properties.updated_on >= disabled.properties.created_on)
    try:
        CryptographyClient(created.id, credential, **options).unwrap_key(KeyWrapAlgorithm.rsa_oaep, old_wrapped)
        step("unwrap_disabled", refused=False)
    except HttpResponseError as error:
        step("unwrap_disabled", refused=True, status=error.status_code, code=error.error.code if error.error else None,
             message=error.message.splitlines()[0] if error.message else None)

    try:
        client.get_key("no-such-key")
        step("get_missing", not_found=False)
    except ResourceNotFoundError as error:
        step("get_missing", not_found=True, status=error.status_code, code=error.error.code if error.error else None)

    deleted = client.begin_delete_key(name).result()
    step("delete", recovery_id=deleted.recovery_id, deleted_on=deleted.deleted_date.timestamp(),
         scheduled_purge=deleted.scheduled_purge_date.timestamp(), kid=deleted.id)
    got_deleted = client.get_deleted_key(name)
    step("get_deleted", name=got_deleted.name, recovery_id=got_deleted.recovery_id)
    try:
        client.get_key(name)
        step("get_after_delete", not_found=False)
    except ResourceNotFoundError as error:
        step("get_after_delete", not_found=True, status=error.status_code)

    recovered = client.begin_recover_deleted_key(name).result()
    step("recover", version=recovered.properties.version, same_latest=recovered.properties.version == rotated.properties.version)
    unwrapped_again = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
    step("unwrap_after_recover", matches=unwrapped_again.key == dek)

    # A certificate credential: MSAL signs a client assertion with the registered certificate.
    certificate_credential = CertificateCredential(
        env["AKV_TENANT_ID"], env["AKV_CLIENT_ID"], certificate_path=env["AKV_CLIENT_CERTIFICATE"],
        authority=env["AKV_AUTHORITY"], disable_instance_discovery=True, connection_verify=ca)
    via_certificate = KeyClient(vault_url, certificate_credential, **options).get_key(name)
    step("certificate_credential", version=via_certificate.properties.version)

    # Managed identity through IMDS (azure-identity probes it without the Metadata header first).
    managed = ManagedIdentityCredential(client_id=env["AKV_MANAGED_IDENTITY_CLIENT_ID"])
    via_managed_identity = KeyClient(vault_url, managed, **options).get_key(name)
    step("managed_identity", version=via_managed_identity.properties.version)

    client.begin_delete_key(name).result()
    try:
        client.purge_deleted_key(name)
        step("purge", refused=False)
    except HttpResponseError as error:
        step("purge", refused=True, status=error.status_code, code=error.error.code if error.error else None)

    print(json.dumps(results))


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # report, do not hide: the Swift test prints this
        print(json.dumps({"ok": False, "error": repr(error), "trace": traceback.format_exc()}))
        sys.exit(1)
