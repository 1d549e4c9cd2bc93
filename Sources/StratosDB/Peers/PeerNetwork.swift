import Foundation
import Ledger
import Logging
import NIOCore
import NIOPosix
import StratosCore
import Synchronization

/// The validator network: TCP connections authenticated by node keys and encrypted (see
/// `PeerHello`), carrying framed, bounded ledger messages. It listens on the peer port, dials
/// every configured address and redials with backoff when a connection drops. Peers are known
/// by key, not address: a node that comes back from another address is the same peer.
final class PeerNetwork: LedgerTransport, @unchecked Sendable {
    // Safe: mutable state is in Mutexes; NIO objects are thread-safe.
    let nodeKey: SigningKey
    let chainID: String
    private let host: String
    private let port: Int
    private let addresses: [String]
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private weak var ledger: LedgerService?
    private let connections = Mutex<[PublicKey: PeerConnection]>([:])
    /// The node last found at each dialed address.
    private let dialed = Mutex<[String: PublicKey]>([:])
    /// Outbound channels that completed a handshake (for the redial backoff).
    let everEstablished = Mutex<Set<ObjectIdentifier>>([])
    private let stopping = Atomic<Bool>(false)
    private var serverChannel: (any Channel)?
    let statusPath: String

    init(nodeKey: SigningKey, chainID: String, host: String, port: Int, addresses: [String], ledger: LedgerService, statusPath: String, logger: Logger) {
        self.nodeKey = nodeKey
        self.chainID = chainID
        self.host = host
        self.port = port
        self.addresses = addresses
        self.ledger = ledger
        self.statusPath = statusPath
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Starts listening and dialing; returns once the listener is bound.
    func start() throws {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try self.configure(channel, dialer: false, address: nil) }
            }
        serverChannel = try bootstrap.bind(host: host, port: port).wait()
        logger.info("peer network listening", metadata: ["stratos_peer_address": "\(host):\(port)", "stratos_peers": "\(addresses.count)"])
        for address in addresses { dial(address, delayMilliseconds: 0, attempt: 0) }
        writeStatus()
    }

    func shutdown() {
        stopping.store(true, ordering: .relaxed)
        try? serverChannel?.close().wait()
        for connection in connections.withLock({ Array($0.values) }) { connection.channel.close(promise: nil) }
        try? group.syncShutdownGracefully()
    }

    private func configure(_ channel: any Channel, dialer: Bool, address: String?) throws {
        let handler = PeerConnectionHandler(network: self, dialer: dialer, address: address)
        // Peers send their status every gossip interval: a connection silent this long is dead
        // (a peer whose machine vanished without closing its socket), and makes room for a new one.
        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(PeerLimits.idleSecondsMax)))
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
        try channel.pipeline.syncOperations.addHandler(handler)
    }

    private func dial(_ address: String, delayMilliseconds: Int64, attempt: Int) {
        guard !stopping.load(ordering: .relaxed) else { return }
        let loop = group.next()
        loop.scheduleTask(in: .milliseconds(delayMilliseconds)) {
            guard !self.stopping.load(ordering: .relaxed) else { return }
            if let known = self.dialed.withLock({ $0[address] }) {
                // The address is this node itself (listed among its own peers): stop dialing it.
                if known == self.nodeKey.publicKey { return }
                // Already connected to the node at this address (it dialed us): check again later.
                if self.connections.withLock({ $0[known]?.channel.isActive ?? false }) {
                    self.dial(address, delayMilliseconds: 1_000, attempt: 0)
                    return
                }
            }
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                self.logger.error("bad peer address (host:port expected)", metadata: ["stratos_peer_address": "\(address)"])
                return
            }
            let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            ClientBootstrap(group: self.group)
                .connectTimeout(.seconds(3))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try self.configure(channel, dialer: true, address: address) }
                }
                .connect(host: host, port: port)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        channel.closeFuture.whenComplete { _ in
                            // A connection that never completed its handshake (another chain, a
                            // refusal) backs off like a failed connect; one that worked redials at once.
                            let worked = (try? channel.pipeline.syncOperations.handler(type: PeerConnectionHandler.self))?.wasEstablished
                                ?? self.everEstablished.withLock { $0.contains(ObjectIdentifier(channel)) }
                            self.everEstablished.withLock { _ = $0.remove(ObjectIdentifier(channel)) }
                            let next = worked ? PeerLimits.redialMillisecondsMin : min(PeerLimits.redialMillisecondsMax, PeerLimits.redialMillisecondsMin << min(attempt + 1, 8))
                            self.dial(address, delayMilliseconds: next, attempt: worked ? 0 : attempt + 1)
                        }
                    case .failure:
                        let next = min(PeerLimits.redialMillisecondsMax, PeerLimits.redialMillisecondsMin << min(attempt, 8))
                        self.dial(address, delayMilliseconds: next, attempt: attempt + 1)
                    }
                }
        }
    }

    // MARK: - Connections

    /// Called when a connection finished its handshake; false refuses it.
    func established(_ connection: PeerConnection) -> Bool {
        if let address = connection.dialedAddress { dialed.withLock { $0[address] = connection.peer } }
        guard connection.peer != nodeKey.publicKey else { return false }
        let (accepted, replaced) = connections.withLock { open -> (Bool, PeerConnection?) in
            let previous = open[connection.peer]
            if previous == nil && open.count >= PeerLimits.peersMax { return (false, nil) }
            // Two nodes dial each other, so a pair may have two connections: both ends keep the
            // one dialed by the smaller key (the same one at both ends, so neither keeps
            // redialing). A connection in that direction replaces the old one, which after a
            // restart or an address change is stale.
            if let previous, previous.channel.isActive, !isPreferred(connection), isPreferred(previous) { return (false, nil) }
            open[connection.peer] = connection
            return (true, previous)
        }
        // Closed outside the lock: closing runs the old connection's inactive handler at once.
        replaced?.channel.close(promise: nil)
        if accepted {
            logger.info("peer connected", metadata: ["stratos_peer": "\(DIDText.of(connection.peer))", "stratos_peer_address": "\(connection.address)"])
            writeStatus()
        }
        return accepted
    }

    /// Whether `connection` goes in the direction both ends keep: dialed by the smaller key.
    private func isPreferred(_ connection: PeerConnection) -> Bool {
        let ownIsSmaller = nodeKey.publicKey.bytes.lexicographicallyPrecedes(connection.peer.bytes)
        return connection.dialedAddress != nil ? ownIsSmaller : !ownIsSmaller
    }

    func closed(_ connection: PeerConnection) {
        let removed = connections.withLock { open -> Bool in
            guard open[connection.peer] === connection else { return false }
            open[connection.peer] = nil
            return true
        }
        if removed {
            logger.info("peer disconnected", metadata: ["stratos_peer": "\(DIDText.of(connection.peer))"])
            writeStatus()
        }
    }

    func deliver(_ message: LedgerMessage, from peer: PublicKey) { ledger?.receive(message, from: peer) }

    // MARK: - Job verification (frames whose first byte is 0x40 or above; ledger messages are below)

    /// Where job messages from peers go (`JobVerification`).
    let jobHandler = Mutex<(@Sendable ([UInt8], PublicKey) -> Void)?>(nil)

    func deliverJobMessage(_ bytes: [UInt8], from peer: PublicKey) { jobHandler.withLock { $0 }?(bytes, peer) }

    /// Sends a job message; false when `peer` is not connected.
    func sendJobMessage(_ bytes: [UInt8], to peer: PublicKey) -> Bool {
        guard let connection = connections.withLock({ $0[peer] }) else { return false }
        connection.send(bytes)
        return true
    }

    /// The keys of the connected peers.
    var connectedPeerKeys: [PublicKey] { connections.withLock { Array($0.keys) } }

    var listenPort: UInt32 { UInt32(port) }

    /// The connected peers, by DID, with their addresses.
    var peers: [(did: String, address: String)] {
        connections.withLock { open in open.values.map { (DIDText.of($0.peer), $0.address) } }.sorted { $0.did < $1.did }
    }

    /// `<data-dir>/ledger/peers.json`: who this node is connected to (read by `cluster status`).
    private func writeStatus() {
        let list = peers.map { ["did": $0.did, "address": $0.address] }
        guard let data = try? JSONSerialization.data(withJSONObject: ["peers": list], options: [.sortedKeys]) else { return }
        try? data.write(to: URL(fileURLWithPath: statusPath), options: .atomic)
    }

    // MARK: - LedgerTransport

    func broadcast(_ message: LedgerMessage) {
        let encoded = message.encoded
        for connection in connections.withLock({ Array($0.values) }) { connection.send(encoded) }
    }

    func send(_ message: LedgerMessage, to peer: PublicKey) {
        connections.withLock { $0[peer] }?.send(message.encoded)
    }
}

