import Foundation
import Testing

/// The customer's console in a real browser (issue 23): headless Chromium driven by Selenium
/// (Scripts/console_flow.py) against a real cmk-vault and two real cmk-syncer hosts on loopback.
/// An administrator creates a service-principal key; the service principal runs the manual
/// runbooks — new version + expire the old one, pull, recover — and after each the hosts' accounts
/// are rebound, dark, back. The guard, CSRF, cookie flags, role pages, the secret shown once, the
/// headers of every page and axe-core's serious/critical findings are checked on the way; every
/// page is saved as a screenshot (CONSOLE_SCREENSHOTS=DIR keeps them, for docs/console/).
@Suite(.serialized) struct ConsoleBrowserTests {
    @Test("the console's runbooks in headless Chromium, with two hosts following the key")
    func runbooksInTheBrowser() throws {
        let vault = try VaultProcess.start(extra: "vault: {master-key-file: master.key, create-master-key: true, retention-days: 7}")
        defer { vault.stop() }
        let admin = try vault.ctl(["admins", "add", "Ada Admin", "--json"])
        let platforms = try (1...2).map { try vault.ctl(["identities", "add", "host-\($0).example", "--json"]) }
        // Each host's daemon reports its version usage after every pass (vault.azure.usage-report).
        let hosts = try (1...2).map { try HostUsageProcessTests.host(on: vault, name: "host-\($0)", platform: platforms[$0 - 1]) }
        let shots = ProcessInfo.processInfo.environment["CONSOLE_SCREENSHOTS"] ?? (vault.root + "/screenshots")
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        let out = try vault.python("console_flow.py", [
            "ADMIN_CLIENT_ID": try #require(admin["clientId"] as? String), "ADMIN_SECRET": try #require(admin["secret"] as? String),
            "CMK_SYNCER": try VaultProcess.binary("cmk-syncer"), "CMKCTL": try VaultProcess.binary("cmkctl"),
            "HOST_CONFIGS": hosts.map(\.config).joined(separator: ":"), "SCREENSHOT_DIR": shots,
        ])
        let context = "\(out)"

        // Sign-in, session cookie, CSRF, roles, headers, the secret shown once, accessibility.
        #expect(out["wrongSecretRefused"] as? Bool == true, "\(context)")
        let cookie = try #require(out["cookie"] as? [String: Any], "no session cookie: \(context)")
        #expect(cookie["httpOnly"] as? Bool == true && cookie["secure"] as? Bool == true && cookie["sameSite"] as? String == "Strict"
                && cookie["path"] as? String == "/console", "\(cookie)")
        let expiresIn = try #require(out["cookieExpiresIn"] as? Double)
        #expect(expiresIn > 3500 && expiresIn <= 3601, "the cookie should expire with the 1-hour token: \(expiresIn)")
        #expect(out["csrfMissing"] as? Int == 403 && out["csrfWrong"] as? Int == 403 && out["csrfOtherOrigin"] as? Int == 403, "\(context)")
        #expect(out["keysListed"] as? [String] == ["console-sp"], "only the key made with the CSRF token exists: \(context)")
        #expect(out["secretShown"] as? Bool == true && out["copyButton"] as? Bool == true, "\(context)")
        #expect((out["secretSeenAfter"] as? [String])?.isEmpty == true, "the secret appeared again: \(context)")
        #expect(out["signedOut"] as? Bool == true, "\(context)")
        #expect(out["principalAdminPage"] as? Int == 403 && out["principalAccessPage"] as? Int == 403, "\(context)")
        #expect(out["adminLinkShown"] as? Bool == false, "\(context)")
        #expect((out["headerProblems"] as? [Any])?.isEmpty == true, "\(out["headerProblems"] ?? "")")
        #expect((out["axe"] as? [Any])?.isEmpty == true, "axe-core: \(out["axe"] ?? "")")
        #expect((out["pages"] as? [String])?.count ?? 0 >= 14, "\(context)")

