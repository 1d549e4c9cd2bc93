import Foundation
import Logging
import QueryEngine
import SpaceOwnership
import StratosCore

/// SASL authentication (SCRAM-SHA-1, SCRAM-SHA-256, PLAIN with session tokens), logout,
/// connectionStatus and the user-management commands of the node operator.
enum AuthenticationCommands {
    static func register(into table: inout CommandTable) {
        table["saslStart"] = { context in try saslStart(context, command: context.command) }
        table["saslContinue"] = { context in try saslContinue(context) }
        table["authenticate"] = { context in
            let mechanism = context.command["mechanism"]?.stringValue ?? ""
            throw QueryError(.mechanismUnavailable, "Received authentication for mechanism \(mechanism) which is not enabled")
        }
        table["logout"] = { context in
            context.connection.session.logout()
            return [:]
        }
        table["connectionStatus"] = { context in connectionStatus(context) }
        table["createUser"] = { context in try createUser(context) }
        table["updateUser"] = { context in try updateUser(context) }
        table["dropUser"] = { context in try dropUser(context) }
        table["usersInfo"] = { context in try usersInfo(context) }
    }

    /// The mechanisms offered in hello's `saslSupportedMechs`: the same answer for every user
    /// name, so the handshake does not reveal which users exist.
    static let supportedMechanisms: [BSONValue] = [.string(ScramMechanism.sha1.rawValue), .string(ScramMechanism.sha256.rawValue)]

    /// `saslStart`, also used for hello's `speculativeAuthenticate`.
    static func saslStart(_ context: CommandContext, command: BSONDocument) throws(QueryError) -> BSONDocument {
        guard case .string(let mechanismName)? = command["mechanism"] else {
            throw QueryError(.badValue, "saslStart requires a mechanism")
        }
        let payload = try payloadBytes(command)
        if mechanismName == "PLAIN" { return try plain(context, payload: payload) }
        guard let mechanism = ScramMechanism(rawValue: mechanismName) else {
            throw QueryError(.mechanismUnavailable, "Received authentication for mechanism \(mechanismName) which is not enabled")
        }
        let catalog = context.server.catalog
        let started: ScramConversation.Start
        do {
            started = try ScramConversation.start(
                mechanism: mechanism, payload: payload, credential: { catalog.credential(user: $0, mechanism: mechanism)?.0 },
                decoySecret: context.server.identity.decoySecret)
        } catch {
            throw fail(context, error)
        }
        let id = context.connection.session.begin(started.conversation)
        return [
            "conversationId": .int32(id), "done": .bool(false),
            "payload": .binary(BSONBinary(subtype: 0, data: started.serverFirst)),
        ]
    }

    private static func saslContinue(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        guard let id = context.command["conversationId"]?.int64Value, let id32 = Int32(exactly: id),
            let conversation = context.connection.session.take(conversation: id32)
        else {
            throw fail(context, QueryError(.authenticationFailed, "Authentication failed."))
        }
        let payload = try payloadBytes(context.command)
        let serverFinal: [UInt8]
        do {
            serverFinal = try conversation.finish(payload: payload)
        } catch {
            throw fail(context, error, user: conversation.user)
        }
        guard let (credential, did) = context.server.catalog.credential(user: conversation.user, mechanism: conversation.mechanism) else {
            throw fail(context, ScramConversation.failure, user: conversation.user)
        }
        let principal = Principal(
            did: did, userName: conversation.user, method: conversation.mechanism == .sha1 ? .scramSHA1 : .scramSHA256,
            isOperator: did == context.server.identity.ownerKey.did, credentialTag: credential.storedKey)
        context.connection.session.authenticated(as: principal, nowMilliseconds: context.nowMilliseconds)
        context.server.logger.debug("authenticated", metadata: ["stratos_connection": "\(context.connection.id)", "stratos_user": "\(conversation.user)", "stratos_mechanism": "\(conversation.mechanism.rawValue)"])
        // With skipEmptyExchange (every current driver) the exchange ends here; older drivers
        // send one more empty saslContinue, which the done reply also answers.
        return ["conversationId": .int32(id32), "done": .bool(true), "payload": .binary(BSONBinary(subtype: 0, data: serverFinal))]
    }