/// The printable DID of a node key (the `SpaceOwnership` DID type, kept out of the hot path).
enum DIDText {
    static func of(_ key: PublicKey) -> String { "did:key:z" + Base58.encode([0xed, 0x01] + key.bytes) }
}

/// An established, authenticated connection to one peer.
final class PeerConnection: @unchecked Sendable {
    // Safe: `transmitCounter` is only touched on the channel's event loop.
    let peer: PublicKey
    let address: String
    /// The address this node dialed, nil for an inbound connection.
    let dialedAddress: String?
    let channel: any Channel
    private let transmitKey: [UInt8]
    private var transmitCounter: UInt64 = 1

    init(peer: PublicKey, address: String, dialedAddress: String?, channel: any Channel, transmitKey: [UInt8]) {
        self.peer = peer
        self.address = address
        self.dialedAddress = dialedAddress
        self.channel = channel
        self.transmitKey = transmitKey
    }

    /// Seals and sends one message; dropped when the socket is backed up (gossip re-sends).
    func send(_ message: [UInt8]) {
        channel.eventLoop.execute {
            guard self.channel.isActive, self.channel.isWritable else { return }
            let sealed = AEAD.seal(message, key: self.transmitKey, counter: self.transmitCounter)
            self.transmitCounter += 1
            self.channel.writeAndFlush(PeerFrameDecoder.frame(sealed, allocator: self.channel.allocator), promise: nil)
        }
    }
}

