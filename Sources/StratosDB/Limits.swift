import QueryEngine

/// Every bound the server enforces, with the reason for it (ARCHITECTURE.md §10).
public enum ServerLimits {
    /// Largest wire message accepted: MongoDB's `maxMessageSizeBytes` (48,000,000), which drivers
    /// read from `hello` and respect when batching. Larger frames close the connection.
    public static let messageSizeBytesMax = 48_000_000
    /// Largest document: 16 MiB (`maxBsonObjectSize`).
    public static let documentSizeBytesMax = QueryEngineLimits.documentSizeBytesMax
    /// Most writes in one command (`maxWriteBatchSize`); drivers split larger batches.
    public static let writeBatchSizeMax = 100_000
    /// Open connections; beyond this new connections are closed at once so one noisy client
    /// cannot exhaust file descriptors and memory for everyone else.
    public static let connectionsMax = 1_000
    /// Connections from one client address: a single host cannot take every slot.
    public static let connectionsPerAddressMax = 500
    /// Seconds a connection may go without a byte while part of a message waits (slowloris);
    /// an idle connection between messages is not affected.
    public static let stalledMessageSeconds: Int64 = 5
    /// Replies at least this large count against the node-wide memory cap while they are written
    /// (small replies are not worth the bookkeeping).
    public static let replyBytesCounted = 64 * 1024
    /// Threads for reads that may examine many documents; admission is fair between spaces.
    public static let heavyReadThreads = 2
    /// Open cursors per server; each may hold a sorted result in memory.
    public static let cursorsMax = 10_000
    /// Idle time after which a cursor is closed, as MongoDB's `cursorTimeoutMillis` (10 minutes).
    public static let cursorIdleTimeoutSeconds: Int64 = 600
    /// Documents in a first batch when the client does not say (MongoDB's default of 101).
    public static let firstBatchCountDefault = 101
    /// Bytes in one reply batch: replies must stay under the 16 MiB document limit with room for
    /// the envelope.
    public static let batchBytesMax = 16 * 1024 * 1024 - 16 * 1024
    /// How often a tailable `awaitData` cursor's getMore looks for new documents while it waits
    /// (it waits at most its `maxTimeMS`, 1 s by default, capped at 60 s).
    public static let tailablePollMilliseconds = 20
    /// Open databases (each holds a SQLite connection and a thread).
    public static let openDatabasesMax = 2_000

    /// Largest SASL payload accepted (SCRAM messages are about 100 bytes; a PLAIN token about
    /// 300): a bound on what an unauthenticated client can make the server parse.
    static let saslPayloadBytesMax = 4_096

    /// Failed authentications one connection may make before it is closed, so a client cannot
    /// guess passwords on one socket indefinitely.
    static let authenticationFailuresPerConnectionMax = 5

    /// Concurrent SASL conversations per connection (one is all a driver ever uses).
    static let saslConversationsPerConnectionMax = 1

    /// Largest message accepted before a connection has logged in (the handshake and SASL
    /// messages are well under 4 KB; drivers send nothing larger first): 1 MiB.
    static let unauthenticatedMessageBytesMax = 1 << 20
}
