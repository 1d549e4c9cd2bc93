import Ledger
import StratosCore

/// What a simulation run varies. Every random choice comes from the seed.
public struct SimulationOptions: Sendable {
    public var validatorCount = 4
    /// Validators that equivocate: they sign conflicting votes and send each to half the peers.
    public var byzantine: Set<Int> = []
    /// Virtual time during which the network misbehaves and nodes crash.
    public var faultMilliseconds: Int64 = 6_000
    /// Virtual time after healing in which every honest node must make progress.
    public var settleMilliseconds: Int64 = 5_000
    public var crashes = true
    public var partitions = true
    public var lossyNetwork = true
    /// Blocks every honest node must gain after healing (the liveness check).
    public var progressAfterHealBlocks: UInt64 = 2
    /// At healing, one honest validator stops for good (a `SIGSTOP` that never ends): the other
    /// three must still make progress, whatever locks formed with its votes before.
    public var silenceOneAtHeal = false
    public var timeouts = ConsensusTimeouts(
        proposeMilliseconds: 300, proposeDeltaMilliseconds: 100, prevoteMilliseconds: 100, prevoteDeltaMilliseconds: 50,
        precommitMilliseconds: 100, precommitDeltaMilliseconds: 50, commitMilliseconds: 200)

    public init() {}
}

/// The outcome of one run: the invariant violations (empty when all held) and what happened.
public struct SimulationReport: Sendable, CustomStringConvertible {
    public let seed: UInt64
    public var violations: [String] = []
    public var finalHeights: [UInt64] = []
    public var decidedHeights: UInt64 = 0
    public var crashes = 0
    public var equivocations = 0
    public var detectedEquivocators: Set<Int> = []
    public var tombstoned: Set<Int> = []
    public var messagesDelivered = 0
    public var transactionsCommitted = 0
    /// Where each node's consensus stood at the end: "height/round/step" (or "down").
    public var finalRounds: [String] = []

    public var description: String {
        "seed \(seed): heights \(finalHeights), decided \(decidedHeights), crashes \(crashes), equivocations \(equivocations), "
            + "tombstoned \(tombstoned.sorted()), delivered \(messagesDelivered), transactions \(transactionsCommitted)"
            + " rounds \(finalRounds)"
            + (violations.isEmpty ? "" : "\nVIOLATIONS:\n" + violations.joined(separator: "\n"))
    }
}

/// N validators of the real `LedgerMachine` in one process, over a simulated network and disk,
/// driven by one seed (TigerBeetle's VOPR and FoundationDB's simulation are the models): loss,
/// delay, duplication, reordering, partitions and healing, crashes (mid-step, with a torn
/// write-ahead-log tail) and restarts, Byzantine equivocation. It checks agreement, validity,
/// no honest double-sign, evidence for detected equivocation, and progress after healing.
public final class LedgerSimulation {
    public let seed: UInt64
    let options: SimulationOptions
    private var random: SeededGenerator
    private var queue = EventQueue<Event>()
    private var now: Int64 = 0
    private var nodes: [Node] = []
    private var faults = NetworkFaults.healthy
    private var faultsActive = true
    private var report: SimulationReport
    private let chainID = "stratos-sim"
    private let genesis: Genesis
    /// First honest decision per height.
    private var decided: [UInt64: Hash256] = [:]
    private var appHashes: [UInt64: Hash256] = [:]
    /// What honest validators signed: (validator, height, round, type) → block.
    private var honestVotes: [String: Hash256?] = [:]
    private let clients: [SigningKey]
    private var initialSupply: UInt64 = 0

    enum Event {
        case deliver(from: Int, to: Int, LedgerMessage)
        case timer(node: Int, incarnation: Int, LedgerTimer)
        case crash(Int)
        case restart(Int)
        case changeFaults
        case heal
        case submitTransfer
    }

    struct Node {
        let index: Int
        let key: SigningKey
        var machine: LedgerMachine?
        var incarnation = 0
        var wal: [(record: WALRecord, synced: Bool)] = []
        var store: [UInt64: CommittedBlock] = [:]
        var state: ChainState
        var lastCommit: Commit?
        var crashMidStep = false
        var isByzantine: Bool
        var isSilenced = false
    }

