/// The query engine's error: a MongoDB-compatible numeric code and name plus a message.
///
/// Codes are MongoDB's own (`src/mongo/base/error_codes.yml`) so that drivers classify them the way
/// they classify MongoDB's. Messages never include document contents.
public struct QueryError: Error, Sendable, CustomStringConvertible {
    /// A MongoDB error code with its `codeName`.
    public struct Code: Hashable, Sendable {
        /// The numeric code drivers read (`code`).
        public let number: Int32
        /// The name drivers read (`codeName`).
        public let name: String

        init(_ number: Int32, _ name: String) {
            self.number = number
            self.name = name
        }

        public static let internalError = Code(1, "InternalError")
        public static let badValue = Code(2, "BadValue")
        public static let failedToParse = Code(9, "FailedToParse")
        public static let typeMismatch = Code(14, "TypeMismatch")
        public static let overflow = Code(15, "Overflow")
        public static let invalidLength = Code(16, "InvalidLength")
        public static let illegalOperation = Code(20, "IllegalOperation")
        public static let userNotFound = Code(11, "UserNotFound")
        public static let unauthorized = Code(13, "Unauthorized")
        public static let authenticationFailed = Code(18, "AuthenticationFailed")
        public static let mechanismUnavailable = Code(334, "MechanismUnavailable")
        public static let invalidBSON = Code(22, "InvalidBSON")
        public static let namespaceNotFound = Code(26, "NamespaceNotFound")
        public static let indexNotFound = Code(27, "IndexNotFound")
        public static let pathNotViable = Code(28, "PathNotViable")
        public static let conflictingUpdateOperators = Code(40, "ConflictingUpdateOperators")
        public static let cursorNotFound = Code(43, "CursorNotFound")
        public static let namespaceExists = Code(48, "NamespaceExists")
        public static let dollarPrefixedFieldName = Code(52, "DollarPrefixedFieldName")
        public static let invalidIdField = Code(53, "InvalidIdField")
        public static let commandNotFound = Code(59, "CommandNotFound")
        public static let immutableField = Code(66, "ImmutableField")
        public static let cannotCreateIndex = Code(67, "CannotCreateIndex")
        public static let invalidIndexSpecificationOption = Code(197, "InvalidIndexSpecificationOption")
        public static let invalidOptions = Code(72, "InvalidOptions")
        public static let documentValidationFailure = Code(121, "DocumentValidationFailure")
        public static let commandNotSupportedOnView = Code(166, "CommandNotSupportedOnView")
        public static let optionNotSupportedOnView = Code(167, "OptionNotSupportedOnView")
        public static let viewDepthLimitExceeded = Code(165, "ViewDepthLimitExceeded")
        public static let invalidNamespace = Code(73, "InvalidNamespace")
        public static let conversionFailure = Code(241, "ConversionFailure")
        public static let indexOptionsConflict = Code(85, "IndexOptionsConflict")
        public static let indexKeySpecsConflict = Code(86, "IndexKeySpecsConflict")
        public static let invalidPipelineOperator = Code(168, "InvalidPipelineOperator")
        public static let noQueryExecutionPlans = Code(291, "NoQueryExecutionPlans")
        public static let exceededMemoryLimit = Code(292, "QueryExceededMemoryLimitNoDiskUseAllowed")
        public static let duplicateKey = Code(11000, "DuplicateKey")
        public static let maxTimeMSExpired = Code(50, "MaxTimeMSExpired")
        public static let interrupted = Code(11601, "Interrupted")
        public static let writeConflict = Code(112, "WriteConflict")
        public static let queryPlanKilled = Code(175, "QueryPlanKilled")
        public static let exceededMemoryLimitNodeWide = Code(146, "ExceededMemoryLimit")
        public static let databaseDropPending = Code(215, "DatabaseDropPending")
        public static let interruptedAtShutdown = Code(11600, "InterruptedAtShutdown")
        public static let operationFailed = Code(96, "OperationFailed")
        public static let noReplicationEnabled = Code(76, "NoReplicationEnabled")
        public static let documentTooLarge = Code(10334, "BSONObjectTooLarge")
        public static let invalidRegex = Code(51091, "Location51091")
        public static let unknownGroupAccumulator = Code(15952, "Location15952")
        public static let unknownStage = Code(40324, "Location40324")

        // StratosDB's own codes for stored procedures (7_300_xxx; MongoDB has no WebAssembly).
        /// The procedure used up its fuel (an instruction budget) before it returned.
        public static let exceededFuel = Code(7_300_001, "ExceededFuel")
        /// The procedure asked for more linear memory than its limit.
        public static let exceededMemory = Code(7_300_002, "ExceededMemory")
        /// The procedure trapped (unreachable, out-of-bounds access, division by zero, …).
        public static let procedureTrapped = Code(7_300_003, "ProcedureTrapped")
        /// The procedure stopped itself with `stratos_abort` (for example a validation failure).
        public static let procedureAborted = Code(7_300_004, "ProcedureAborted")
        /// The module is not a valid procedure (bad WebAssembly, unknown imports, no `run`).
        public static let invalidProcedure = Code(7_300_005, "InvalidProcedureModule")
        /// No procedure (or version) of that name in the space.
        public static let procedureNotFound = Code(7_300_006, "ProcedureNotFound")

        /// No job of that id in the space.
        public static let jobNotFound = Code(7_300_007, "JobNotFound")
        /// A `redundancy: 2` attempt read or wrote more than can be sent to a second node.
        public static let jobTooLargeToVerify = Code(7_300_010, "JobTooLargeToVerify")
        /// A second node's re-run of a job did not do what the first node's did.
        public static let procedureDiverged = Code(7_300_008, "ProcedureDiverged")
        /// A job asked for a second node's re-run and no second computation node answered.
        public static let redundancyUnavailable = Code(7_300_009, "RedundancyUnavailable")

        /// A code received from elsewhere (another node), by number and name.
        public static func named(_ number: Int32, _ name: String) -> Code { Code(number, name) }

        /// A MongoDB "Location" code: an assertion site number without a dedicated name.
        public static func location(_ number: Int32) -> Code { Code(number, "Location\(number)") }
    }

    /// The MongoDB code.
    public var code: Code
    /// The human-readable message (`errmsg`).
    public var message: String
    /// Extra fields MongoDB attaches, for example `keyPattern` and `keyValue` on duplicate keys.
    public var info: BSONDocument?

    /// Creates an error.
    public init(_ code: Code, _ message: String, info: BSONDocument? = nil) {
        self.code = code
        self.message = message
        self.info = info
    }

    public var description: String { "\(code.name)(\(code.number)): \(message)" }
}
