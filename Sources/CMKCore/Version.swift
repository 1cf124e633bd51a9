/// The version printed by `--version` and recorded in the state.
public enum CMKVersion {
    public static let current = "0.1.0"
}
