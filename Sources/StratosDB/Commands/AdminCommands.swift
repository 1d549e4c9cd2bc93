import Foundation
import QueryEngine
import SpaceOwnership
import Synchronization

/// Handshake, diagnostics and session commands.
enum AdminCommands {
    static func register(into table: inout CommandTable) {
        table["hello"] = { context in try hello(context, legacy: false) }
        table["isMaster"] = { context in try hello(context, legacy: true) }
        table["ping"] = { _ in [:] }
        table["buildInfo"] = { context in
            // The node's DID is public (it signs commits and blocks); tools need it as the
            // audience of the session tokens they log in with.
            var reply = buildInfo()
            reply["stratosdbNode"] = .string(context.server.identity.nodeKey.did.string)
            return reply
        }
        table["serverStatus"] = { context in serverStatus(context) }
        table["hostInfo"] = { _ in hostInfo() }
        table["getParameter"] = { context in getParameter(context) }
        table["getCmdLineOpts"] = { context in
            ["argv": .array(CommandLine.arguments.map { .string($0) }), "parsed": .document(["net": .document(["bindIp": .string(context.server.configuration.host), "port": .int32(Int32(context.server.configuration.port))])])]
        }
        table["whatsmyuri"] = { context in ["you": .string(context.connection.remoteAddress)] }
        table["listDatabases"] = { context in try await listDatabases(context) }
        table["endSessions"] = { context in
            if case .array(let ended) = context.firstValue {
                context.server.sessions.end(ids: ended.compactMap { value in
                    guard case .document(let lsid) = value, case .binary(let id)? = lsid["id"] else { return nil }
                    return id.data
                })
            }
            return [:]
        }
        // Sessions are not kept server-side; killing them stops the operations they run: the
        // caller's own, or every one for the node's local owner (as killAllSessions with an
        // empty list does for an administrator in MongoDB).
        table["killSessions"] = { context in killOwnOperations(context) }
        table["killAllSessions"] = { context in killOwnOperations(context) }
        table["refreshSessions"] = { _ in [:] }
        table["startSession"] = { context in
            ["id": .document(["id": .binary(BSONBinary(subtype: 4, data: (0..<16).map { _ in UInt8.random(in: 0...255) }))]), "timeoutMinutes": .int32(30)]
        }
        table["commitTransaction"] = { _ in throw QueryError(.illegalOperation, "multi-document transactions are not supported by StratosDB yet") }
        table["abortTransaction"] = { _ in throw QueryError(.illegalOperation, "multi-document transactions are not supported by StratosDB yet") }
        table["replSetGetStatus"] = { _ in throw QueryError(.noReplicationEnabled, "not running with --replSet") }
        table["profile"] = { context in
            // Profiling is not implemented: reading the level works (it is always off); turning it
            // on is refused rather than silently ignored.
            guard let level = context.firstValue.int64Value, level == -1 || level == 0 else {
                throw QueryError(.illegalOperation, "the profiler is not supported by StratosDB")
            }
            return ["was": .int32(0), "slowms": .int32(100), "sampleRate": .double(1.0)]
        }
        table["getnonce"] = { _ in ["nonce": .string(String(format: "%016llx", UInt64.random(in: 0...UInt64.max)))] }
        table["getLastError"] = { _ in ["n": .int32(0), "err": .null] }
        table["getLog"] = { _ in ["totalLinesWritten": .int32(0), "log": .array([])] }
        table["getFreeMonitoringStatus"] = { _ in ["state": .string("disabled")] }
        table["features"] = { _ in [:] }
        table["listCommands"] = { context in
            var commands = BSONDocument()
            for name in CommandRouter.handlers.keys.sorted() where context.server.configuration.testCommandsEnabled || !TestCommands.names.contains(name) {
                commands[name] = .document(["help": .string("")])
            }
            return ["commands": .document(commands)]
        }
    }

    private static func killOwnOperations(_ context: CommandContext) -> BSONDocument {
        for entry in context.server.operations.running where OperationCommands.visible(entry, to: context) {
            entry.operation.cancel(.killed)
        }
        return [:]
    }

