import StratosCore

/// One validator: its consensus key, its voting power (bonded stake), and its proposer priority.
public struct Validator: Hashable, Sendable {
    public let publicKey: PublicKey
    public var power: Int64
    /// Weighted round-robin state (CometBFT `spec/consensus/proposer-selection.md`); not hashed.
    public var proposerPriority: Int64

    public init(publicKey: PublicKey, power: Int64, proposerPriority: Int64 = 0) {
        self.publicKey = publicKey
        self.power = power
        self.proposerPriority = proposerPriority
    }
}

/// The validators of one height, ordered by power (descending) then key, with stake-weighted
/// quorums in integer math and weighted round-robin proposer selection.
public struct ValidatorSet: Hashable, Sendable {
    public private(set) var validators: [Validator]
    public let totalPower: Int64
    /// The validator chosen by the last round-robin step (CometBFT's `Proposer`): it proposes
    /// round 0 of the height this set belongs to. Not part of the hash.
    private var chosen: PublicKey?

    /// Bounds total power so that `3 · power` never overflows.
    public static let totalPowerMax = Int64.max / 8

    /// Creates a set; powers must be positive, keys distinct.
    public init(_ members: [Validator]) throws(LedgerError) {
        guard !members.isEmpty, members.count <= LedgerLimits.validatorsCountMax else {
            throw LedgerError(.invalidBlock, "a validator set has 1...\(LedgerLimits.validatorsCountMax) validators")
        }
        var total: Int64 = 0
        var seen = Set<PublicKey>()
        for member in members {
            guard member.power > 0, seen.insert(member.publicKey).inserted else {
                throw LedgerError(.invalidBlock, "validator powers must be positive and keys distinct")
            }
            total += member.power
            guard total <= ValidatorSet.totalPowerMax else { throw LedgerError(.limitExceeded, "total voting power is too large") }
        }
        validators = members.sorted(by: ValidatorSet.order)
        totalPower = total
    }

    /// A genesis set: priorities start at zero and advance once, as CometBFT's `NewValidatorSet` does.
    public static func genesis(_ members: [(PublicKey, Int64)]) throws(LedgerError) -> ValidatorSet {
        var set = try ValidatorSet(members.map { Validator(publicKey: $0.0, power: $0.1) })
        set.incrementProposerPriority(times: 1)
        return set
    }

    static func order(_ a: Validator, _ b: Validator) -> Bool {
        a.power != b.power ? a.power > b.power : a.publicKey.bytes.lexicographicallyPrecedes(b.publicKey.bytes)
    }

    public var count: Int { validators.count }

    public func index(of key: PublicKey) -> Int? { validators.firstIndex { $0.publicKey == key } }

    public func power(of key: PublicKey) -> Int64 { index(of: key).map { validators[$0].power } ?? 0 }

    public func contains(_ key: PublicKey) -> Bool { index(of: key) != nil }

    /// More than two thirds of the total power (`3 · power > 2 · total`).
    public func isQuorum(_ power: Int64) -> Bool { 3 * power > 2 * totalPower }

    /// More than one third of the total power: at least one honest validator among them.
    public func isOneThird(_ power: Int64) -> Bool { 3 * power > totalPower }

    /// The root of an RFC 6962 tree over each validator's key and power, in set order
    /// (priorities change every height and are not part of the hash, as in CometBFT).
    public var hash: Hash256 {
        var tree = MerkleTree()
        for validator in validators {
            var encoder = CanonicalEncoder()
            encoder.write(key: validator.publicKey)
            encoder.write(validator.power)
            tree.append(encoder.bytes)
        }
        return (try? tree.root()) ?? MerkleTree.emptyRoot
    }

    // MARK: - Proposer selection (CometBFT `proposer-selection.md`)

    /// The proposer of round 0: the one the last round-robin step chose.
    public var proposer: PublicKey { chosen ?? highestPriority }

