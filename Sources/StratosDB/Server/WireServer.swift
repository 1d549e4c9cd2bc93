import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import QueryEngine
import ServiceLifecycle
import StratosCore
import Synchronization

/// The MongoDB wire-protocol server of one node: accepts connections, decodes requests, runs
/// commands and writes replies. One connection's requests run in order; connections run
/// concurrently; a broken or hostile connection is closed without affecting the others.
public final class WireServer: Service, Sendable {
    private let state: ServerState
    private let group: MultiThreadedEventLoopGroup
    private let onReady: @Sendable (Int) -> Void
    /// The TLS context every connection starts with, when TLS is on.
    private let tlsContext: NIOSSLContext?

    /// Creates a server; `onReady` receives the bound port once listening.
    /// The node's identities (for the ready line's connection string).
    public var identity: NodeIdentity { state.identity }

    public init(configuration: ServerConfiguration, logger: Logger, onReady: @escaping @Sendable (Int) -> Void = { _ in }) throws {
        state = try ServerState(configuration: configuration, clock: SystemWallClock(), logger: logger)
        group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        self.onReady = onReady
        tlsContext = try configuration.tls.map(Self.makeTLSContext)
    }

    /// Loads the certificate chain and key once, at start, so a bad file stops the node with
    /// the reason instead of failing every handshake.
    static func makeTLSContext(_ settings: TLSSettings) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificatePath)
            key = try NIOSSLPrivateKey(file: settings.keyPath, format: .pem)
        } catch {
            throw QueryError(.badValue, "cannot load the TLS certificate or key (\(settings.certificatePath), \(settings.keyPath)): \(error)")
        }
        guard !chain.isEmpty else { throw QueryError(.badValue, "\(settings.certificatePath) holds no certificate") }
        var configuration: TLSConfiguration
        if let clientCA = settings.clientCAPath {
            configuration = .makeServerConfigurationWithMTLS(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .file(clientCA))
            // Clients present certificates without host names: check the chain, not the name.
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration = .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        }
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw QueryError(.badValue, "the TLS configuration is not usable: \(error)")
        }
    }

    public func run() async throws {
        let configuration = state.configuration
        let tlsContext = self.tlsContext
        let serverChannel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    let session = ConnectionSession()
                    let partial = PartialMessage()
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(ServerLimits.stalledMessageSeconds)))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(MessageFrameDecoder(session: configuration.authenticationDisabled ? nil : session, partial: partial)))
                    try channel.pipeline.syncOperations.addHandler(ConnectionSessionHandler(session: session, partial: partial))
                    let inbox = ConnectionInbox(eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(inbox)
                    return AcceptedConnection(channel: channel, inbox: inbox, session: session)
                }
            }
        let port = serverChannel.channel.localAddress?.port ?? configuration.port
        state.logger.info("listening", metadata: ["stratos_address": "\(configuration.host):\(port)"])
        IndexUsage.start(host: "\(ProcessInfo.processInfo.hostName):\(port)", nowMilliseconds: state.clock.nowMilliseconds())
        try state.peerNetwork?.start()
        state.ledger?.start()
        onReady(port)

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { tasks in
                tasks.addTask { await self.reapCursors() }
                tasks.addTask { await self.state.queueUnanchoredCommits() }
                tasks.addTask { await JobScheduler(server: self.state).run() }
                tasks.addTask { await TTLMonitor(server: self.state).run() }
                try await serverChannel.executeThenClose { inbound in
                    for try await connection in inbound {
                        let open = state.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
                        let address = connection.channel.remoteAddress?.ipAddress ?? "unknown"
                        let fromAddress = state.connectionsPerAddress.withLock { counts -> Int in
                            counts[address, default: 0] += 1
                            return counts[address]!
                        }
                        let release = { @Sendable in
                            self.state.openConnections.wrappingSubtract(1, ordering: .relaxed)
                            self.state.connectionsPerAddress.withLock { counts in
                                counts[address, default: 1] -= 1
                                if counts[address] == 0 { counts[address] = nil }
                            }
                        }
                        guard open <= configuration.maxConnections, fromAddress <= configuration.maxConnectionsPerAddress else {
                            release()
                            // Closed at once, unread: a flood of sockets costs a file descriptor
                            // for a moment, never a session.
                            state.logger.warning("connection refused: too many connections", metadata: ["stratos_total": "\(open)", "stratos_from_address": "\(fromAddress)"])
                            connection.inbox.close()
                            continue
                        }
                        let executor = EventLoopTaskExecutor(connection.channel.eventLoop)
                        tasks.addTask(executorPreference: executor) {
                            await self.serve(connection)
                            release()
                        }
                    }
                }
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            // Running operations stop at their next checkpoint (InterruptedAtShutdown), so the
            // node exits promptly whatever they were doing; acknowledged writes are committed.
            self.state.operations.cancelAll()
            // Writes waiting for `w: "anchored"` are answered now (writeConcernError), not
            // after their wtimeout: the node is stopping, no block will come.
            self.state.ledger?.releaseWaiters()
            serverChannel.channel.close(promise: nil)
        }
        state.peerNetwork?.shutdown()
        state.ledger?.shutdown()
        state.storage.shutdown()
        try? await state.heavyReadPool.shutdownGracefully()
        try await group.shutdownGracefully()
        state.logger.info("stopped")
    }

    private func reapCursors() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(30))
            state.cursors.reap(nowSeconds: state.clock.nowMilliseconds() / 1000)
        }
    }

    private func serve(_ connection: AcceptedConnection) async {
        let id = state.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let remote = connection.channel.remoteAddress.map { "\($0.ipAddress ?? "unknown"):\($0.port ?? 0)" } ?? "unknown"
        let info = ConnectionInfo(id: id, remoteAddress: remote, session: connection.session)
        // A client that hangs up stops what it started (MongoDB does the same).
        let operations = state.operations
        connection.channel.closeFuture.whenComplete { _ in operations.cancel(connection: id) }
        let allocator = connection.channel.allocator
        let inbox = connection.inbox
        defer { inbox.close() }
        var responseId: Int32 = 1
        while let frame = await inbox.next() {
            responseId &+= 1
            state.networkRequests.wrappingAdd(1, ordering: .relaxed)
            state.networkBytesIn.wrappingAdd(Int64(frame.readableBytes), ordering: .relaxed)
            let answer = await handle(frame, connection: info, responseId: responseId, allocator: allocator)
            if info.session.closesWithoutReply { return }
            if let reply = answer {
                state.networkBytesOut.wrappingAdd(Int64(reply.readableBytes), ordering: .relaxed)
                // A reply counts against the node-wide memory cap until it is written;
                // past the cap the client gets ExceededMemoryLimit (146) instead.
                if reply.readableBytes >= ServerLimits.replyBytesCounted {
                    let hold = try? OperationContext.holdMemory(reply.readableBytes)
                    if hold == nil, let header = WireCodec.requestHeader(frame) {
                        let refusal = CommandReply.document(
                            CommandRouter.errorReply(QueryError(.exceededMemoryLimitNodeWide, "the node's memory for replies and queries is in use; retry later")))
                        guard await inbox.write(WireCodec.encodeMessageReply(refusal, responseTo: header.requestId, requestId: responseId, allocator: allocator)) else { break }
                        continue
                    }
                    let written = await inbox.write(reply)
                    withExtendedLifetime(hold) {}
                    guard written else { break }
                } else {
                    guard await inbox.write(reply) else { break }
                }
            }
            // Too many failed authentications: the reply went out, then the socket closes.
            if info.session.mustClose { return }
        }
        if let failure = await inbox.failureName() {
            // Framing errors and resets end only this connection.
            state.logger.debug("connection closed", metadata: ["stratos_connection": "\(id)", "stratos_reason": "\(failure)"])
        }
    }

    private func handle(_ frame: ByteBuffer, connection: ConnectionInfo, responseId: Int32, allocator: ByteBufferAllocator) async -> ByteBuffer? {
        switch WireCodec.decode(frame) {
        case .failure(let failure):
            let reply = CommandReply.document(CommandRouter.errorReply(failure.error))
            return failure.isLegacyQuery
                ? WireCodec.encodeLegacyReply(reply, responseTo: failure.requestId, requestId: responseId, allocator: allocator)
                : WireCodec.encodeMessageReply(reply, responseTo: failure.requestId, requestId: responseId, allocator: allocator)
        case .success(let request):
            switch request.kind {
            case .message(let command, let moreToCome, let checksum):
                guard case .string(let database)? = command["$db"] else {
                    let reply = CommandReply.document(CommandRouter.errorReply(QueryError(.location(40571), "OP_MSG requests require a $db argument")))
                    return moreToCome ? nil : WireCodec.encodeMessageReply(reply, responseTo: request.requestId, requestId: responseId, allocator: allocator)
                }
                guard !database.isEmpty else {
                    let reply = CommandReply.document(CommandRouter.errorReply(QueryError(.invalidNamespace, "Invalid database name: ''")))
                    return moreToCome ? nil : WireCodec.encodeMessageReply(reply, responseTo: request.requestId, requestId: responseId, allocator: allocator)
                }
                let reply = await CommandRouter.handle(command, database: database, connection: connection, server: state)
                if moreToCome { return nil }
                return WireCodec.encodeMessageReply(reply, responseTo: request.requestId, requestId: responseId, allocator: allocator, checksum: checksum)
            case .query(let database, let command):
                let reply = await CommandRouter.handle(command, database: database, connection: connection, server: state)
                return WireCodec.encodeLegacyReply(reply, responseTo: request.requestId, requestId: responseId, allocator: allocator)
            }
        }
    }
}

/// A connection the server accepted: its channel, the handler that feeds its request loop, and
/// its login state.
struct AcceptedConnection: Sendable {
    let channel: any Channel
    let inbox: ConnectionInbox
    let session: ConnectionSession
}

/// A task executor that runs jobs on one NIO event loop.
///
/// Each connection's task prefers its channel's event loop (SE-0417 task executor preference), so
/// reading a request, running the command and writing the reply all happen on the thread that
/// read the bytes, including inside NIO's async sequences. Only database work leaves it: one hop
/// to the database's thread and one back, instead of a thread switch at every `await`.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    // Safe: the only stored property is an event loop, which is thread-safe.
    private let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        eventLoop.execute { unownedJob.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
