/// Every bound the ledger enforces, and why.
public enum LedgerLimits {
    /// Validators in one set: proposer selection and commit checks are linear in it, and a
    /// commit certificate carries one signature per validator.
    public static let validatorsCountMax = 150
    /// Transactions in one block: bounds a block's size and its execution time.
    public static let transactionsPerBlockMax = 10_000
    /// One encoded transaction: an anchor batch root is small; transfers are smaller.
    public static let transactionBytesMax = 64 * 1024
    /// One encoded block (header, transactions, evidence, last commit).
    public static let blockBytesMax = 8 * 1024 * 1024
    /// Evidence items in one block.
    public static let evidencePerBlockMax = 100
    /// Rounds a height may reach before messages claiming a higher one are ignored: keeps a
    /// Byzantine peer from making us allocate state for round 2^31.
    public static let roundMax: Int32 = 10_000
    /// Messages buffered for heights we have not reached yet.
    public static let futureMessagesMax = 10_000
    /// Blocks sent in one block-sync reply.
    public static let syncBlocksPerReplyMax = 50
    /// Commits batched in one anchor transaction (space heads, one per changed space).
    public static let anchorsPerBatchMax = 100_000
    /// One write-ahead log record.
    public static let walRecordBytesMax = 16 * 1024 * 1024
    /// Ban proposals kept in the state (open and decided).
    public static let banProposalsMax = 10_000
    /// Length of a chain ID.
    public static let chainIDBytesMax = 50
}
