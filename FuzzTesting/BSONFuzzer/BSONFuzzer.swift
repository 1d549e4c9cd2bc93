import QueryEngine

/// libFuzzer entry point: decode arbitrary bytes as BSON; anything that decodes must re-encode
/// to bytes that decode to the same document, and parsing it as a filter, update or pipeline
/// (and running the pipeline, and evaluating an `expr` field as an aggregation expression) must
/// either succeed or throw, never crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let document = try? BSONDecoder.decode(bytes) else { return 0 }
    let encoded = document.bsonBytes
    guard let again = try? BSONDecoder.decode(encoded), again.bsonBytes == encoded else {
        fatalError("BSON re-encoding is not stable")
    }
    if let filter = try? Filter(document) { _ = filter.matches(document) }
    if let update = try? Update(document) {
        _ = try? update.apply(to: document, position: 0, isInsert: true, nowMilliseconds: 0)
    }
    _ = try? Projection(document).apply(to: document)
    if case .array(let stages)? = document["pipeline"], let pipeline = try? Pipeline(stages) {
        // Run it too, over the document itself (stages that read collections fail without a store).
        _ = try? pipeline.run(over: [document], nowMilliseconds: 0)
    }
    // An aggregation expression, parsed into its operator tree and evaluated against the document.
    if let value = document["expr"], let expression = try? Expression(value) {
        _ = try? expression.evaluate(ExpressionContext(root: document))
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point as `<target>_main`; hand control to libFuzzer.
@_cdecl("BSONFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, length in fuzz(start, length) }
}
