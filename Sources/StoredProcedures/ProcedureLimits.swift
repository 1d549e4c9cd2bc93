/// What one procedure call may use. The node sets them (`serve --procedure-*` flags); a call
/// may ask for less fuel, never more than `fuelMax`.
public struct ProcedureLimits: Sendable {
    /// Fuel of a call that names none: about one unit per WebAssembly instruction.
    public var fuelDefault: UInt64 = 100_000_000
    /// The most fuel a call may ask for.
    public var fuelMax: UInt64 = 2_000_000_000
    /// Linear memory a module may hold, in bytes (its initial size included).
    public var memoryBytesMax: Int = 64 << 20
    /// Table elements a module may hold.
    public var tableElementsMax: Int = 100_000
    /// The largest module `createProcedure` accepts.
    public var moduleBytesMax: Int = 4 << 20
    /// Cursors a call may have open at once.
    public var cursorsMax: Int = 16
    /// The largest result document (`stratos_emit`).
    public var resultBytesMax: Int = 4 << 20
    /// Log lines kept per call, and bytes per line.
    public var logLinesMax: Int = 100
    public var logLineBytesMax: Int = 1_024
    /// Wall time of a call that gives no `maxTimeMS` (jobs included).
    public var timeMillisecondsMax: Int64 = 10_000
    /// The interpreter's stack, in bytes (deep recursion traps with "call stack exhausted").
    public var stackBytes: Int = 1 << 20

    /// The node's defaults.
    public init() {}

    /// Names a procedure may have: 1–64 letters, digits, `_`, `-` and `.`.
    public static func validateName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x5f
                    || byte == 0x2d || byte == 0x2e
            }
    }
}
