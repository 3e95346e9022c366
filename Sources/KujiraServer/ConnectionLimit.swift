import Foundation
import HummingbirdCore
import Logging
import NIOCore

/// Counts open connections against `--max-connections` (thread-safe; every event loop accepts through it).
final class ConnectionLimiter: @unchecked Sendable {
    let limit: Int
    private let metrics: ServerMetrics?
    private let lock = NSLock()
    private var open = 0

    init(limit: Int, metrics: ServerMetrics?) {
        self.limit = max(1, limit)
        self.metrics = metrics
    }

    /// Takes a place for a new connection; false when all `limit` are taken.
    func tryOpen() -> Bool {
        let accepted: Bool = lock.withLock {
            guard open < limit else { return false }
            open += 1
            metrics?.openConnections.set(Double(open))  // under the lock, so the gauge never lags a later update
            return true
        }
        if !accepted { metrics?.refusedConnections.increment() }
        return accepted
    }

    /// Gives the place of a closed connection back.
    func closed() {
        lock.withLock {
            open -= 1
            metrics?.openConnections.set(Double(open))
        }
    }

    /// Connections open now.
    var openCount: Int { lock.withLock { open } }
}

/// Hummingbird's HTTP/1.1 child channel behind a connection limit: a connection past the limit is answered at once
/// with a 503 in OpenAI's envelope (`code: too_many_connections`) and closed, instead of waiting in the backlog.
struct LimitedHTTP1Channel: ServerChildChannel {
    /// An accepted connection: served over HTTP/1.1, or (`http == nil`) refused.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let http: HTTP1Channel.Value?
    }

    let http: HTTP1Channel
    let limiter: ConnectionLimiter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard limiter.tryOpen() else {
            logger.debug("refusing a connection: \(limiter.limit) are open")
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler())
                return Value(channel: channel, http: nil)
            }
        }
        let limiter = self.limiter
        channel.closeFuture.whenComplete { _ in limiter.closed() }
        return http.setup(channel: channel, logger: logger).map { Value(channel: channel, http: $0) }
    }

    func handle(value: Value, logger: Logger) async {
        guard let connection = value.http else { return }
        await http.handle(value: connection, logger: logger)
    }
}

/// Writes the 503 of a refused connection, half-closes, drops whatever the client sends and closes when the client
/// does (or after a second): closing with unread input would reset the connection before the client reads the 503.
final class RefuseConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let response: String = {
        let body = APIError.tooManyConnections.body
        return "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n"
            + "connection: close\r\nretry-after: 1\r\n\r\n" + body
    }()

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.response))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
