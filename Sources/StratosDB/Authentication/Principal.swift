import QueryEngine
import SpaceOwnership
import Synchronization

/// Who an authenticated connection acts as.
struct Principal: Sendable, Hashable {
    /// How the principal proved itself.
    enum Method: String, Sendable {
        case scramSHA1 = "SCRAM-SHA-1"
        case scramSHA256 = "SCRAM-SHA-256"
        case token = "PLAIN"
    }

    /// The identity every authorization decision is about.
    let did: DID
    /// The SCRAM user name, or the DID for token logins.
    let userName: String
    let method: Method
    /// Whether this is the node's local owner identity, which may manage the node's users.
    let isOperator: Bool
    /// When a token login stops working (nil for SCRAM users, which are re-checked instead).
    var expiresAtMilliseconds: Int64? = nil
    /// The StoredKey a SCRAM user logged in with: a changed password ends the session.
    var credentialTag: [UInt8]? = nil
}

/// The authentication state of one connection.
final class ConnectionSession: Sendable {
    private struct State {
        var principal: Principal?
        /// When a SCRAM principal's user record was last found unchanged.
        var validatedAtMilliseconds: Int64 = 0
        var conversation: (id: Int32, scram: ScramConversation)?
        var nextConversationId: Int32 = 1
        var failures = 0
        var mustClose = false
        var closeWithoutReply = false
        /// The application name the client gave in its handshake (`client.application.name`).
        var appName: String?
    }

    private let state = Mutex(State())

    var principal: Principal? { state.withLock { $0.principal } }

    /// How often a SCRAM login is re-checked against the user catalog, so a removed user, a
    /// changed password or a rebound identity ends live sessions within this time.
    static let userRevalidationMilliseconds: Int64 = 1_000

    /// The principal, if its login still holds at `now`: a token login ends at its expiry; a
    /// SCRAM login ends when `stillValid` says the user changed (checked at most once a second).
    func currentPrincipal(nowMilliseconds now: Int64, stillValid: (Principal) -> Bool) -> Principal? {
        state.withLock { state in
            guard let principal = state.principal else { return nil }
            if let expiry = principal.expiresAtMilliseconds {
                if now >= expiry { state.principal = nil }
                return state.principal
            }
            if now - state.validatedAtMilliseconds >= Self.userRevalidationMilliseconds {
                guard stillValid(principal) else {
                    state.principal = nil
                    return nil
                }
                state.validatedAtMilliseconds = now
            }
            return principal
        }
    }

    func authenticated(as principal: Principal, nowMilliseconds: Int64) {
        state.withLock {
            $0.principal = principal
            $0.validatedAtMilliseconds = nowMilliseconds
            $0.conversation = nil
        }
    }

    func logout() { state.withLock { $0.principal = nil } }

    /// Stores a conversation awaiting its client-final message and returns its id.
    func begin(_ scram: ScramConversation) -> Int32 {
        state.withLock {
            let id = $0.nextConversationId
            $0.nextConversationId &+= 1
            $0.conversation = (id, scram)
            return id
        }
    }

    /// Takes the conversation with `id`, if it is the pending one.
    func take(conversation id: Int32) -> ScramConversation? {
        state.withLock { state in
            guard let pending = state.conversation, pending.id == id else { return nil }
            state.conversation = nil
            return pending.scram
        }
    }

    /// Counts a failed attempt; true once the connection has failed too often and must close.
    func recordFailure() -> Bool {
        state.withLock {
            $0.failures += 1
            $0.mustClose = $0.failures >= ServerLimits.authenticationFailuresPerConnectionMax
            return $0.mustClose
        }
    }

    /// Whether the connection must close after its current reply.
    var mustClose: Bool { state.withLock { $0.mustClose } }

    /// Closes the connection without answering the current command (a test fail point).
    func closeWithoutReplying() { state.withLock { $0.closeWithoutReply = true } }

    /// Whether the current command's reply must be dropped and the connection closed.
    var closesWithoutReply: Bool { state.withLock { $0.closeWithoutReply } }

    /// The application name from the client's handshake.
    var appName: String? {
        get { state.withLock { $0.appName } }
        set { state.withLock { $0.appName = newValue } }
    }
}
