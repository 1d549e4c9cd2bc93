import QueryEngine
import SpaceOwnership

/// What a command needs before it may run: nothing beyond the handshake, an authenticated
/// principal, or an action on the command's space (and collection).
enum CommandAccess: Sendable {
    /// Runs without authentication: the handshake and the authentication commands themselves.
    case open
    /// Any authenticated principal (node-wide diagnostics; results are filtered per principal).
    case authenticated
    /// `action` on the collection the command names first.
    case collection(GrantActions)
    /// `action` on the space as a whole.
    case space(GrantActions)
    /// The space's owner only (dropping a space).
    case owner
    /// Checked by the handler itself (cursors, explain, user management).
    case handler

    /// Commands allowed before authentication (MongoDB allows the same set).
    private static let openCommands: Set<String> = [
        "hello", "isMaster", "ping", "buildInfo", "saslStart", "saslContinue", "authenticate", "logout", "getnonce",
        "endSessions",
    ]

    private static let table: [String: CommandAccess] = {
        var table: [String: CommandAccess] = [:]
        for name in openCommands { table[name] = .open }
        for name in [
            "serverStatus", "hostInfo", "getParameter", "getCmdLineOpts", "whatsmyuri", "connectionStatus", "listDatabases",
            "killSessions", "killAllSessions", "refreshSessions", "startSession", "commitTransaction", "abortTransaction",
            "replSetGetStatus", "profile", "getLastError", "getLog", "getFreeMonitoringStatus", "features", "listCommands",
        ] { table[name] = .authenticated }
        for name in ["find", "count", "distinct", "aggregate", "listIndexes", "collStats"] { table[name] = .collection(.read) }
        for name in ["listCollections", "dbStats"] { table[name] = .space(.read) }
        for name in ["insert", "update", "delete", "findAndModify"] { table[name] = .collection(.write) }
        for name in ["create", "drop", "createIndexes", "dropIndexes", "deleteIndexes", "collMod", "renameCollection"] {
            table[name] = .collection(.admin)
        }
        table["dropDatabase"] = .owner
        for name in ["getMore", "killCursors", "explain", "createUser", "updateUser", "dropUser", "usersInfo"] { table[name] = .handler }
        return table
    }()

    /// The access rule of a command; unknown names need admin rights on the space (the safe
    /// default for any command added later without an entry here).
    static func of(_ command: String) -> CommandAccess { table[command] ?? .space(.admin) }
}