/// Splits the byte stream into length-prefixed frames, refusing oversized ones.
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= PeerLimits.frameBytesMax else { throw LedgerError(.limitExceeded, "peer frame of \(length) bytes") }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let bytes = buffer.readBytes(length: Int(length)) ?? []
        context.fireChannelRead(NIOAny(bytes))
        return .continue
    }

    static func frame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 4)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }
}

/// One peer connection: the handshake, then sealed ledger messages in both directions.
final class PeerConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    // Safe: used only on its channel's event loop.
    typealias InboundIn = [UInt8]

    private enum State {
        case awaitingHello
        case awaitingAuthentication(hello: PeerHello, keys: (receive: [UInt8], transmit: [UInt8]), transcript: Hash256)
        case established(PeerConnection, receiveKey: [UInt8])
        case closed
    }

    private unowned let network: PeerNetwork
    private let dialer: Bool
    private let dialedAddress: String?
    private let exchange = KeyExchange()
    private var ownHello: PeerHello?
    private var state = State.awaitingHello
    private var receiveCounter: UInt64 = 1
    private var remoteHost = "unknown"
    /// Whether the handshake completed (for the dialer's backoff).
    private(set) var wasEstablished = false

    init(network: PeerNetwork, dialer: Bool, address: String?) {
        self.network = network
        self.dialer = dialer
        self.dialedAddress = address
    }

    func channelActive(context: ChannelHandlerContext) {
        remoteHost = context.channel.remoteAddress?.ipAddress ?? "unknown"
        let hello = PeerHello(chainID: network.chainID, nodeKey: network.nodeKey.publicKey, exchangeKey: exchange.publicKey, listenPort: network.listenPort)
        ownHello = hello
        context.writeAndFlush(NIOAny(PeerFrameDecoder.frame(hello.encoded, allocator: context.channel.allocator)), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(PeerLimits.handshakeSecondsMax)) { [weak self] in
            guard let self, case .established = self.state else {
                channel.close(promise: nil)
                return
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        do {
            try handle(frame, context: context)
        } catch {
            state = .closed
            context.close(promise: nil)
        }
    }

    private func handle(_ frame: [UInt8], context: ChannelHandlerContext) throws {
        switch state {
        case .awaitingHello:
            guard frame.count <= PeerLimits.helloBytesMax, let ownHello else { throw LedgerError(.invalidEncoding, "bad hello") }
            let hello = try PeerHello(decoding: frame)
            guard hello.chainID == network.chainID else { throw LedgerError(.invalidEncoding, "peer is on another chain") }
            let keys = try exchange.sessionKeys(peer: hello.exchangeKey, isClient: dialer)
            let transcript = Hash256.sha256(dialer ? ownHello.encoded + hello.encoded : hello.encoded + ownHello.encoded)
            let signature = network.nodeKey.sign(PeerHello.authenticationBytes(transcript: transcript, dialer: dialer))
            let sealed = AEAD.seal(signature.bytes, key: keys.transmit, counter: 0)
            context.writeAndFlush(NIOAny(PeerFrameDecoder.frame(sealed, allocator: context.channel.allocator)), promise: nil)
            state = .awaitingAuthentication(hello: hello, keys: keys, transcript: transcript)
        case .awaitingAuthentication(let hello, let keys, let transcript):
            let signature = try Signature(bytes: try AEAD.open(frame, key: keys.receive, counter: 0))
            guard hello.nodeKey.isValidSignature(signature, for: PeerHello.authenticationBytes(transcript: transcript, dialer: !dialer)) else {
                throw LedgerError(.invalidSignature, "peer authentication failed")
            }
            let address = dialedAddress ?? "\(remoteHost):\(hello.listenPort)"
            let connection = PeerConnection(
                peer: hello.nodeKey, address: address, dialedAddress: dialedAddress, channel: context.channel, transmitKey: keys.transmit)
            guard network.established(connection) else { throw LedgerError(.limitExceeded, "peer refused") }
            state = .established(connection, receiveKey: keys.receive)
            wasEstablished = true
            if dialer { network.everEstablished.withLock { _ = $0.insert(ObjectIdentifier(context.channel)) } }
        case .established(let connection, let receiveKey):
            let plain = try AEAD.open(frame, key: receiveKey, counter: receiveCounter)
            receiveCounter += 1
            if let tag = plain.first, tag >= JobVerification.requestTag {
                network.deliverJobMessage(plain, from: connection.peer)
            } else {
                network.deliver(try LedgerMessage(decoding: plain), from: connection.peer)
            }
        case .closed:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .established(let connection, _) = state { network.closed(connection) }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
