#!/usr/bin/env python3
"""The customer's console in headless Chromium (Debian's chromium + chromium-driver, Selenium).

Run by ConsoleBrowserTests against a real cmk-vault and two real cmk-syncer hosts on loopback.
An administrator signs in and creates a service-principal key; the service principal signs in,
creates the root key, and runs the manual runbooks: new version + expire the old one (the guard
stops the first attempt to disable the old version while hosts use it), pull, recover. After each
step both hosts run a pass (`cmk-syncer run --once`, HOST_CONFIGS; each reports its version usage to
the service, `vault.azure.usage-report`) and their accounts are read
back with `cmkctl status --report-only --json`. Security checks (CSRF, cookie flags, role pages,
headers, the secret shown once) go through `requests` with the browser's cookie; every page gets
an axe-core check (axe-selenium-python) and a screenshot in SCREENSHOT_DIR. Last, the service
principal sets the key's rotation policy in the console's form and the script reads it back through
the keys API (`GET /keys/{name}/rotationpolicy` with the principal's own token, vault_client.py);
a bad duration and a POST without the CSRF token leave it as it was.

Prints one JSON object of observations. Exit 3 when a package is missing, 4 when Chromium cannot
start (the message says why).
"""
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    from axe_selenium_python import Axe
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait
    import vault_client
except ImportError as error:
    print(json.dumps({"missing": str(error)}))
    sys.exit(3)

URL = os.environ["VAULT_URL"]
CA = os.environ["VAULT_CA_FILE"]
CONTEXT = ssl.create_default_context(cafile=CA)
SHOTS = os.environ["SCREENSHOT_DIR"]
ADMIN_ID, ADMIN_SECRET = os.environ["ADMIN_CLIENT_ID"], os.environ["ADMIN_SECRET"]
SYNCER, CMKCTL = os.environ["CMK_SYNCER"], os.environ["CMKCTL"]
HOSTS = os.environ["HOST_CONFIGS"].split(":")
KEY = "data-at-rest-rsa2048"
REQUIRED_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
}

out = {"pages": [], "axe": [], "headerProblems": [], "secretSeenAfter": [], "passes": {}}
options = webdriver.ChromeOptions()
for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
options.accept_insecure_certs = True  # the test CA is not in Chromium's NSS store; TLS is still on
try:
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
except Exception as error:  # noqa: BLE001 - report why Chromium did not start
    reason = f"Chromium did not start: {error}".splitlines()[0]
    print(reason + " (scripts/install-deps.sh installs chromium and chromium-driver)", file=sys.stderr)
    print(json.dumps({"chromium": reason}))
    sys.exit(4)

secret_text = None
shot_count = 0


def visit(name, path=None, post=None):
    """Screenshot, axe check and header check of the page now shown (after loading `path`). A page
    a POST showed has its headers checked on `post` (url, form) sent again, when given."""
    global shot_count
    if path:
        driver.get(URL + path)
    shot_count += 1
    driver.save_screenshot(os.path.join(SHOTS, f"{shot_count:02d}-{name}.png"))
    out["pages"].append(name)
    axe = Axe(driver)
    axe.inject()
    for violation in axe.run()["violations"]:
        if violation.get("impact") in ("serious", "critical"):
            out["axe"].append({"page": name, "id": violation["id"], "impact": violation["impact"], "help": violation["help"]})
    if secret_text and secret_text in driver.page_source:
        out["secretSeenAfter"].append(name)
    if post:
        check_answer(name, http.post(*post))
    elif driver.current_url.startswith(URL) and not name.startswith(POSTED):
        check_answer(name, http.get(driver.current_url))


POSTED = ("credential-created", "sign-in-refused", "rotation-policy-refused")  # shown by a POST; the same POST again would change state