    /// The validator with the highest priority (ties to the smaller key).
    var highestPriority: PublicKey {
        var best = validators[0]
        for validator in validators.dropFirst() where validator.proposerPriority > best.proposerPriority
            || (validator.proposerPriority == best.proposerPriority
                && validator.publicKey.bytes.lexicographicallyPrecedes(best.publicKey.bytes))
        {
            best = validator
        }
        return best.publicKey
    }

    /// The proposer of round `round` of the height this set belongs to.
    public func proposer(round: Int32) -> PublicKey {
        guard round > 0 else { return proposer }
        var copy = self
        copy.incrementProposerPriority(times: Int(round))
        return copy.proposer
    }

    /// Advances the round robin `times` steps: rescale so priorities span at most 2 · total,
    /// centre them on zero, then each step adds every validator's power and takes the total
    /// from the one that proposes.
    public mutating func incrementProposerPriority(times: Int) {
        precondition(times > 0)
        rescalePriorities(windowMax: 2 * totalPower)
        shiftByAveragePriority()
        for _ in 0..<times {
            for index in validators.indices { validators[index].proposerPriority += validators[index].power }
            let highest = highestPriority
            let index = validators.firstIndex { $0.publicKey == highest }!
            validators[index].proposerPriority -= totalPower
            chosen = highest
        }
    }

    private mutating func rescalePriorities(windowMax: Int64) {
        guard let low = validators.map(\.proposerPriority).min(), let high = validators.map(\.proposerPriority).max() else { return }
        let spread = high - low
        guard spread > windowMax else { return }
        let ratio = (spread + windowMax - 1) / windowMax
        for index in validators.indices { validators[index].proposerPriority /= ratio }
    }

    private mutating func shiftByAveragePriority() {
        let sum = validators.reduce(0) { $0 + $1.proposerPriority }
        let average = sum / Int64(validators.count)
        for index in validators.indices { validators[index].proposerPriority -= average }
    }

    /// The set after applying power changes (power 0 removes). A new validator starts at
    /// priority −1.125 · total so it cannot propose at once by joining (CometBFT).
    public func applying(_ changes: [PublicKey: Int64]) throws(LedgerError) -> ValidatorSet {
        var members = validators
        for (key, power) in changes.sorted(by: { $0.key.bytes.lexicographicallyPrecedes($1.key.bytes) }) {
            if let index = members.firstIndex(where: { $0.publicKey == key }) {
                if power == 0 { members.remove(at: index) } else { members[index].power = power }
            } else if power > 0 {
                members.append(Validator(publicKey: key, power: power, proposerPriority: 0))
            }
        }
        let newTotal = members.reduce(0) { $0 + $1.power }
        for index in members.indices where !validators.contains(where: { $0.publicKey == members[index].publicKey }) {
            members[index].proposerPriority = -(newTotal + newTotal / 8)
        }
        return try ValidatorSet(members)
    }

    public func encode(into encoder: inout CanonicalEncoder) {
        encoder.write(key: proposer)
        encoder.write(UInt32(validators.count))
        for validator in validators {
            encoder.write(key: validator.publicKey)
            encoder.write(validator.power)
            encoder.write(validator.proposerPriority)
        }
    }

    public init(from decoder: inout CanonicalDecoder) throws(LedgerError) {
        var proposer: PublicKey?
        let members = try ledgerDecode("validator set") { () throws(StratosError) -> [Validator] in
            proposer = try decoder.readKey()
            let count = try decoder.readCount(max: LedgerLimits.validatorsCountMax)
            var members: [Validator] = []
            for _ in 0..<count {
                members.append(Validator(publicKey: try decoder.readKey(), power: try decoder.readInt64(), proposerPriority: try decoder.readInt64()))
            }
            return members
        }
        try self.init(members)
        guard let proposer, contains(proposer) else { throw LedgerError(.invalidEncoding, "the set's proposer is not in it") }
        chosen = proposer
    }
}
