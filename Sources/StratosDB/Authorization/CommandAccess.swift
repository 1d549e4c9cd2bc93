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
        "endSessions", "connectionStatus",
    ]

    private static let table: [String: CommandAccess] = {
        var table: [String: CommandAccess] = [:]
        for name in openCommands { table[name] = .open }
        for name in [
            "serverStatus", "hostInfo", "getParameter", "getCmdLineOpts", "whatsmyuri", "listDatabases",
            "killSessions", "killAllSessions", "refreshSessions", "startSession", "commitTransaction", "abortTransaction",
            "replSetGetStatus", "profile", "getLastError", "getLog", "getFreeMonitoringStatus", "features", "listCommands",
            // The chain is public; a signed transaction carries its own authority.
            "currentOp", "killOp",
            "ledgerStatus", "ledgerBlock", "ledgerAccount", "ledgerTransaction", "ledgerData", "submitTransaction",
            // A test command (`serve --enable-test-commands`): the handler admits the operator only.
            "configureFailPoint",
        ] { table[name] = .authenticated }
        for name in ["find", "count", "distinct", "aggregate", "listIndexes", "collStats", "proveRecord"] { table[name] = .collection(.read) }
        for name in ["listCollections", "dbStats"] { table[name] = .space(.read) }
        for name in ["insert", "update", "delete"] { table[name] = .collection(.write) }
        // findAndModify returns the documents it changes, so it needs read as well as write.
        for name in ["findAndModify", "findandmodify"] { table[name] = .collection([.read, .write]) }
        for name in [
            "create", "drop", "createIndexes", "dropIndexes", "deleteIndexes", "renameCollection", "collMod", "convertToCapped",
            "cloneCollectionAsCapped",
        ] {
            table[name] = .collection(.admin)
        }
        // Stored procedures: changing them is an admin's; running and listing them needs execute
        // (the procedure's reads and writes are then checked against the caller's grants).
        for name in ["createProcedure", "dropProcedure"] { table[name] = .space(.admin) }
        for name in ["callProcedure", "listProcedures", "submitJob", "jobStatus", "listJobs", "cancelJob"] { table[name] = .space(.execute) }
        // Exporting gives away every version of every document: the owner's only (checked
        // again by the handler against the space's current key). An import names its space in
        // the archive, so the handler checks that the archive's owner is the caller.
        table["dropDatabase"] = .owner
        table["exportSpace"] = .owner
        table["importSpace"] = .authenticated
        // A grant or revocation carries its signer's authority; the handler checks the caller
        // is that signer, and the catalog that the signer may grant (owner or admin grantee).
        table["grantAccess"] = .authenticated
        table["revokeAccess"] = .authenticated
        for name in ["getMore", "killCursors", "explain", "createUser", "updateUser", "dropUser", "usersInfo"] { table[name] = .handler }
        return table
    }()

    /// The access rule of a command. A command without an entry is the space owner's only: a
    /// handler added without a rule fails closed (a unit test checks every handler has one).
    static func of(_ command: String) -> CommandAccess { table[command] ?? .owner }

    /// Whether `command` has an explicit rule.
    static func hasRule(_ command: String) -> Bool { table[command] != nil }
}