    private static func hello(_ context: CommandContext, legacy: Bool) throws(QueryError) -> BSONDocument {
        var reply = BSONDocument()
        if legacy {
            reply["ismaster"] = .bool(true)
            if context.command["helloOk"]?.isTruthy == true { reply["helloOk"] = .bool(true) }
        } else {
            reply["isWritablePrimary"] = .bool(true)
        }
        // No setName and no topologyVersion: drivers then see a Standalone and use neither
        // retryable-write transaction numbers nor streaming monitoring (wire-protocol.md §2).
        reply["maxBsonObjectSize"] = .int32(Int32(ServerLimits.documentSizeBytesMax))
        reply["maxMessageSizeBytes"] = .int32(Int32(ServerLimits.messageSizeBytesMax))
        reply["maxWriteBatchSize"] = .int32(Int32(ServerLimits.writeBatchSizeMax))
        reply["localTime"] = .datetime(context.nowMilliseconds)
        reply["logicalSessionTimeoutMinutes"] = .int32(30)
        reply["connectionId"] = .int32(Int32(truncatingIfNeeded: context.connection.id))
        reply["minWireVersion"] = .int32(0)
        reply["maxWireVersion"] = .int32(21)
        reply["readOnly"] = .bool(false)
        if case .string? = context.command["saslSupportedMechs"] {
            reply["saslSupportedMechs"] = .array(AuthenticationCommands.supportedMechanisms)
        }
        // Speculative authentication (the driver authentication specification): the first SCRAM
        // step rides on the handshake, saving a round trip per connection.
        if case .document(let speculative)? = context.command["speculativeAuthenticate"], speculative["saslStart"] != nil,
            let first = try? AuthenticationCommands.saslStart(context, command: speculative)
        {
            reply["speculativeAuthenticate"] = .document(first)
        }
        return reply
    }

    private static func buildInfo() -> BSONDocument {
        [
            "version": .string(StratosVersion.mongoCompatible),
            "gitVersion": .string("stratosdb-\(StratosVersion.current)"),
            "versionArray": .array([.int32(7), .int32(0), .int32(0), .int32(0)]),
            "stratosdbVersion": .string(StratosVersion.current),
            "bits": .int32(64),
            "debug": .bool(false),
            "maxBsonObjectSize": .int32(Int32(ServerLimits.documentSizeBytesMax)),
            "storageEngines": .array([.string("stratos-sqlite")]),
            "javascriptEngine": .string("none"),
            "modules": .array([]),
            "openssl": .document(["running": .string("disabled")]),
        ]
    }

    private static func serverStatus(_ context: CommandContext) -> BSONDocument {
        let server = context.server
        let now = context.nowMilliseconds
        let counters = server.commandCounters.withLock { $0 }
        var commands = BSONDocument()
        for (name, total) in counters.sorted(by: { $0.key < $1.key }) {
            commands[name] = .document(["total": .int64(total), "failed": .int64(0)])
        }
        let open = server.openConnections.load(ordering: .relaxed)
        let operations = server.operationCounters.withLock { $0 }
        let crud: Set<String> = ["insert", "update", "delete", "find", "getMore"]
        let opcounters: BSONDocument = [
            "insert": .int64(operations["insert"] ?? 0), "query": .int64(counters["find"] ?? 0),
            "update": .int64(operations["update"] ?? 0), "delete": .int64(operations["delete"] ?? 0),
            "getmore": .int64(counters["getMore"] ?? 0),
            "command": .int64(counters.filter { !crud.contains($0.key) }.values.reduce(0, +)),
        ]
        return [
            "host": .string(ProcessInfo.processInfo.hostName),
            "version": .string(StratosVersion.mongoCompatible),
            "process": .string("stratosdb"),
            "pid": .int64(Int64(ProcessInfo.processInfo.processIdentifier)),
            "uptime": .double(Double(now - server.startedMilliseconds) / 1000),
            "uptimeMillis": .int64(now - server.startedMilliseconds),
            "uptimeEstimate": .int64((now - server.startedMilliseconds) / 1000),
            "localTime": .datetime(now),
            "connections": .document([
                "current": .int32(Int32(open)), "available": .int32(Int32(ServerLimits.connectionsMax - open)),
                "totalCreated": .int64(server.connectionCounter.load(ordering: .relaxed)),
            ]),
            "opcounters": .document(opcounters),
            // What the Prometheus exporter reports as traffic (the wire messages, headers included;
            // TLS framing is not counted separately).
            "network": .document([
                "bytesIn": .int64(server.networkBytesIn.load(ordering: .relaxed)),
                "bytesOut": .int64(server.networkBytesOut.load(ordering: .relaxed)),
                "physicalBytesIn": .int64(server.networkBytesIn.load(ordering: .relaxed)),
                "physicalBytesOut": .int64(server.networkBytesOut.load(ordering: .relaxed)),
                "numSlowDNSOperations": .int64(0), "numSlowSSLOperations": .int64(0),
                "numRequests": .int64(server.networkRequests.load(ordering: .relaxed)),
            ]),
            "metrics": .document([
                "commands": .document(commands),
                "cursor": .document(["open": .document(["total": .int64(Int64(server.cursors.openCount))])]),
                "ttl": .document([
                    "deletedDocuments": .int64(server.ttlDeletedDocuments.load(ordering: .relaxed)),
                    "passes": .int64(server.ttlPasses.load(ordering: .relaxed)),
                ]),
            ]),
            "mem": .document(["bits": .int32(64), "resident": .int32(Int32(ProcessMemory.residentMegabytes()))]),
            "storageEngine": .document(["name": .string("stratos-sqlite")]),
            "procedures": .document({
                let usage = server.procedureTotals
                return ["calls": .int64(usage.calls), "failures": .int64(usage.failures), "fuelUsed": .int64(usage.fuel)]
            }()),
        ]
    }