class Answer:
    def __init__(self, status, headers, text):
        self.status_code, self.headers, self.text = status, headers, text


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(method, url, data=None, headers=None):
    """One request with the browser's cookies, over TLS checked against the test CA; redirects not followed."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, method=method, data=body, headers={"Cookie": cookies, **(headers or {})})
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=CONTEXT))
    try:
        with opener.open(request) as response:
            return Answer(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read().decode())


class http:  # noqa: N801 - reads like requests' session
    @staticmethod
    def get(url, allow_redirects=False):
        return fetch("GET", url)

    @staticmethod
    def post(url, data=None, headers=None, allow_redirects=False):
        return fetch("POST", url, data, headers)


def check_answer(name, response):
    for header, value in REQUIRED_HEADERS.items():
        if response.headers.get(header) != value:
            out["headerProblems"].append({"page": name, "header": header, "got": response.headers.get(header)})
    if secret_text and secret_text in response.text:
        out["secretSeenAfter"].append(name + " (refetched)")


def press(element):
    """Clicks `element` and waits for the next page to load."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_):
        try:
            page.is_enabled()
            return False
        except WebDriverException:  # stale, or "does not belong to the document": the next page is in
            return True
    WebDriverWait(driver, 30).until(replaced)


def click(text):
    press(driver.find_element(By.XPATH, f"//button[normalize-space()='{text}']"))


def fill(field_id, value):
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def sign_in(client_id, secret):
    driver.get(URL + "/console/sign-in")
    fill("client_id", client_id)
    fill("client_secret", secret)
    click("Sign in")


def hosts_pass(step):
    """Both hosts run a pass (each daemon reports its usage to the service after it); each account's binding and suspension, and the exit statuses."""
    result = {"status": [], "bindings": set(), "suspended": set()}
    for config in HOSTS:
        run = subprocess.run([SYNCER, "run", "--once", "--config", config], capture_output=True)
        result["status"].append(run.returncode)
        status = subprocess.run([CMKCTL, "status", "--report-only", "--json", "--config", config], capture_output=True)
        report = json.loads(status.stdout)["report"]
        for account in report["accounts"]:
            result["bindings"].add(account.get("binding"))
            result["suspended"].add(bool(account.get("suspended")))
    out["passes"][step] = {"status": result["status"], "bindings": sorted(b or "" for b in result["bindings"]),
                           "suspended": sorted(result["suspended"])}


def versions():
    """The key page's version ids, newest first."""
    return [cell.text.split()[0] for cell in driver.find_elements(By.XPATH, "//table/tbody/tr/td[1]") if cell.text]


