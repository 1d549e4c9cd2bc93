import Foundation
import Ledger
import Logging
import NIOCore
import NIOPosix
import QueryEngine
import SpaceOwnership
import StratosCore
import Synchronization

/// How a node runs its ledger.
public struct LedgerSettings: Sendable {
    /// The pause between blocks (the commit timeout of Tendermint).
    public var blockIntervalMilliseconds: Int64 = 1_000
    /// Consensus round timeouts; the defaults suit validators on one machine or a LAN.
    public var timeouts = ConsensusTimeouts.loopback
    /// The port validators connect to (on the node's bind address); nil runs without peers.
    public var peerPort: Int?
    /// Other validators to dial, as host:port.
    public var peers: [String] = []

    public init() {}

    var effectiveTimeouts: ConsensusTimeouts {
        var timeouts = self.timeouts
        timeouts.commitMilliseconds = blockIntervalMilliseconds
        return timeouts
    }
}

/// What `ledgerStatus` and `stratosdb ledger status` report.
struct LedgerStatusSnapshot: Sendable {
    var chainID: String
    var height: UInt64
    var lastBlockID: Hash256?
    var lastBlockTimeMilliseconds: Int64
    var validators: ValidatorSet
    var anchorBatches: UInt64
    var anchoredCommits: UInt64
}

/// Sends ledger messages to peers (the peer network); the single node has none.
protocol LedgerTransport: Sendable {
    func broadcast(_ message: LedgerMessage)
    func send(_ message: LedgerMessage, to peer: PublicKey)
}

/// The node's ledger: drives the pure `LedgerMachine` on one event loop, performs its actions
/// (write-ahead log, LMDB block store, timers, peers), and anchors space commits: before each
/// height it batches the head commit of every space changed since the last anchor into one
/// RFC 6962 tree and submits one anchor transaction; when the block holding it is stored, each
/// commit's audit path is recorded and writers waiting with `w: "anchored"` are released.
final class LedgerService: @unchecked Sendable {
    // Safe: `machine`, `inFlight` and `halted` are touched only on `loop`; shared state is in Mutexes.
    let store: BlockStore
    let chainID: String
    let genesisPath: String
    private let wal: WriteAheadLog
    private let nodeKey: SigningKey
    private let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    private let logger: Logger
    private let clock: any WallClock
    private var machine: LedgerMachine
    private var halted = false
    private let transport = Mutex<(any LedgerTransport)?>(nil)

    /// The anchor transaction waiting for a block, with its batch.
    private var inFlight: (hash: Hash256, batch: AnchorBatch, submittedAtHeight: UInt64)? {
        didSet { anchorWaiting.store(inFlight != nil, ordering: .releasing) }
    }
    /// Mirrors `inFlight != nil` for writers' threads: while an anchor waits for its block, a
    /// new commit needs no hop to the ledger's loop (the block that takes it submits the next).
    private let anchorWaiting = Atomic<Bool>(false)

    private struct Anchoring {
        /// The newest commit of each space not yet in an anchor batch.
        var pending: [String: (seq: UInt64, hash: [UInt8])] = [:]
        /// The newest commit of each space seen since start (what `w: "anchored"` waits for).
        var latest: [String: UInt64] = [:]
        var anchored: [String: UInt64] = [:]
        var waiters: [String: [(id: UInt64, seq: UInt64, continuation: CheckedContinuation<Bool, Never>)]] = [:]
        var nextWaiter: UInt64 = 0
    }
    private let anchoring = Mutex(Anchoring())
    private let snapshot: Mutex<LedgerStatusSnapshot>
    let blockLatencies = Mutex<[Int64]>([])

    static func directory(_ dataDirectory: String) -> String { (dataDirectory as NSString).appendingPathComponent("ledger") }

