// swift-tools-version: 6.1
import Foundation
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "StratosDB",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stratosdb", targets: ["StratosCLI"]),
        .library(name: "StratosDB", targets: ["StratosDB"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Stored procedures run in WasmKit: a WebAssembly interpreter in Swift with fuel metering.
        // Only its thread-safe engine is wanted; the file-system and disassembler traits are not.
        .package(url: "https://github.com/swiftwasm/WasmKit", from: "0.4.2", traits: ["MultiThread"]),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(
            name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // PCRE2, MongoDB's regular expression engine (with match and depth limits).
        .systemLibrary(
            name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // Snowball's stemmers, MongoDB's text-search stemming for its fifteen languages (no pkg-config file).
        .systemLibrary(name: "CStemmer", providers: [.apt(["libstemmer-dev"])]),
        // Intel's IEEE 754-2008 decimal library, MongoDB's own decimal128 arithmetic (no pkg-config file).
        .systemLibrary(name: "CDecimal", providers: [.apt(["libintelrdfpmath-dev"])]),
        // ICU's collation service (Debian's libicu-dev), for MongoDB's `collation`, behind a C
        // header of plain types (Foundation's own ICU headers would clash with the system's).
        .target(
            name: "CStratosCollation",
            linkerSettings: [.linkedLibrary("icui18n"), .linkedLibrary("icuuc")]),
        // The encrypting SQLite VFS (page-level XChaCha20-Poly1305 with libsodium).
        // OpenSSL's libcrypto for ChaCha20-Poly1305 (see stratos_vfs.c: its assembly seals pages
        // faster than libsodium's, with the same bytes).
        .target(name: "CStratosVFS", dependencies: ["CSQLite", "CSodium"], linkerSettings: [.linkedLibrary("crypto")]),
        .target(
            name: "StratosCore",
            dependencies: ["CSodium"],
            swiftSettings: strictSettings),
        .target(
            name: "QueryEngine",
            dependencies: ["StratosCore", "CSQLite", "CPCRE2", "CDecimal", "CStemmer", "CStratosCollation"],
            swiftSettings: strictSettings),
        .target(
            name: "SpaceOwnership",
            dependencies: ["StratosCore"],
            swiftSettings: strictSettings),
        .target(
            name: "Ledger",
            dependencies: ["StratosCore", "CLMDB"],
            swiftSettings: strictSettings),
        // Stored procedures: WebAssembly modules run next to a space's data (ARCHITECTURE §8).
        .target(
            name: "StoredProcedures",
            dependencies: [
                "QueryEngine", "StratosCore",
                .product(name: "WasmKit", package: "WasmKit"),
                .product(name: "WasmParser", package: "WasmKit"),
            ],
            swiftSettings: strictSettings),
        .target(
            name: "StratosDB",
            dependencies: [
                "StratosCore", "QueryEngine", "SpaceOwnership", "Ledger", "CStratosVFS", "StoredProcedures",
                // SCRAM-SHA-1 and SCRAM-SHA-256 need SHA-1, MD5 and HMAC over both, which libsodium
                // lacks; swift-crypto is the maintained Swift API for them.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings),
        .executableTarget(
            name: "StratosCLI",
            dependencies: [
                "StratosDB", "SpaceOwnership", "StratosCore", "QueryEngine", "Ledger", "StoredProcedures",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings),
        .target(
            name: "StratosTestSupport",
            dependencies: ["StratosCore", "Ledger"],
            swiftSettings: strictSettings),
        .testTarget(
            name: "StratosCoreTests",
            dependencies: ["StratosCore", "StratosTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings),
        .testTarget(
            name: "QueryEngineTests",
            dependencies: ["QueryEngine", "StratosTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strictSettings),
        .testTarget(
            name: "SpaceOwnershipTests",
            dependencies: ["SpaceOwnership", "StratosCore"],
            swiftSettings: strictSettings),
        .testTarget(
            name: "LedgerTests",
            dependencies: ["Ledger", "StratosCore", "StratosTestSupport"],
            swiftSettings: strictSettings),
        .testTarget(
            name: "StoredProceduresTests",
            dependencies: ["StoredProcedures", "QueryEngine", .product(name: "WAT", package: "WasmKit")],
            swiftSettings: strictSettings),
        .testTarget(
            name: "StratosDBTests",
            dependencies: [
                "StratosDB", "QueryEngine", "SpaceOwnership", "StratosTestSupport", "CStratosVFS", "CSodium",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings),
    ],
    swiftLanguageModes: [.v6]
)

// Microbenchmarks (Benchmarks/, ordo-one/benchmark) are declared only on request, so ordinary
// builds and `make test` never compile the benchmark framework: `make microbench`.
if ProcessInfo.processInfo.environment["STRATOSDB_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]))
    package.targets.append(
        .executableTarget(
            name: "QueryEngineBenchmarks",
            dependencies: ["QueryEngine", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/QueryEngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]))
}

// A libFuzzer target for the BSON decoder and the query language parsers, declared on request:
// `make fuzz` (see FuzzTesting/README.md).
if ProcessInfo.processInfo.environment["STRATOSDB_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "BSONFuzzer", dependencies: ["QueryEngine"], path: "FuzzTesting/BSONFuzzer",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
