/// MESSAGE_IDs of catalogued events (systemd/cmk-syncer.catalog explains each for `journalctl -x`).
/// Generated once with `systemd-id128 new`; never change a published id.
public enum MessageID {
    public static let keyRotated = "5d0f3c1be2a44c8f9a1f6f1d2c7b9e01"
    public static let keyPulled = "8a3e9b7c41d54f0e8f2a6b1c9d0e7f12"
    public static let keyRestored = "c2b7e4a9150f4d3b9e8a7f6c5d4b3a23"
    public static let keyMissing = "f4e1d2c3b4a54958a7b6c5d4e3f2a134"
    public static let versionDisabledInUse = "1e2d3c4b5a6947389281726354abcd45"
    public static let vaultUnreachable = "7b6a5c4d3e2f41a0b9c8d7e6f5a4b356"
    public static let credentialsRejected = "9c8b7a6d5e4f4132a1b0c9d8e7f6a567"
    public static let configurationInvalid = "3f2e1d0c9b8a47b6a5c4d3e2f1a0b978"
    public static let currentVersionUnusable = "6e5d4c3b2a1948f7e6d5c4b3a2918089"
    public static let securityLogUnwritable = "3d811022bb5c4e7aab8e8d85aeeb0957"
    public static let alreadyRunning = "a729425caaaf457c8fd45740e4be90ad"
    public static let accountFailed = "9a2d8cf04ae94e34ad04648ad760c281"
    public static let keyringMissing = "3657c74862ed44cfae815ce083a7f643"
    public static let versionUnknown = "95663cc06a854c87a36845a508b9d26c"
    public static let stateUnwritable = "17504177c8034ca38bda9292111bdd3b"
    public static let descriptorLimit = "7e95449d4f0f45f0a52a775561b25e97"
    /// The event receiver accepted a key event for the configured key: a pass runs now.
    public static let keyEventAccepted = "540829211075484f8ae8488ff2b8529b"
    /// The event receiver refused a delivery (wrong secret, content type, body or origin).
    public static let keyEventRefused = "28c46059435b4b498b3a1fb9e975c631"
    public static let keyNearExpiry = "9a0b2084e11144528a4b42a7e14f580a"
    /// The key-state probe saw a change a pass acts on and started a pass.
    public static let keyChangeProbed = "206561534ef94b4c83b6fc6d0ac8221b"
    /// Key-state probes keep failing (they change nothing).
    public static let keyProbeFailing = "446f3ab04de24fdcaf9eaafd2e949937"

    /// Every id, for catalog checks.
    public static let all = [keyRotated, keyPulled, keyRestored, keyMissing, versionDisabledInUse, vaultUnreachable,
                             credentialsRejected, configurationInvalid, currentVersionUnusable, securityLogUnwritable, alreadyRunning,
                             accountFailed, keyringMissing, versionUnknown, stateUnwritable, descriptorLimit, keyEventAccepted, keyEventRefused,
                             keyNearExpiry, keyChangeProbed, keyProbeFailing]
}