    init(dataDirectory: String, nodeKey: SigningKey, settings: LedgerSettings, logger: Logger, clock: any WallClock) throws {
        let directory = Self.directory(dataDirectory)
        let chainDirectory = (directory as NSString).appendingPathComponent("chain")
        try FileManager.default.createDirectory(atPath: chainDirectory, withIntermediateDirectories: true)
        genesisPath = (directory as NSString).appendingPathComponent("genesis.json")
        if !FileManager.default.fileExists(atPath: genesisPath) {
            try GenesisFile.singleNode(nodeDID: nodeKey.did, nowMilliseconds: clock.nowMilliseconds()).write(path: genesisPath)
        }
        let genesis = try GenesisFile.read(path: genesisPath).genesis
        store = try BlockStore(directory: chainDirectory)
        wal = try WriteAheadLog(path: (directory as NSString).appendingPathComponent("consensus.wal"))
        let state = try store.latestState() ?? ChainState(genesis: genesis)
        guard state.chainID == genesis.chainID else {
            throw QueryError(.badValue, "the stored chain is \(state.chainID) but the genesis file names \(genesis.chainID)")
        }
        chainID = state.chainID
        let lastCommit = state.height > 0 ? try store.commit(at: state.height) : nil
        let records = try wal.readAll()
        machine = LedgerMachine(state: state, lastCommit: lastCommit, key: nodeKey, timeouts: settings.effectiveTimeouts, wal: records)
        self.nodeKey = nodeKey
        self.logger = logger
        self.clock = clock
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        snapshot = Mutex(Self.snapshot(of: state))
        logger.info(
            "ledger open",
            metadata: ["stratos_chain": "\(state.chainID)", "stratos_height": "\(state.height)", "stratos_validator": "\(state.validators.contains(nodeKey.publicKey))"])
    }

    private static func snapshot(of state: ChainState) -> LedgerStatusSnapshot {
        LedgerStatusSnapshot(
            chainID: state.chainID, height: state.height, lastBlockID: state.lastBlockID, lastBlockTimeMilliseconds: state.lastBlockTimeMilliseconds,
            validators: state.validators, anchorBatches: state.anchorBatchCount, anchoredCommits: state.anchoredCommitCount)
    }

    var status: LedgerStatusSnapshot { snapshot.withLock { $0 } }

    /// The chain state as of the last stored block (for account queries).
    func state() async -> ChainState {
        (try? await loop.submit { self.machine.state }.get()) ?? machine.state
    }

    func setTransport(_ value: any LedgerTransport) { transport.withLock { $0 = value } }

    func start() {
        loop.execute {
            self.handle(.start)
            self.submitAnchorBatchIfDue()
        }
    }

    func shutdown() {
        stopped.withLock { $0 = true }
        try? group.syncShutdownGracefully()
        anchoring.withLock { state in
            for (_, list) in state.waiters { for waiter in list { waiter.continuation.resume(returning: false) } }
            state.waiters = [:]
        }
    }

    /// Delivers a message from a peer.
    func receive(_ message: LedgerMessage, from peer: PublicKey) {
        loop.execute { self.handle(.received(from: peer, message)) }
    }

    /// Submits a signed transaction (from the CLI or a client) after checking it would apply;
    /// throws the chain's reason when it would not.
    func submit(_ bytes: [UInt8]) async throws {
        let refusal: LedgerError? = try await loop.submit { () -> LedgerError? in
            var scratch = self.machine.application
            do throws(LedgerError) { try scratch.check(bytes) } catch { return error }
            self.handle(.submit(bytes))
            return nil
        }.get()
        if let refusal { throw refusal }
    }

    // MARK: - Anchoring

