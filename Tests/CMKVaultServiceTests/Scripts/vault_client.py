"""What the customer scripts share: HTTPS calls to cmk-vault, tokens from azure-identity, and a
check of answers against docs/openapi/cmk-vault.yaml. Imported by customer_flow.py and
security_log_flow.py (they run from this folder, so it is on sys.path)."""
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

from azure.identity import ClientSecretCredential

URL = os.environ["VAULT_URL"]
TENANT = os.environ["VAULT_TENANT"]
CA = os.environ["VAULT_CA_FILE"]
CONTEXT = ssl.create_default_context(cafile=CA)


def credential(client_id, secret):
    return ClientSecretCredential(TENANT, client_id, secret, authority=URL, disable_instance_discovery=True, connection_verify=CA)


def token(client_id, secret):
    return credential(client_id, secret).get_token(URL + "/.default").token


def call(method, path, bearer=None, body=None, raw=None, content_type="application/json"):
    """(status, parsed JSON or text, headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": content_type}
    if bearer:
        headers["Authorization"] = "Bearer " + bearer
    request = urllib.request.Request(URL + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, context=CONTEXT) as response:
            text = response.read().decode()
            kind = response.headers.get("Content-Type", "")
            return response.status, (json.loads(text) if text and kind.startswith("application/json") else text), dict(response.headers)
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        try:
            return error.code, json.loads(text), dict(error.headers)
        except ValueError:
            return error.code, text, dict(error.headers)


def get(path, bearer, **query):
    return call("GET", path + ("?" + urllib.parse.urlencode(query) if query else ""), bearer)


class OpenAPI:
    """Checks answers against the response schemas of the OpenAPI document."""

    def __init__(self, path):
        import yaml
        self.spec = yaml.safe_load(open(path))
        self.problems = []
        self.checked = 0

    def resolve(self, node):
        if isinstance(node, dict):
            if "$ref" in node:
                target = self.spec
                for part in node["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                return self.resolve(target)
            return {key: self.resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        return node

    def check(self, path, method, answer):
        """Records a problem when answer (status, body, headers) does not match the document."""
        import jsonschema
        status, body = answer[0], answer[1]
        self.checked += 1
        responses = self.spec["paths"][path][method]["responses"]
        if str(status) not in responses:
            self.problems.append(f"{method.upper()} {path}: status {status} is not documented")
            return
        content = self.resolve(responses[str(status)]).get("content", {})
        if "application/json" in content:
            try:
                jsonschema.validate(body, content["application/json"]["schema"])
            except jsonschema.ValidationError as error:
                self.problems.append(f"{method.upper()} {path} {status}: {error.message}")
        elif "text/plain" in content and not isinstance(body, str):
            self.problems.append(f"{method.upper()} {path} {status}: expected text")