try:
    # --- The administrator: sign in, a service-principal key, who has access, the log.
    driver.get(URL + "/console/sign-in")
    visit("sign-in")
    sign_in(ADMIN_ID, "wrong-secret")
    out["wrongSecretRefused"] = "wrong" in driver.page_source
    visit("sign-in-refused")
    sign_in(ADMIN_ID, ADMIN_SECRET)
    cookie = driver.get_cookie("cmk-console")
    out["cookie"] = {key: cookie.get(key) for key in ("httpOnly", "secure", "sameSite", "path")} if cookie else None
    out["cookieExpiresIn"] = (cookie.get("expiry", 0) - time.time()) if cookie else None
    visit("credentials")
    csrf = driver.find_element(By.NAME, "csrf").get_attribute("value")
    # CSRF: a POST without the token and one with a wrong token are refused; nothing is created.
    out["csrfMissing"] = http.post(URL + "/console/credentials", data={"name": "no-csrf"}, allow_redirects=False).status_code
    out["csrfWrong"] = http.post(URL + "/console/credentials", data={"name": "bad-csrf", "csrf": csrf[:-2] + "xx"}, allow_redirects=False).status_code
    out["csrfOtherOrigin"] = http.post(URL + "/console/credentials", data={"name": "x-origin", "csrf": csrf},
                                         headers={"Origin": "https://evil.example"}, allow_redirects=False).status_code
    # The rotation policy page is the service principal's: an administrator is refused, reading and posting.
    out["adminPolicyPage"] = http.get(URL + f"/console/keys/{KEY}/rotation-policy").status_code
    out["adminPolicyPost"] = http.post(URL + f"/console/keys/{KEY}/rotation-policy", data={"csrf": csrf, "expiryTime": "P1Y"}).status_code
    fill("name", "console-sp")
    click("Create key")
    secret_text = driver.find_element(By.ID, "secret").get_attribute("value")
    principal_id = driver.find_element(By.ID, "client-id").text
    out["secretShown"] = bool(secret_text) and len(secret_text) > 20
    out["copyButton"] = len(driver.find_elements(By.XPATH, "//button[@data-copy='secret']")) == 1
    shown = secret_text
    secret_text = None  # the page that shows it
    visit("credential-created")
    secret_text = shown
    visit("credentials-list", "/console/credentials")
    out["keysListed"] = [cell.text for cell in driver.find_elements(By.XPATH, "//table/tbody/tr/td[2]")]
    visit("access", "/console/access")
    visit("log-admin", "/console/log")
    click("Sign out")
    out["signedOut"] = driver.get_cookie("cmk-console") is None and "/console/sign-in" in driver.current_url

    # --- The service principal: the root key and the three runbooks.
    sign_in(principal_id, shown)
    visit("keys")
    # The administrator's pages are refused by URL, and not linked.
    out["principalAdminPage"] = http.get(URL + "/console/credentials", allow_redirects=False).status_code
    out["principalAccessPage"] = http.get(URL + "/console/access", allow_redirects=False).status_code
    out["adminLinkShown"] = "/console/credentials" in driver.page_source
    visit("admin-page-refused", "/console/credentials")
    driver.get(URL + "/console/keys")
    fill("name", KEY)
    click("Create key")
    first = versions()[0]
    out["first"] = first
    hosts_pass("bound")

    # Rotate: New version (RSA-HSM 2048 preselected), the hosts rebind; the old version's expiry set to now.
    visit("key")
    out["defaults"] = [driver.find_element(By.CSS_SELECTOR, "#kty option[selected]").text,
                       driver.find_element(By.CSS_SELECTOR, "#size option[selected]").text]
    click("New version")
    second = versions()[0]
    out["second"] = second
    # The guard: disabling the old version while the hosts still use it stops at the warning.
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{first}']]")
    out["usageBefore"] = row.find_elements(By.TAG_NAME, "td")[4].text
    press(row.find_element(By.XPATH, ".//button[normalize-space()='Disable']"))
    out["guardTitle"] = driver.find_element(By.TAG_NAME, "h1").text
    out["guardText"] = driver.find_element(By.CLASS_NAME, "warning").text
    guard_form = driver.find_element(By.XPATH, "//form[.//input[@name='confirm']]")
    visit("guard", post=(guard_form.get_attribute("action"), {"csrf": driver.find_element(By.NAME, "csrf").get_attribute("value"), "enabled": "false"}))
    fill("confirm", "not-the-version")
    click("I understand: go ahead")
    out["guardWrongId"] = "not this version's" in driver.page_source
    driver.get(URL + f"/console/keys/{KEY}")
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{first}']]")
    out["stillEnabledAfterGuard"] = row.find_elements(By.TAG_NAME, "td")[2].text
    hosts_pass("rotated")
    driver.get(URL + f"/console/keys/{KEY}")
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{first}']]")
    out["usageAfterRebind"] = row.find_elements(By.TAG_NAME, "td")[4].text
    press(row.find_element(By.XPATH, ".//button[normalize-space()='Expire now']"))
    if driver.find_elements(By.ID, "confirm"):  # no usage reports: the guard asks every time
        out["expireNeededConfirm"] = True
        fill("confirm", first)
        click("I understand: go ahead")
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{first}']]")
    out["oldExpiry"] = row.find_elements(By.TAG_NAME, "td")[3].text
    # A typed expiry on the new version (the field takes typing).
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{second}']]")
    field = row.find_element(By.CSS_SELECTOR, "input[type=datetime-local]")
    driver.execute_script("arguments[0].value = '2030-01-31T12:00:00'", field)
    press(row.find_element(By.XPATH, ".//button[normalize-space()='Set expiry']"))
    row = driver.find_element(By.XPATH, f"//tr[td/code[text()='{second}']]")
    out["typedExpiry"] = row.find_elements(By.TAG_NAME, "td")[3].text
    visit("key-rotated")
    hosts_pass("after-expiry")

    # Pull: the confirmation says what happens; the hosts go dark.
    press(driver.find_element(By.LINK_TEXT, "Pull (delete) this key…"))
    out["pullWarning"] = driver.find_element(By.CLASS_NAME, "warning").text
    visit("pull-confirm")
    click(f"Pull {KEY}")
    visit("deleted-keys")
    hosts_pass("pulled")

    # Recover: the hosts come back.
    click(f"Recover {KEY}")
    out["afterRecover"] = driver.current_url
    visit("key-recovered")
    hosts_pass("recovered")
    visit("log", "/console/log?operation=key-updated")
    out["logRows"] = len(driver.find_elements(By.XPATH, "//table/tbody/tr/td[3]"))
    out["checkpointShown"] = "—" in driver.find_element(By.TAG_NAME, "pre").text

    # --- The rotation policy: set in the form, read back through the keys API.
    policy_started = time.monotonic()
    bearer = vault_client.token(principal_id, shown)

    def stored_policy():
        status, body, _ = vault_client.get(f"/keys/{KEY}/rotationpolicy", bearer, **{"api-version": "7.5"})
        return {"status": status, "lifetimeActions": body.get("lifetimeActions"), "expiryTime": body.get("attributes", {}).get("expiryTime")}

    driver.get(URL + f"/console/keys/{KEY}")
    press(driver.find_element(By.LINK_TEXT, "Change the rotation policy…"))
    fill("expiryTime", "P1Y")
    fill("rotateAfterCreate", "P90D")
    fill("rotateBeforeExpiry", "")
    fill("notifyBeforeExpiry", "P30D")
    click("Save rotation policy")
    out["policySaved"] = driver.find_element(By.CLASS_NAME, "notice").text
    out["policyShown"] = [item.text for item in driver.find_elements(By.XPATH, "//main/ul/li")]
    visit("rotation-policy")
    out["policyStored"] = stored_policy()
    # A link claiming a save that did not happen (`?saved=` with another time) shows no "Saved".
    saved_url = driver.current_url
    driver.get(URL + f"/console/keys/{KEY}/rotation-policy?saved=1")
    out["policyCraftedSaved"] = len(driver.find_elements(By.CLASS_NAME, "notice"))
    out["policySavedURL"] = saved_url
    driver.get(saved_url)
    # A bad duration: the keys API's message naming the field, what was typed kept, nothing stored.
    fill("rotateAfterCreate", "P90X")
    click("Save rotation policy")
    out["policyRefusal"] = driver.find_element(By.ID, "policy-error").text
    out["policyTypedKept"] = driver.find_element(By.ID, "rotateAfterCreate").get_attribute("value")
    out["policyFieldMarked"] = driver.find_element(By.ID, "rotateAfterCreate").get_attribute("aria-invalid")
    visit("rotation-policy-refused")
    policy_form = {"csrf": driver.find_element(By.NAME, "csrf").get_attribute("value"), "expiryTime": "P1Y", "rotateAfterCreate": "P90X",
                   "rotateBeforeExpiry": "", "notifyBeforeExpiry": "P30D"}
    refused = http.post(URL + f"/console/keys/{KEY}/rotation-policy", data=policy_form)
    out["policyRefusedStatus"] = refused.status_code
    check_answer("rotation-policy-refused", refused)
    out["policyAfterRefusal"] = stored_policy()
    # Without the CSRF token: 403, nothing stored.
    del policy_form["csrf"]
    policy_form["rotateAfterCreate"] = "P60D"
    out["policyCsrfMissing"] = http.post(URL + f"/console/keys/{KEY}/rotation-policy", data=policy_form).status_code
    out["policyAfterCsrf"] = stored_policy()
    out["policySeconds"] = round(time.monotonic() - policy_started, 2)  # what this part adds to the test
except Exception:
    print("observations so far: " + json.dumps(out, default=str), file=sys.stderr)
    print("page: " + driver.current_url + "\n" + driver.page_source[:3000], file=sys.stderr)
    raise
finally:
    driver.quit()

print(json.dumps(out))