    public init(seed: UInt64, options: SimulationOptions = SimulationOptions()) {
        self.seed = seed
        self.options = options
        random = SeededGenerator(seed: seed)
        report = SimulationReport(seed: seed)
        var keys: [SigningKey] = []
        for index in 0..<options.validatorCount {
            var seedBytes = [UInt8](repeating: 0, count: 32)
            seedBytes[0] = UInt8(index)
            seedBytes[1] = 0x56
            keys.append(try! SigningKey(seed: seedBytes))
        }
        clients = (0..<2).map { index in
            var seedBytes = [UInt8](repeating: 0, count: 32)
            seedBytes[0] = UInt8(index)
            seedBytes[1] = 0xC1
            return try! SigningKey(seed: seedBytes)
        }
        var accounts = keys.map { Genesis.Account(key: $0.publicKey, balance: 1_000_000, stake: 10_000_000) }
        accounts += clients.map { Genesis.Account(key: $0.publicKey, balance: 1_000_000_000, stake: 0) }
        genesis = Genesis(chainID: chainID, timeMilliseconds: 1_000, accounts: accounts)
        let state = try! ChainState(genesis: genesis)
        initialSupply = state.totalSupply
        for (index, key) in keys.enumerated() {
            nodes.append(Node(index: index, key: key, state: state, isByzantine: options.byzantine.contains(index)))
        }
    }

    /// Runs to the end of the settle period and returns the report.
    public func run() -> SimulationReport {
        for index in nodes.indices { boot(index) }
        if options.lossyNetwork || options.partitions { queue.push(.changeFaults, at: 0) }
        if options.crashes {
            let crashCount = Int.random(in: 1...3, using: &random)
            for _ in 0..<crashCount { queue.push(.crash(honestIndex()), at: Int64.random(in: 200..<options.faultMilliseconds, using: &random)) }
        }
        for _ in 0..<10 { queue.push(.submitTransfer, at: Int64.random(in: 0..<options.faultMilliseconds + options.settleMilliseconds / 2, using: &random)) }
        queue.push(.heal, at: options.faultMilliseconds)
        var heightsAtHeal: UInt64 = 0
        let end = options.faultMilliseconds + options.settleMilliseconds
        while let (time, event) = queue.pop(), time <= end {
            now = time
            if case .heal = event { heightsAtHeal = nodes.filter { !$0.isByzantine }.map(\.state.height).max() ?? 0 }
            process(event)
            if report.violations.count > 20 { break }
        }
        finish(heightsAtHeal: heightsAtHeal)
        return report
    }

    // MARK: - Events

    private func process(_ event: Event) {
        switch event {
        case .deliver(let from, let to, let message):
            guard nodes[to].machine != nil else { return }
            report.messagesDelivered += 1
            step(to, .received(from: nodes[from].key.publicKey, message))
        case .timer(let index, let incarnation, let timer):
            guard nodes[index].machine != nil, nodes[index].incarnation == incarnation else { return }
            step(index, .timer(timer))
        case .crash(let index):
            guard nodes[index].machine != nil, faultsActive else { return }
            if Bool.random(using: &random) {
                nodes[index].crashMidStep = true
            } else {
                crash(index)
            }
        case .restart(let index):
            guard nodes[index].machine == nil, !nodes[index].isSilenced else { return }
            boot(index)
        case .changeFaults:
            guard faultsActive else { return }
            var next = NetworkFaults()
            if options.lossyNetwork {
                next.dropPercent = Int.random(in: 0...30, using: &random)
                next.duplicatePercent = Int.random(in: 0...10, using: &random)
                next.delayMilliseconds = 1...Int64.random(in: 5...120, using: &random)
            }
            if options.partitions, Int.random(in: 0..<3, using: &random) == 0 {
                var shuffled = Array(nodes.indices)
                shuffled.shuffle(using: &random)
                let cut = Int.random(in: 1..<nodes.count, using: &random)
                next.partition = [Set(shuffled[..<cut]), Set(shuffled[cut...])]
            }
            faults = next
            queue.push(.changeFaults, at: now + Int64.random(in: 300...2_000, using: &random))
        case .heal:
            faultsActive = false
            faults = .healthy
            if options.silenceOneAtHeal {
                let index = honestIndex()
                nodes[index].isSilenced = true
                nodes[index].machine = nil
            }
            for index in nodes.indices where !nodes[index].isSilenced && (nodes[index].machine == nil || nodes[index].crashMidStep) {
                nodes[index].crashMidStep = false
                if nodes[index].machine == nil { boot(index) }
            }
        case .submitTransfer:
            let client = Int.random(in: 0..<clients.count, using: &random)
            let target = Int.random(in: 0..<nodes.count, using: &random)
            guard nodes[target].machine != nil else { return }
            let state = nodes[target].state
            let nonce = state.accounts[clients[client].publicKey]?.nonce ?? 0
            let transfer = Transaction(
                chainID: chainID, key: clients[client], nonce: nonce, fee: 10,
                body: .transfer(to: clients[1 - client].publicKey, amount: UInt64.random(in: 1...1_000, using: &random)))
            step(target, .submit(transfer.encoded))
        }
    }

