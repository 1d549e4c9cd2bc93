import CSodium

/// Makes sure libsodium is initialized exactly as its documentation requires: `sodium_init()`
/// must run before any other call; it is idempotent and thread-safe.
enum Sodium {
    static let ready: Bool = { sodium_init() >= 0 }()

    static func ensureReady() {
        precondition(ready, "libsodium failed to initialize")
    }
}