    /// Notes a space commit (called on the space's executor thread after its transaction commits).
    func noteCommit(space: String, seq: UInt64, hash: [UInt8]) {
        anchoring.withLock { state in
            state.pending[space] = (seq, hash)
            state.latest[space] = max(state.latest[space] ?? 0, seq)
        }
        // One hop to the ledger's loop per burst of commits, and none while an anchor waits.
        if !anchorWaiting.load(ordering: .acquiring), !submitScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            stopped.withLock { stopped in
                guard !stopped else { return }
                loop.execute {
                    self.submitScheduled.store(false, ordering: .releasing)
                    if !self.halted { self.submitAnchorBatchIfDue() }
                }
            }
        }
    }

    private let submitScheduled = Atomic<Bool>(false)
    /// Set by `shutdown`: spaces that close after the ledger (sealing their last pending writes)
    /// must not schedule work on its stopped loop; their heads are anchored after the next start.
    /// (A lock, not an atomic: `noteCommit` checks it and schedules under it, so `shutdown` cannot
    /// stop the loop between the two.)
    private let stopped = Mutex<Bool>(false)

    /// The nonce an account's next transaction should carry (after those in the mempool).
    func nextNonce(for key: PublicKey) async -> UInt64 {
        (try? await loop.submit { self.machine.application.nextNonce(for: key) }.get()) ?? 0
    }

    /// The newest commit of `space` this node has made since it started.
    func latestSeq(space: String) -> UInt64? { anchoring.withLock { $0.latest[space] } }

    /// Waits until commit `seq` of `space` (or a later one, which chains to it) is in a decided
    /// block; false when `timeoutMilliseconds` pass first or the node stops.
    func waitAnchored(space: String, seq: UInt64, timeoutMilliseconds: Int64) async -> Bool {
        await withCheckedContinuation { continuation in
            let id: UInt64? = anchoring.withLock { state in
                if let anchored = state.anchored[space], anchored >= seq {
                    continuation.resume(returning: true)
                    return nil
                }
                state.nextWaiter += 1
                state.waiters[space, default: []].append((state.nextWaiter, seq, continuation))
                return state.nextWaiter
            }
            guard let id else { return }
            loop.scheduleTask(in: .milliseconds(timeoutMilliseconds)) {
                self.anchoring.withLock { state in
                    guard let index = state.waiters[space]?.firstIndex(where: { $0.id == id }) else { return }
                    state.waiters[space]?.remove(at: index).continuation.resume(returning: false)
                }
            }
        }
    }

    /// The anchor proof of commit `seq` of `space` — only if the anchored leaf is this very
    /// commit (a space dropped and recreated starts its seqs again; its old anchors stay on
    /// chain but prove nothing about the new commits).
    func anchorProof(space: String, seq: UInt64, commitHash: [UInt8]) throws -> AnchorProof? {
        guard let proof = try store.anchorProof(space: space, seq: seq), proof.leaf.commitHash == commitHash else { return nil }
        return proof
    }

    /// The newest commit of `space` the chain anchored: its seq and commit hash.
    func anchoredHead(space: String) -> (seq: UInt64, commitHash: [UInt8])? {
        guard let seq = try? store.anchoredSeq(space: space), let location = try? store.anchor(space: space, seq: seq) else { return nil }
        return (seq, location.leaf.commitHash)
    }

    /// Forgets a dropped space's pending and anchored heads (its next commit starts at seq 1).
    func forget(space: String) {
        anchoring.withLock { state in
            state.pending[space] = nil
            state.latest[space] = nil
            state.anchored[space] = nil
        }
    }

    /// Answers every `w: "anchored"` waiter now (false): at shutdown, nobody waits for blocks.
    func releaseWaiters() {
        let waiting = anchoring.withLock { state -> [CheckedContinuation<Bool, Never>] in
            let all = state.waiters.values.flatMap { $0.map(\.continuation) }
            state.waiters = [:]
            return all
        }
        for continuation in waiting { continuation.resume(returning: false) }
    }

    /// One anchor transaction for every space head not yet anchored, submitted as soon as none
    /// of this node's anchors is waiting for a block: when a commit arrives, and when a block
    /// takes the waiting one. So a node adds at most one anchor transaction per block, and a
    /// write waits at most for the next block plus one.
    private func submitAnchorBatchIfDue() {
        let state = machine.state
        if let current = inFlight {
            // Not included within ten blocks (dropped, or refused): its heads go back in line.
            guard state.height >= current.submittedAtHeight + 10 else { return }
            anchoring.withLock { anchoring in
                for leaf in current.batch.leaves where (anchoring.pending[leaf.space]?.seq ?? 0) < leaf.seq {
                    anchoring.pending[leaf.space] = (leaf.seq, leaf.commitHash)
                }
            }
            inFlight = nil
        }
        guard let account = state.accounts[nodeKey.publicKey], account.balance >= state.parameters.minimumFee else { return }
        let leaves: [AnchorLeaf] = anchoring.withLock { anchoring in
            let chosen = anchoring.pending.sorted { $0.key < $1.key }.prefix(LedgerLimits.anchorsPerBatchMax)
            for (space, _) in chosen { anchoring.pending[space] = nil }
            return chosen.map { AnchorLeaf(space: $0.key, seq: $0.value.seq, commitHash: $0.value.hash) }
        }
        guard !leaves.isEmpty else { return }
        let batch = AnchorBatch(leaves)
        let transaction = Transaction(
            chainID: chainID, key: nodeKey, nonce: max(account.nonce, machine.application.nextNonce(for: nodeKey.publicKey)),
            fee: state.parameters.minimumFee,
            body: .anchor(root: batch.root, size: UInt64(batch.size)))
        inFlight = (transaction.hash, batch, state.height)
        handle(.submit(transaction.encoded))
    }

    /// The anchors a stored block carries for this node's in-flight batch.
    private func anchors(in block: Block) -> [AnchorLocation] {
        guard let current = inFlight else { return [] }
        guard let index = block.transactions.firstIndex(where: { Hash256.sha256($0) == current.hash }) else { return [] }
        let paths = current.batch.allPaths
        return current.batch.leaves.enumerated().map { leafIndex, leaf in
            AnchorLocation(
                height: block.height, transactionIndex: UInt64(index), leafIndex: UInt64(leafIndex), batchSize: UInt64(current.batch.size),
                path: paths[leafIndex], leaf: leaf)
        }
    }

    private func released(_ anchors: [AnchorLocation]) {
        guard !anchors.isEmpty else { return }
        inFlight = nil
        var ready: [CheckedContinuation<Bool, Never>] = []
        anchoring.withLock { state in
            for anchor in anchors {
                let space = anchor.leaf.space
                state.anchored[space] = max(state.anchored[space] ?? 0, anchor.leaf.seq)
                guard var list = state.waiters[space] else { continue }
                list.removeAll { waiter in
                    guard waiter.seq <= anchor.leaf.seq else { return false }
                    ready.append(waiter.continuation)
                    return true
                }
                state.waiters[space] = list.isEmpty ? nil : list
            }
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    // MARK: - Driving the machine

    private func handle(_ event: LedgerEvent) {
        guard !halted else { return }
        let actions = machine.handle(event, nowMilliseconds: clock.nowMilliseconds())
        perform(actions)
    }

    private func perform(_ actions: [LedgerAction]) {
        for action in actions {
            do {
                try perform(action)
            } catch {
                // A node that cannot persist its votes or blocks must stop voting: signing
                // without the log is how validators double-sign after a restart.
                halted = true
                logger.critical("ledger halted: \(error)")
                return
            }
        }
    }

    private func perform(_ action: LedgerAction) throws {
        switch action {
        case .appendWAL(let record):
            try wal.append(record, sync: record.needsSync)
        case .resetWAL:
            try wal.reset()
        case .broadcast(let message):
            transport.withLock { $0 }?.broadcast(message)
        case .send(let peer, let message):
            transport.withLock { $0 }?.send(message, to: peer)
        case .schedule(let timer, let milliseconds):
            loop.scheduleTask(in: .milliseconds(milliseconds)) { self.handle(.timer(timer)) }
        case .store(let committed, let state):
            let anchors = anchors(in: committed.block)
            guard let decidedBy = state.lastValidators else { throw LedgerError(.storage, "a stored state has no last validator set") }
            try store.save(committed, state: state, decidedBy: decidedBy, anchors: anchors)
            snapshot.withLock { $0 = Self.snapshot(of: state) }
            released(anchors)
            submitAnchorBatchIfDue()
            let latency = clock.nowMilliseconds() - committed.block.header.timeMilliseconds
            blockLatencies.withLock { list in
                list.append(latency)
                if list.count > 1_000 { list.removeFirst(list.count - 1_000) }
            }
            logger.debug("block decided", metadata: ["stratos_height": "\(committed.block.height)", "stratos_transactions": "\(committed.block.transactions.count)"])
        case .serveSync(let peer, let fromHeight):
            // As many blocks as fit a frame comfortably (at least one, which always fits).
            var blocks: [CommittedBlock] = []
            var bytes = 0
            for entry in try store.committedBlocks(from: fromHeight, limit: LedgerLimits.syncBlocksPerReplyMax) {
                bytes += entry.block.encoded.count + 32 + 96 * entry.commit.signatures.count
                if !blocks.isEmpty && bytes > LedgerLimits.blockBytesMax / 2 { break }
                blocks.append(entry)
            }
            if !blocks.isEmpty { transport.withLock { $0 }?.send(.syncResponse(blocks), to: peer) }
        }
    }
}