    private func boot(_ index: Int) {
        nodes[index].incarnation += 1
        let records = nodes[index].wal.map(\.record)
        nodes[index].machine = LedgerMachine(
            state: nodes[index].state, lastCommit: nodes[index].lastCommit, key: nodes[index].key, timeouts: options.timeouts, wal: records)
        step(index, .start)
    }

    private func crash(_ index: Int) {
        report.crashes += 1
        nodes[index].machine = nil
        nodes[index].crashMidStep = false
        // Unsynced records may be lost; the first lost one may be torn, so everything from it on is gone.
        let wal = nodes[index].wal
        let firstUnsynced = (wal.lastIndex { $0.synced } ?? -1) + 1
        let keep = firstUnsynced + Int.random(in: 0...(wal.count - firstUnsynced), using: &random)
        nodes[index].wal = Array(wal.prefix(keep))
        queue.push(.restart(index), at: now + Int64.random(in: 200...3_000, using: &random))
    }

    private func step(_ index: Int, _ event: LedgerEvent) {
        guard var machine = nodes[index].machine else { return }
        var actions = machine.handle(event, nowMilliseconds: now)
        nodes[index].machine = machine
        var crashAfter = false
        if nodes[index].crashMidStep {
            // The process dies part-way through performing this step's actions.
            actions = Array(actions.prefix(Int.random(in: 0...actions.count, using: &random)))
            crashAfter = true
        }
        for action in actions { perform(action, node: index) }
        if crashAfter { crash(index) }
    }

    // MARK: - Actions

    private func perform(_ action: LedgerAction, node index: Int) {
        switch action {
        case .appendWAL(let record):
            if record.needsSync {
                for position in nodes[index].wal.indices { nodes[index].wal[position].synced = true }
            }
            nodes[index].wal.append((record, record.needsSync))
        case .resetWAL(let height):
            nodes[index].wal.removeAll { Self.height(of: $0.record) < height }
        case .broadcast(let message):
            for peer in nodes.indices where peer != index { send(message, from: index, to: peer) }
        case .send(let key, let message):
            if let peer = nodes.firstIndex(where: { $0.key.publicKey == key }) { send(message, from: index, to: peer) }
        case .schedule(let timer, let milliseconds):
            queue.push(.timer(node: index, incarnation: nodes[index].incarnation, timer), at: now + milliseconds)
        case .store(let committed, let state):
            check(committed, state, node: index)
            nodes[index].store[committed.block.height] = committed
            nodes[index].state = state
            nodes[index].lastCommit = committed.commit
        case .serveSync(let key, let fromHeight):
            guard let peer = nodes.firstIndex(where: { $0.key.publicKey == key }) else { return }
            var blocks: [CommittedBlock] = []
            var height = fromHeight
            while blocks.count < LedgerLimits.syncBlocksPerReplyMax, let entry = nodes[index].store[height] {
                blocks.append(entry)
                height += 1
            }
            if !blocks.isEmpty { send(.syncResponse(blocks), from: index, to: peer) }
        }
    }

    static func height(of record: WALRecord) -> UInt64 {
        switch record {
        case .proposal(let proposal, _): proposal.height
        case .vote(let vote): vote.height
        case .timeout(let timeout): timeout.height
        case .signed(let signed): signed.height
        }
    }