    private static func hostInfo() -> BSONDocument {
        let info = ProcessInfo.processInfo
        return [
            "system": .document([
                "currentTime": .datetime(Int64(Date().timeIntervalSince1970 * 1000)),
                "hostname": .string(info.hostName), "cpuArch": .string("x86_64"),
                "numCores": .int32(Int32(info.processorCount)),
                "memSizeMB": .int64(Int64(info.physicalMemory / 1_048_576)),
            ]),
            "os": .document(["type": .string("Linux"), "name": .string(info.operatingSystemVersionString)]),
            "extra": .document([:]),
        ]
    }

    private static func getParameter(_ context: CommandContext) -> BSONDocument {
        let known: BSONDocument = [
            "featureCompatibilityVersion": .document(["version": .string("7.0")]),
            "maxBsonObjectSize": .int32(Int32(ServerLimits.documentSizeBytesMax)),
            "cursorTimeoutMillis": .int64(ServerLimits.cursorIdleTimeoutSeconds * 1000),
            "authenticationMechanisms": .array([.string("SCRAM-SHA-1"), .string("SCRAM-SHA-256"), .string("PLAIN")]),
            // Read by test harnesses and tools (pymongo's own suite reads enableTestCommands):
            // test commands only with `serve --enable-test-commands`; no API-version requirement
            // and no table-scan ban.
            "enableTestCommands": .bool(context.server.configuration.testCommandsEnabled),
            "requireApiVersion": .bool(false),
            "notablescan": .bool(false),
            "logLevel": .int32(0),
            "quiet": .bool(false),
            "internalQueryMaxBlockingSortMemoryUsageBytes": .int64(Int64(QueryEngineLimits.blockingSortBytesMax)),
        ]
        if case .string("*") = context.firstValue { return known }
        var reply = BSONDocument()
        for element in context.command.elements.dropFirst() where known[element.key] != nil {
            reply[element.key] = known[element.key]
        }
        return reply
    }

    private static func listDatabases(_ context: CommandContext) async throws(QueryError) -> BSONDocument {
        let nameOnly = context.command["nameOnly"]?.isTruthy ?? false
        let filter = try context.document("filter").map { document throws(QueryError) in try Filter(document) }
        var databases: [BSONValue] = []
        var total: Int64 = 0
        // Only the spaces the principal owns (shown by name) or holds a grant on (shown by id).
        let catalog = context.server.catalog
        let granted = Set(context.principal.map { catalog.spacesGranted(to: $0.did, nowMilliseconds: context.nowMilliseconds) } ?? [])
        for storageName in context.server.storage.databaseNames() {
            guard let id = SpaceID(storageName), let record = catalog.space(id), let principal = context.principal else { continue }
            let name: String
            if record.controller == principal.did {
                name = record.name
            } else if granted.contains(id) {
                name = id.string
            } else {
                continue
            }
            let size = context.server.storage.sizeOnDisk(storageName)
            total += size
            let entry: BSONDocument = nameOnly
                ? ["name": .string(name)] : ["name": .string(name), "sizeOnDisk": .int64(size), "empty": .bool(size == 0)]
            if let filter, !filter.matches(entry) { continue }
            databases.append(.document(entry))
        }
        var reply: BSONDocument = ["databases": .array(databases)]
        if !nameOnly { reply["totalSize"] = .int64(total) }
        return reply
    }
}

/// Reads the process's resident memory from /proc.
enum ProcessMemory {
    static func residentMegabytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let digits = line.split(separator: " ").compactMap { Int($0) }
            return (digits.first ?? 0) / 1024
        }
        return 0
    }
}