    /// PLAIN: "authzid NUL did NUL token"; the token must be signed by that DID for this node.
    private static func plain(_ context: CommandContext, payload: [UInt8]) throws(QueryError) -> BSONDocument {
        guard payload.count <= ServerLimits.saslPayloadBytesMax else { throw fail(context, ScramConversation.failure) }
        let fields = payload.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, let user = String(validating: fields[1], as: UTF8.self),
            let secret = String(validating: fields[2], as: UTF8.self),
            fields[0].isEmpty || Array(fields[0]) == Array(fields[1])
        else { throw fail(context, ScramConversation.failure) }
        let token: SessionToken
        do {
            token = try SessionToken(
                verifying: secret, claimedIssuer: user, audience: context.server.identity.nodeKey.did,
                nowMilliseconds: context.nowMilliseconds)
        } catch {
            let reason = error.code == .expired ? "session token has expired" : "Authentication failed."
            throw fail(context, QueryError(.authenticationFailed, reason), user: user.count <= 128 ? user : nil)
        }
        let principal = Principal(
            did: token.issuer, userName: token.issuer.string, method: .token, isOperator: token.issuer == context.server.identity.ownerKey.did,
            expiresAtMilliseconds: token.expiresAtMilliseconds)
        context.connection.session.authenticated(as: principal, nowMilliseconds: context.nowMilliseconds)
        return ["conversationId": .int32(1), "done": .bool(true), "payload": .binary(BSONBinary(subtype: 0, data: []))]
    }

    /// Counts and logs a failure (never the secret), closing the connection after too many.
    private static func fail(_ context: CommandContext, _ error: QueryError, user: String? = nil) -> QueryError {
        let mustClose = context.connection.session.recordFailure()
        context.server.logger.notice(
            "authentication failed",
            metadata: ["stratos_connection": "\(context.connection.id)", "stratos_remote": "\(context.connection.remoteAddress)", "stratos_user": "\(user ?? "-")", "stratos_close": "\(mustClose)"])
        // Malformed-message errors keep their own code; every credential failure reads the same.
        return error.code == .badValue || error.code == .mechanismUnavailable ? error : QueryError(.authenticationFailed, error.message)
    }

    private static func payloadBytes(_ command: BSONDocument) throws(QueryError) -> [UInt8] {
        switch command["payload"] {
        case .binary(let binary)?: return binary.data
        case .string(let text)?: return Array(text.utf8)
        default: throw QueryError(.badValue, "SASL commands require a binary payload")
        }
    }

    private static func connectionStatus(_ context: CommandContext) -> BSONDocument {
        var users: [BSONValue] = []
        if let principal = context.principal {
            users.append(.document(["user": .string(principal.userName), "db": .string(principal.method == .token ? "$external" : "admin"), "did": .string(principal.did.string)]))
        }
        return ["authInfo": .document(["authenticatedUsers": .array(users), "authenticatedUserRoles": .array([])])]
    }

    // MARK: - User management (the node operator only)

    private static func requireOperator(_ context: CommandContext) throws(QueryError) {
        guard let principal = context.principal else { throw QueryError(.unauthorized, "Command \(context.name) requires authentication") }
        guard principal.isOperator else {
            throw QueryError(.unauthorized, "not authorized to manage users: only the node's local owner may")
        }
    }

    private static func createUser(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        try requireOperator(context)
        guard case .string(let name) = context.firstValue, case .string(let password)? = context.command["pwd"] else {
            throw QueryError(.badValue, "createUser requires a user name and pwd")
        }
        // A user acts as an identity, which must be named: a default would silently create
        // another operator.
        guard case .string(let text)? = context.command["did"] else {
            throw QueryError(.badValue, "createUser requires 'did': the did:key the user acts as")
        }
        let did: DID
        do { did = try DID(parsing: text) } catch { throw QueryError(.badValue, error.message) }
        try context.server.catalog.addUser(name: name, did: did, password: password)
        return [:]
    }

    private static func updateUser(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        try requireOperator(context)
        guard case .string(let name) = context.firstValue, case .string(let password)? = context.command["pwd"] else {
            throw QueryError(.badValue, "updateUser requires a user name and pwd")
        }
        try context.server.catalog.setPassword(name: name, password: password)
        return [:]
    }

    private static func dropUser(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        try requireOperator(context)
        guard case .string(let name) = context.firstValue else { throw QueryError(.badValue, "dropUser requires a user name") }
        guard try context.server.catalog.removeUser(name: name) else {
            throw QueryError(.userNotFound, "User '\(name)@\(context.database)' not found")
        }
        return [:]
    }

    private static func usersInfo(_ context: CommandContext) throws(QueryError) -> BSONDocument {
        try requireOperator(context)
        var wanted: String?
        if case .string(let name) = context.firstValue { wanted = name }
        if case .document(let spec) = context.firstValue, case .string(let name)? = spec["user"] { wanted = name }
        let users = try context.server.catalog.users().filter { wanted == nil || $0.name == wanted }
        return [
            "users": .array(users.map { user in
                .document([
                    "_id": .string("admin.\(user.name)"), "user": .string(user.name), "db": .string("admin"),
                    "did": .string(user.did.string), "roles": .array([]),
                    "mechanisms": .array([.string(ScramMechanism.sha1.rawValue), .string(ScramMechanism.sha256.rawValue)]),
                ])
            })
        ]
    }
}
