import NIOCore

/// The last handler of a connection's pipeline: it hands whole wire messages to the
/// connection's request loop and writes the loop's replies, with back-pressure both ways.
///
/// It replaces `NIOAsyncChannel` on the request path. That general bridge keeps its inbound and
/// outbound sides in two lock-protected, generic state machines (an async sequence producer and
/// an async writer); for one request and one reply at a time they cost more than the request
/// itself for a `ping` (docs/benchmarks.md, "The request path"). Here both sides are plain
/// fields touched only on the channel's event loop, where the request loop also runs (its task
/// prefers that event loop as its executor, `EventLoopTaskExecutor`): a request that is already
/// queued is taken without suspending, a reply is written and flushed straight into the
/// pipeline, and the loop suspends only to wait for the next message or for a slow reader.
///
/// Back-pressure: while `framesHeld` messages wait unread by the loop, the handler withholds
/// the channel's `read()`; the socket's buffers then fill and TCP slows the client. When the
/// socket stops being writable (the client does not read its replies), the loop waits before it
/// takes another request.
final class ConnectionInbox: ChannelDuplexHandler, @unchecked Sendable {
    // Safe: every stored property is read and written on `eventLoop` only. The entry points the
    // request loop calls check `inEventLoop` and hop there when a task runs elsewhere.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Messages queued before the handler stops reading from the socket.
    static let framesHeld = 8

    /// Why the connection ended, when the pipeline reported an error (framing, reset).
    private var failure: (any Error)?

    /// The type of the error that ended the connection, if one did (for the log).
    func failureName() async -> String? {
        await onLoop { self.failure.map { "\(type(of: $0))" } }
    }

    let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    private var frames = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    /// No more messages will come (the channel closed, or the pipeline reported an error).
    private var inputEnded = false
    /// The channel is closed: replies have nowhere to go.
    private var closed = false
    private var readHeld = false
    private var waitingForFrame: UnsafeContinuation<ByteBuffer?, Never>?
    private var waitingForWritable: UnsafeContinuation<Void, Never>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    // MARK: - The request loop's side

    /// The next whole message, or nil once the connection is closed or broken. Messages that
    /// arrived before the end are still delivered.
    func next() async -> ByteBuffer? {
        // The node is stopping: no more requests from this connection, even queued ones.
        if Task.isCancelled {
            close()
            return nil
        }
        if eventLoop.inEventLoop, let frame = take() { return frame }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                if eventLoop.inEventLoop {
                    park(continuation)
                } else {
                    eventLoop.execute { self.park(continuation) }
                }
            }
        } onCancel: {
            // The node is stopping: the loop sees nil, and the connection closes.
            eventLoop.execute { self.endInput() }
            close()
        }
    }

    /// Writes and flushes one reply. Returns false when the connection is gone. When the socket
    /// is full, waits until the client has read enough for it to take more.
    func write(_ reply: ByteBuffer) async -> Bool {
        let written = eventLoop.inEventLoop ? writeNow(reply) : await onLoop { self.writeNow(reply) }
        guard written else { return false }
        return await waitUntilWritable()
    }

    /// Closes the connection (the request loop is done with it).
    func close() {
        if eventLoop.inEventLoop {
            context?.close(promise: nil)
        } else {
            eventLoop.execute { self.context?.close(promise: nil) }
        }
    }

    private func take() -> ByteBuffer? {
        guard let frame = frames.popFirst() else { return nil }
        if readHeld, frames.count < Self.framesHeld / 2, let context {
            readHeld = false
            context.read()
        }
        return frame
    }

    private func park(_ continuation: UnsafeContinuation<ByteBuffer?, Never>) {
        if let frame = take() {
            continuation.resume(returning: frame)
        } else if inputEnded {
            continuation.resume(returning: nil)
        } else {
            waitingForFrame = continuation
        }
    }

    private func writeNow(_ reply: ByteBuffer) -> Bool {
        guard !closed, let context else { return false }
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        return true
    }

    private func waitUntilWritable() async -> Bool {
        if eventLoop.inEventLoop, closed || context?.channel.isWritable != false { return !closed }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                eventLoop.execute {
                    if self.closed || self.context?.channel.isWritable != false {
                        continuation.resume()
                    } else {
                        self.waitingForWritable = continuation
                    }
                }
            }
        } onCancel: {
            // The node is stopping and the client is not reading: close; the wait ends when
            // the channel is inactive.
            close()
        }
        return await onLoop { !self.closed }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        if eventLoop.inEventLoop { return body() }
        return await withUnsafeContinuation { continuation in eventLoop.execute { continuation.resume(returning: body()) } }
    }

    // MARK: - The pipeline's side

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        endOutput()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if let waiting = waitingForFrame {
            waitingForFrame = nil
            waiting.resume(returning: frame)
        } else {
            frames.append(frame)
        }
    }

    func read(context: ChannelHandlerContext) {
        if frames.count >= Self.framesHeld {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let waiting = waitingForWritable {
            waitingForWritable = nil
            waiting.resume()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        endOutput()
        context.fireChannelInactive()
    }

    /// A framing error or a reset: the loop answers what was queued before it, then sees nil
    /// and closes the connection.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        endInput()
    }

    /// The channel is closed: no more messages, and a wait for writability ends.
    private func endOutput() {
        closed = true
        endInput()
    }

    private func endInput() {
        inputEnded = true
        if let waiting = waitingForFrame {
            waitingForFrame = nil
            waiting.resume(returning: nil)
        }
        if closed, let waiting = waitingForWritable {
            waitingForWritable = nil
            waiting.resume()
        }
    }
}