        // The runbooks, followed by both hosts.
        let first = try #require(out["first"] as? String), second = try #require(out["second"] as? String)
        let passes = try #require(out["passes"] as? [String: [String: Any]])
        func pass(_ step: String) -> (status: [Int], bindings: [String], suspended: [Bool]) {
            (passes[step]?["status"] as? [Int] ?? [], passes[step]?["bindings"] as? [String] ?? [], passes[step]?["suspended"] as? [Bool] ?? [])
        }
        #expect(out["defaults"] as? [String] == ["RSA-HSM", "2048"])
        #expect(pass("bound").status == [0, 0] && pass("bound").bindings == [first], "\(passes)")
        #expect((out["usageBefore"] as? String)?.hasPrefix("in use by 10 accounts on 2 hosts") == true, "\(context)")
        #expect((out["guardTitle"] as? String)?.contains("still in use") == true, "the guard did not stop the disable: \(context)")
        let guardText = try #require(out["guardText"] as? String)
        #expect(guardText.contains("host-1.example: 5 accounts") && guardText.contains("host-2.example: 5 accounts"), "\(guardText)")
        #expect(out["guardWrongId"] as? Bool == true)
        #expect(out["stillEnabledAfterGuard"] as? String == "yes", "\(context)")
        #expect(pass("rotated").status == [0, 0] && pass("rotated").bindings == [second], "\(passes)")
        #expect(out["usageAfterRebind"] as? String == "safe to disable", "\(context)")
        #expect(out["expireNeededConfirm"] == nil, "a version no host uses needs no typed id: \(context)")
        #expect((out["oldExpiry"] as? String)?.isEmpty == false && out["oldExpiry"] as? String != "—", "\(context)")
        #expect(out["typedExpiry"] as? String == "2030-01-31T12:00:00Z", "\(context)")
        #expect(pass("after-expiry").status == [0, 0] && pass("after-expiry").bindings == [second], "\(passes)")
        #expect((out["pullWarning"] as? String)?.contains("goes dark") == true, "\(context)")
        #expect(pass("pulled").status == [4, 4] && pass("pulled").suspended == [true], "\(passes)")
        #expect(pass("recovered").status == [0, 0] && pass("recovered").suspended == [false] && pass("recovered").bindings == [second], "\(passes)")
        #expect((out["logRows"] as? Int ?? 0) >= 2 && out["checkpointShown"] as? Bool == true, "\(context)")
        #expect(vault.log.contains("CMK_OPERATION=key-deleted") && vault.log.contains("CMK_OPERATION=key-recovered"), "the console's changes are recorded")

        // The rotation policy: set in the form and read back through the keys API; a bad duration and
        // a POST without the CSRF token change nothing; the administrator may neither open nor post it.
        #expect(out["adminPolicyPage"] as? Int == 403 && out["adminPolicyPost"] as? Int == 403, "\(context)")
        #expect((out["policySaved"] as? String)?.hasPrefix("Saved.") == true, "\(context)")
        #expect((out["policySavedURL"] as? String).map { $0.contains("?saved=") && !$0.hasSuffix("?saved=1") } == true, "the redirect names the policy's updated time: \(context)")
        #expect(out["policyCraftedSaved"] as? Int == 0, "a crafted ?saved= link claimed a save: \(context)")
        #expect(out["policyShown"] as? [String] == ["Rotate: P90D after creation", "Notify: P30D before expiry"], "\(context)")
        let stored = try #require(out["policyStored"] as? [String: Any], "\(context)")
        #expect(stored["status"] as? Int == 200 && stored["expiryTime"] as? String == "P1Y", "\(stored)")
        #expect(RotationPolicyTests.json(stored["lifetimeActions"] ?? []) == RotationPolicyTests.json([
            ["trigger": ["timeAfterCreate": "P90D"], "action": ["type": "Rotate"]],
            ["trigger": ["timeBeforeExpiry": "P30D"], "action": ["type": "Notify"]],
        ]), "the keys API reads another policy than the form set: \(stored)")
        let refusal = try #require(out["policyRefusal"] as? String, "\(context)")
        #expect(refusal.hasPrefix("Rotate: time after creation: Invalid value for 'lifetimeActions[0].trigger.timeAfterCreate': 'P90X' is not an ISO 8601 duration")
                && refusal.hasSuffix("Nothing was changed."), "\(refusal)")
        #expect(out["policyRefusedStatus"] as? Int == 400 && out["policyTypedKept"] as? String == "P90X" && out["policyFieldMarked"] as? String == "true", "\(context)")
        #expect(out["policyCsrfMissing"] as? Int == 403, "\(context)")
        for after in ["policyAfterRefusal", "policyAfterCsrf"] {
            #expect(RotationPolicyTests.json(out[after] ?? [:]) == RotationPolicyTests.json(stored), "\(after) changed the stored policy: \(context)")
        }
        print("the rotation policy part of the browser test took \(out["policySeconds"] ?? "?") s")
        // Recorded as the API's PUT: a record before each attempt (the saved one and the two bad durations),
        // and a -failed follow-up for each refused one; the CSRF-less POST never reached the API.
        let policyRecords = vault.log.split(separator: "\n").filter { $0.contains("CMK_OPERATION=key-rotation-policy-updated") }
        #expect(policyRecords.filter { !$0.contains("key-rotation-policy-updated-failed") }.count == 3
                && policyRecords.filter { $0.contains("key-rotation-policy-updated-failed CMK_REASON=400 BadParameter") }.count == 2, "\(policyRecords)")
    }
}
