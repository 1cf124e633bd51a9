#!/usr/bin/env python3
"""Checks answers a Swift test collected against docs/openapi/cmk-vault.yaml (vault_client.OpenAPI).

ANSWERS (JSON): a list of [path template, method, status, body]. Prints {"checked": N, "problems": [...]};
exit 3 when a package is missing.
"""
import json
import os
import sys

try:
    import jsonschema  # noqa: F401
    import yaml  # noqa: F401
    from vault_client import OpenAPI
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

openapi = OpenAPI(os.environ["VAULT_OPENAPI"])
for path, method, status, body in json.loads(os.environ["ANSWERS"]):
    openapi.check(path, method, (status, body))
print(json.dumps({"checked": openapi.checked, "problems": openapi.problems}))
