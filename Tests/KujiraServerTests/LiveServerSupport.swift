import Foundation
import KujiraGeneration
import KujiraServer
import Logging
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `kujira serve` (limits, shutdown hook and all) on 127.0.0.1 and an ephemeral port, run in-process on the
/// tiny test model.
final class LiveServer: Sendable {
    let port: Int
    let scheduler: GenerationScheduler
    let metrics: ServerMetrics
    private let instance: KujiraServerInstance
    private let task: Task<Void, any Error>

    private init(port: Int, scheduler: GenerationScheduler, metrics: ServerMetrics, instance: KujiraServerInstance,
                 task: Task<Void, any Error>) {
        self.port = port
        self.scheduler = scheduler
        self.metrics = metrics
        self.instance = instance
        self.task = task
    }

    static func start(maxConcurrent: Int = 1, maxQueue: Int = 4,
                      configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> LiveServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let host = ModelHost()
        let metrics = ServerMetrics()
        let scheduler = GenerationScheduler(pipeline: try ServerFixtures.pipeline(), maxConcurrent: maxConcurrent,
                                            maxQueue: maxQueue, metrics: metrics)
        host.setReady(scheduler)
        var logger = Logger(label: "kujira.test")
        logger.logLevel = .warning
        let (ports, listening) = AsyncStream.makeStream(of: Int.self)
        let instance = KujiraServer.makeServer(host: host, configuration: configuration, metrics: metrics, logger: logger,
                                               onListening: { listening.yield($0) })
        let task = Task {
            defer { listening.finish() }
            try await instance.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await task.value
            throw XCTSkip("the server stopped before listening")
        }
        return LiveServer(port: port, scheduler: scheduler, metrics: metrics, instance: instance, task: task)
    }

    /// Starts a graceful shutdown without waiting for it.
    func beginShutdown() async { await instance.shutdown() }

    /// Waits until the server has stopped; throws what `run()` threw (the CLI would then exit non-zero).
    func waitUntilStopped() async throws { try await task.value }

    /// Graceful shutdown, then waits for it.
    func stop() async throws {
        await beginShutdown()
        try await waitUntilStopped()
    }
}

/// A blocking TCP client that can misbehave: stay silent, send half a request, half-close. Every blocking call runs
/// on its own thread so the server's tasks keep the cooperative pool.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    /// What `read` saw: the bytes, and whether the server closed (EOF or reset).
    struct Reply {
        var text: String
        var closed: Bool
    }

    init(port: Int) throws {
        #if canImport(Glibc)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// Half-closes: the server sees end of input, the connection can still be read.
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads until the server closes, `marker` has been received, or `timeout` seconds pass.
    func read(until marker: String? = nil, timeout: Double) async -> Reply {
        await Self.offload { [self] in readBlocking(until: marker, timeout: timeout) }
    }

    private func readBlocking(until marker: String?, timeout: Double) -> Reply {
        let deadline = Date().addingTimeInterval(timeout)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { return Reply(text: String(decoding: received, as: UTF8.self), closed: false) }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return Reply(text: String(decoding: received, as: UTF8.self), closed: false) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return Reply(text: String(decoding: received, as: UTF8.self), closed: true) }
            received += buffer[0..<count]
        }
    }

    /// Runs blocking work on a fresh thread.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.start()
        }
    }
}

extension RawConnection.Reply {
    /// The HTTP status code of the response, if one arrived.
    var status: Int? {
        guard text.hasPrefix("HTTP/1.1 ") else { return nil }
        return Int(text.dropFirst(9).prefix(3))
    }

    /// The response body (after the header block; chunked framing left as is).
    var body: String {
        guard let range = text.range(of: "\r\n\r\n") else { return "" }
        return String(text[range.upperBound...])
    }

    /// The `error` object of an OpenAI error envelope in the body.
    func errorObject(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["error"] as? [String: Any], "no error envelope in \(text)", file: file, line: line)
    }
}

/// A raw HTTP/1.1 request with a JSON body (the length is the body's unless `contentLength` says otherwise).
func rawRequest(_ method: String, _ path: String, body: String = "", contentLength: Int? = nil) -> String {
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if method == "POST" { head += "Content-Type: application/json\r\nContent-Length: \(contentLength ?? body.utf8.count)\r\n" }
    return head + "\r\n" + body
}
