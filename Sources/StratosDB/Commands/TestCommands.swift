import QueryEngine
import Synchronization

/// MongoDB's test commands, offered only by a node started with `serve --enable-test-commands`
/// (loopback only): the drivers' own test suites use them to make the server fail on purpose.
/// Without the flag they do not exist (59), as on a mongod without `enableTestCommands`.
enum TestCommands {
    /// The test commands (listed by `listCommands` only when they are offered).
    static let names: Set<String> = ["configureFailPoint"]

    static func register(into table: inout CommandTable) {
        table["configureFailPoint"] = { context in try configureFailPoint(context) }
    }

    /// `{configureFailPoint: "failCommand", mode, data}`: the only fail point StratosDB has.
    private static func configureFailPoint(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        guard context.server.configuration.testCommandsEnabled else {
            throw QueryError(.commandNotFound, "no such command: 'configureFailPoint'")
        }
        guard context.database == "admin" else {
            throw QueryError(.unauthorized, "configureFailPoint may only be run against the admin database.")
        }
        guard context.principal?.isOperator == true else {
            throw QueryError(.unauthorized, "not authorized to configure fail points: only the node's local owner may")
        }
        guard case .string(let name) = context.firstValue else { throw QueryError(.typeMismatch, "configureFailPoint takes a fail point name") }
        guard name == "failCommand" else { throw QueryError(.badValue, "unknown fail point: \(name) (StratosDB has failCommand)") }
        let entered = try context.server.commandFailPoint.configure(mode: context.command["mode"], data: context.command["data"])
        return ["count": .int64(entered)]
    }
}

/// The `failCommand` fail point: makes chosen commands fail with an error, close the
/// connection, carry a write concern error, or wait first, a set number of times or always.
final class CommandFailPoint: Sendable {
    struct Fault: Sendable {
        var commands: Set<String> = []
        var errorCode: Int32?
        var errorLabels: [BSONValue] = []
        var closeConnection = false
        var writeConcernError: BSONDocument?
        var blockMilliseconds: Int64 = 0
        var appName: String?
    }

    private enum Mode {
        case always
        case times(Int64)
        case skip(Int64)
    }

    private struct State {
        var fault: Fault?
        var mode: Mode = .always
        var entered: Int64 = 0
    }

    private let state = Mutex(State())

    /// The error for an injected code, with MongoDB's name for the codes drivers' tests use.
    static func code(_ number: Int32) -> QueryError.Code {
        let names: [Int32: String] = [
            2: "BadValue", 6: "HostUnreachable", 7: "HostNotFound", 8: "UnknownError", 50: "MaxTimeMSExpired", 89: "NetworkTimeout",
            91: "ShutdownInProgress", 112: "WriteConflict", 189: "PrimarySteppedDown", 251: "NoSuchTransaction", 262: "ExceededTimeLimit",
            9001: "SocketException", 10107: "NotWritablePrimary", 11600: "InterruptedAtShutdown", 11602: "InterruptedDueToReplStateChange",
            13435: "NotPrimaryNoSecondaryOk", 13436: "NotPrimaryOrSecondary",
        ]
        return .named(number, names[number] ?? "Location\(number)")
    }

    /// Sets (or with mode `"off"`, clears) the fail point; returns how often it fired before.
    func configure(mode given: BSONValue?, data: BSONValue?) throws(QueryError) -> Int64 {
        let mode: Mode?
        switch given {
        case .string("off")?: mode = nil
        case .string("alwaysOn")?: mode = .always
        case .document(let spec)? where spec.count == 1:
            guard let count = spec.elements[0].value.int64Value, count >= 0 else { throw QueryError(.badValue, "mode's count must be a non-negative integer") }
            switch spec.elements[0].key {
            case "times": mode = .times(count)
            case "skip": mode = .skip(count)
            default: throw QueryError(.badValue, "mode must be \"alwaysOn\", \"off\", {times: n} or {skip: n}")
            }
        default: throw QueryError(.badValue, "mode must be \"alwaysOn\", \"off\", {times: n} or {skip: n}")
        }
        var fault = Fault()
        if mode != nil {
            guard case .document(let data)? = data, case .array(let names)? = data["failCommands"] else {
                throw QueryError(.badValue, "failCommand needs data.failCommands, an array of command names")
            }
            for case .string(let command) in names { fault.commands.insert(command) }
            if let code = data["errorCode"] {
                guard let number = code.int64Value, let code = Int32(exactly: number) else { throw QueryError(.typeMismatch, "errorCode must be an integer") }
                fault.errorCode = code
            }
            if case .array(let labels)? = data["errorLabels"] { fault.errorLabels = labels }
            fault.closeConnection = data["closeConnection"]?.isTruthy == true
            if case .document(let concern)? = data["writeConcernError"] { fault.writeConcernError = concern }
            if data["blockConnection"]?.isTruthy == true { fault.blockMilliseconds = min(max(data["blockTimeMS"]?.int64Value ?? 0, 0), 60_000) }
            if case .string(let app)? = data["appName"] { fault.appName = app }
        }
        return state.withLock { state in
            let entered = state.entered
            state = State(fault: mode == nil ? nil : fault, mode: mode ?? .always, entered: 0)
            return entered
        }
    }

    /// The fault to apply to command `name` from a client called `appName`, if the fail point
    /// fires for it now (a `times` fail point counts down and then turns off).
    func fire(for name: String, appName: String?) -> Fault? {
        state.withLock { state in
            guard let fault = state.fault, fault.commands.contains(name), fault.appName == nil || fault.appName == appName else { return nil }
            switch state.mode {
            case .always: break
            case .skip(let left):
                if left > 0 {
                    state.mode = .skip(left - 1)
                    return nil
                }
            case .times(let left):
                guard left > 0 else { return nil }
                state.mode = .times(left - 1)
                if left == 1 { state.fault = nil }
            }
            state.entered += 1
            return fault
        }
    }
}