    private func send(_ message: LedgerMessage, from: Int, to: Int) {
        var outgoing = message
        if case .vote(let vote) = message, vote.validator == nodes[from].key.publicKey {
            if nodes[from].isByzantine {
                // Equivocate: half the peers get a conflicting vote, signed all the same.
                if to % 2 == 1, Int.random(in: 0..<2, using: &random) == 0 {
                    // One conflicting value per vote, as a Byzantine validator sends two versions.
                    let other: Hash256? = vote.blockID == nil ? Hash256.sha256(vote.signature.bytes) : nil
                    outgoing = .vote(Vote(type: vote.type, height: vote.height, round: vote.round, blockID: other, chainID: chainID, key: nodes[from].key))
                    report.equivocations += 1
                }
            } else {
                recordHonestVote(vote)
            }
        }
        if case .evidence(let evidence) = message, !nodes[from].isByzantine,
            let accused = nodes.firstIndex(where: { $0.key.publicKey == evidence.validator })
        {
            report.detectedEquivocators.insert(accused)
            if !nodes[accused].isByzantine { violation("honest validator \(accused) was accused by node \(from)") }
        }
        var copies = 1
        if faultsActive {
            guard faults.connected(from, to), Int.random(in: 0..<100, using: &random) >= faults.dropPercent else { return }
            if Int.random(in: 0..<100, using: &random) < faults.duplicatePercent { copies = 2 }
        }
        for _ in 0..<copies {
            let delay = faultsActive ? Int64.random(in: faults.delayMilliseconds, using: &random) : Int64.random(in: 1...5, using: &random)
            queue.push(.deliver(from: from, to: to, outgoing), at: now + delay)
        }
    }

    // MARK: - Invariants

    private func recordHonestVote(_ vote: Vote) {
        let key = "\(vote.validator.shortHex)/\(vote.height)/\(vote.round)/\(vote.type)"
        if let previous = honestVotes[key] {
            if previous != vote.blockID { violation("honest double-sign: \(vote) after \(previous.map(\.hex) ?? "nil")") }
        } else {
            honestVotes[key] = vote.blockID
        }
    }

    private func check(_ committed: CommittedBlock, _ state: ChainState, node index: Int) {
        let before = nodes[index].state
        let height = committed.block.height
        guard height == before.height + 1 else { return violation("node \(index) stored height \(height) after \(before.height)") }
        if (try? committed.commit.verify(validators: before.validators, chainID: chainID)) == nil || committed.commit.blockID != committed.block.id {
            violation("node \(index) stored block \(height) without a valid commit")
        }
        guard !nodes[index].isByzantine else { return }
        if let existing = decided[height] {
            if existing != committed.block.id { violation("agreement broken at height \(height): node \(index) decided \(committed.block.id) not \(existing)") }
        } else {
            decided[height] = committed.block.id
            report.decidedHeights = max(report.decidedHeights, height)
            report.transactionsCommitted += committed.block.transactions.count
        }
        if let hash = appHashes[height], hash != state.appHash {
            violation("state diverged at height \(height) on node \(index)")
        } else {
            appHashes[height] = state.appHash
        }
        if state.totalSupply > initialSupply { violation("supply grew to \(state.totalSupply) at height \(height)") }
    }

    private func finish(heightsAtHeal: UInt64) {
        let honest = nodes.filter { !$0.isByzantine && !$0.isSilenced }
        report.finalHeights = nodes.map(\.state.height)
        report.finalRounds = nodes.map { node in
            guard let machine = node.machine else { return "down" }
            return "\(machine.height)/\(machine.core.round)/\(machine.core.step)\(machine.isCommitting ? "c" : "")"
        }
        for node in honest where node.state.height < heightsAtHeal + options.progressAfterHealBlocks {
            violation("no progress after healing: node \(node.index) is at \(node.state.height), heal was at \(heightsAtHeal)")
        }
        let minimum = honest.map(\.state.height).min() ?? 0
        for node in honest {
            for accused in report.detectedEquivocators where !node.state.tombstoned.contains(nodes[accused].key.publicKey) && minimum > 3 {
                // Evidence needs a few blocks to be gossiped and included; a late detection may
                // still be pending at the very end, so only demand it once it had time.
                if node.state.height >= heightsAtHeal + options.progressAfterHealBlocks + 3 {
                    violation("equivocation of validator \(accused) was detected but node \(node.index) never committed its evidence")
                }
            }
        }
        for (index, node) in nodes.enumerated() where honest.first.map({ $0.state.tombstoned.contains(node.key.publicKey) }) ?? false {
            report.tombstoned.insert(index)
            if !node.isByzantine { violation("honest validator \(index) was tombstoned") }
        }
    }

    private func violation(_ text: String) { report.violations.append("t=\(now)ms: \(text)") }

    private func honestIndex() -> Int {
        let honest = nodes.indices.filter { !nodes[$0].isByzantine }
        return honest[Int.random(in: 0..<honest.count, using: &random)]
    }
}
