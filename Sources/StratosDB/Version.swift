/// The version reported by `stratosdb --version` and `buildInfo`.
public enum StratosVersion {
    /// StratosDB's own release version.
    public static let current = "0.1.0"
    /// The MongoDB release whose behaviour StratosDB matches and reports in `buildInfo.version`.
    public static let mongoCompatible = "7.0.0"
}
