import Foundation
import Ledger
import StratosTestSupport
import Testing

/// Seeded deterministic simulations of four validators (see `LedgerSimulation`). A failing
/// seed is printed; `STRATOSDB_SIM_SEED=<seed> swift test --filter replay` replays it, and
/// `make sim SEEDS=N` runs more seeds.
@Suite struct SimulationTests {
    static let seedsPerBatch: UInt64 = 10
    static var batches: [UInt64] {
        let total = UInt64(ProcessInfo.processInfo.environment["STRATOSDB_SIM_SEEDS"] ?? "") ?? 200
        return Array(0..<max(1, (total + seedsPerBatch - 1) / seedsPerBatch))
    }

    @Test("crash faults, loss, duplication, partitions: agreement, validity, progress after healing", arguments: batches)
    func crashFaults(batch: UInt64) {
        for seed in batch * Self.seedsPerBatch..<(batch + 1) * Self.seedsPerBatch {
            let report = LedgerSimulation(seed: seed).run()
            #expect(report.violations.isEmpty, "\(report)")
            #expect(report.decidedHeights > 3, "\(report)")
        }
    }

    @Test("one validator silenced for good at healing: the other three still decide, whatever they locked with its votes", arguments: batches)
    func silencedValidator(batch: UInt64) {
        for seed in (5_000 + batch * Self.seedsPerBatch)..<(5_000 + (batch + 1) * Self.seedsPerBatch) {
            var options = SimulationOptions()
            options.silenceOneAtHeal = true
            let report = LedgerSimulation(seed: seed, options: options).run()
            #expect(report.violations.isEmpty, "\(report)")
        }
    }

    @Test("one Byzantine validator that equivocates is caught and tombstoned, and the others go on", arguments: Array(0..<UInt64(5)))
    func byzantineEquivocation(batch: UInt64) {
        for seed in (1_000 + batch * 10)..<(1_000 + batch * 10 + 10) {
            var options = SimulationOptions()
            options.byzantine = [Int(seed % 4)]
            let report = LedgerSimulation(seed: seed, options: options).run()
            #expect(report.violations.isEmpty, "\(report)")
            if report.equivocations > 0 {
                #expect(report.tombstoned == options.byzantine || report.detectedEquivocators.isEmpty, "\(report)")
            }
        }
    }

    @Test("replay one seed from STRATOSDB_SIM_SEED")
    func replay() {
        guard let text = ProcessInfo.processInfo.environment["STRATOSDB_SIM_SEED"], let seed = UInt64(text) else { return }
        var options = SimulationOptions()
        if let byzantine = ProcessInfo.processInfo.environment["STRATOSDB_SIM_BYZANTINE"], let index = Int(byzantine) { options.byzantine = [index] }
        let first = LedgerSimulation(seed: seed, options: options).run()
        let second = LedgerSimulation(seed: seed, options: options).run()
        print(first)
        #expect(first.description == second.description, "a seed must replay exactly")
        #expect(first.violations.isEmpty)
    }
}
