/// Times every reader of RFC 3339 text must refuse (CMKCore's ``RFC3339``): shared by RFC3339Tests
/// and the tests of each entry point that reads times through it (TimeInputTests in CMKCtlTests).
public enum MalformedTimes {
    /// The fuzz finding first (Fuzz/Corpus/vault-log/crash-a0f80f03…: ICU's formatter trapped on its
    /// fraction), then a fraction too long or empty, no zone, a space for `T`, impossible dates and
    /// times, malformed offsets, surrounding spaces or signs, other digits, empty text and a word.
    public static let rfc3339 = [
        "2026-12-05T07:51:29.8555555555555555555555555555555555555555555555555555555555555555555555555516Z",
        "2026-12-05T07:51:29.8555555555Z", "2026-12-05T07:51:29.Z", "2026-12-05T07:51:29", "2026-12-05 07:51:29Z",
        "2026-13-05T07:51:29Z", "2026-02-29T07:51:29Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-00T00:00:00Z",
        "2026-12-05T24:00:00Z", "2026-12-05T23:60:00Z", "2026-12-05T23:59:61Z", "2026-12-05T07:51:29+1:00", "2026-12-05T07:51:29+24:00",
        "2026-12-05T07:51:29+01:60", "2026-12-05T07:51:29Z ", " 2026-12-05T07:51:29Z", "+2026-12-05T07:51:29Z", "2026-12-05T07:51:29ZZ",
        "２０２６-12-05T07:51:29Z", "", "now",
    ]
}
