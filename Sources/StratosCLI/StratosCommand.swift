import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import StratosDB
import UnixSignals

@main
struct StratosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stratosdb",
        abstract: "StratosDB: a document database of user-owned encrypted spaces, spoken to over the MongoDB wire protocol.",
        version: StratosVersion.current,
        subcommands: [Serve.self])
}

/// `stratosdb serve`: a single node that plays every role.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a single StratosDB node and print its mongodb:// connection string.",
        discussion: """
            The node speaks the MongoDB wire protocol: connect with pymongo, mongosh or any MongoDB driver.
            Until authentication lands, serve binds only loopback addresses (127.0.0.1, ::1, localhost).
            """)

    @Option(name: .long, help: "Directory for the node's data.")
    var dataDir: String = "./.stratosdb"

    @Option(name: .long, help: "Address to listen on (loopback only until authentication lands).")
    var bind: String = "127.0.0.1"

    @Option(name: .long, help: "TCP port to listen on (0 picks a free port).")
    var port: Int = 27017

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Durability of acknowledged writes: 'normal' survives a crash of the process, 'full' also survives power loss (fsync before every acknowledgement).")
    var sync: String = "normal"

    func validate() throws {
        guard ["127.0.0.1", "::1", "localhost"].contains(bind) || bind.hasPrefix("127.") else {
            throw ValidationError("refusing to bind \(bind): StratosDB has no authentication yet, so it only listens on loopback addresses (127.0.0.1 or ::1). Use an SSH tunnel to reach it from elsewhere.")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["normal", "full"].contains(sync) else { throw ValidationError("--sync must be 'normal' or 'full'") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "stratosdb")
        let absoluteDataDir = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        let configuration = ServerConfiguration(dataDirectory: absoluteDataDir, host: bind, port: port, syncFull: sync == "full")
        let host = bind.contains(":") ? "[\(bind)]" : bind
        let server = try WireServer(configuration: configuration, logger: logger) { boundPort in
            let line = "StratosDB \(StratosVersion.current) ready: mongodb://\(host):\(boundPort)/ (data in \(absoluteDataDir), sync \(configuration.syncFull ? "full" : "normal"))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
