import Foundation
import QueryEngine
import SpaceOwnership
import StratosCore
import StratosDB

#if canImport(Glibc)
import Glibc
#endif

/// A minimal MongoDB-wire client for the CLI's commands that go through a running node (chain
/// transactions, archives over the wire): one blocking socket,
/// OP_MSG, and SASL PLAIN with a session token the CLI signs itself (so no password is needed:
/// the signing key is the authority, as it is for the transaction).
final class NodeClient {
    private let descriptor: Int32
    private var requestID: Int32 = 1

    /// Connects to the node in `address` and logs in as `key`.
    convenience init(address: NodeAddress, key: SigningKey, timeoutSeconds: Int = 30) throws {
        guard address.tls != true else {
            throw CLIError("the node speaks TLS; these commands talk to a node's plaintext loopback port (start it without TLS or on loopback)")
        }
        try self.init(host: address.host, port: address.port, key: key, audience: try DID(parsing: address.did), timeoutSeconds: timeoutSeconds)
    }

    /// Connects to `host:port` and logs in as `key` (a throwaway identity when nil), with a
    /// session token for the node's DID (`audience`, asked from the node when nil).
    init(host: String, port: Int, key: SigningKey? = nil, audience: DID? = nil, timeoutSeconds: Int = 30) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let bareHost = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard getaddrinfo(bareHost, String(port), &hints, &result) == 0, let info = result else {
            throw CLIError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        descriptor = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard descriptor >= 0, connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw CLIError("cannot connect to the node at \(host):\(port): is it running?")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let key = key ?? SigningKey.generate()
        let audience = try audience ?? {
            let info = try command(["buildInfo": .int32(1), "$db": .string("admin")])
            guard case .string(let text)? = info["stratosdbNode"], let did = try? DID(parsing: text) else {
                throw CLIError("\(host):\(port) is not a StratosDB node")
            }
            return did
        }()
        let token = SessionToken(key: key, audience: audience, issuedAtMilliseconds: nowMilliseconds(), lifetimeMilliseconds: 300_000)
        let payload = [UInt8(0)] + Array(key.did.string.utf8) + [0] + Array(token.text.utf8)
        let reply = try command([
            "saslStart": .int32(1), "mechanism": .string("PLAIN"), "payload": .binary(BSONBinary(subtype: 0, data: payload)),
            "$db": .string("$external"),
        ])
        guard reply["done"] == .bool(true) else { throw CLIError("the node refused the login") }
    }

    deinit { close(descriptor) }

    /// Sends one command and returns its reply, throwing the node's error message on `ok: 0`.
    func command(_ document: BSONDocument) throws -> BSONDocument {
        let body = BSONEncoder.encode(document)
        var message: [UInt8] = []
        func append(_ value: Int32) { withUnsafeBytes(of: value.littleEndian) { message.append(contentsOf: $0) } }
        append(Int32(16 + 4 + 1 + body.count))
        requestID += 1
        append(requestID)
        append(0)
        append(2013)
        append(0)
        message.append(0)
        message.append(contentsOf: body)
        var sent = 0
        while sent < message.count {
            let count = message[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw CLIError("the connection to the node broke") }
            sent += count
        }
        let header = try read(16)
        let length = Int(Int32(littleEndian: header.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard (21...48_000_000).contains(length) else { throw CLIError("the node sent a malformed reply") }
        let rest = try read(length - 16)
        guard rest[4] == 0 else { throw CLIError("the node sent an unexpected reply section") }
        let reply: BSONDocument
        do { reply = try BSONDecoder.decode(Array(rest[5...])) } catch { throw CLIError("the node sent malformed BSON") }
        if reply["ok"] == .double(0) || reply["ok"] == .int32(0) {
            if case .string(let message)? = reply["errmsg"] { throw CLIError(message) }
            throw CLIError("the node refused the command")
        }
        return reply
    }

    private func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = bytes[offset...].withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard received > 0 else { throw CLIError("the node closed the connection") }
            offset += received
        }
        return bytes
    }
}

/// Options shared by the commands that submit a transaction.
