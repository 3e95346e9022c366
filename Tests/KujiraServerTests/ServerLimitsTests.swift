import Foundation
import KujiraGeneration
import KujiraServer
import XCTest

/// The server's limits on a real socket: idle/header timeout, connection bound, truncated bodies, graceful shutdown.
/// Timeouts here are generous bounds (closed within 10 s of a 1 s idle timeout), never speed assertions.
final class ServerLimitsTests: XCTestCase {
    static let streamingChat = #"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":16,"stream":true}"#

    func testSilentConnectionIsClosedAfterTheIdleTimeout() async throws {
        let server = try await LiveServer.start { $0.idleTimeout = .seconds(1) }
        let connection = try RawConnection(port: server.port)
        let reply = await connection.read(timeout: 10)
        XCTAssertTrue(reply.closed, "a connection that sends nothing must be closed (1 s idle timeout, waited 10 s)")
        XCTAssertEqual(reply.text, "")
        try await server.stop()
    }

    func testPartialHeaderIsClosedAfterTheIdleTimeout() async throws {
        let server = try await LiveServer.start { $0.idleTimeout = .seconds(1) }
        let connection = try RawConnection(port: server.port)
        connection.write("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        let reply = await connection.read(timeout: 10)
        XCTAssertTrue(reply.closed, "a header that never ends must not hold the connection (1 s idle timeout, waited 10 s)")
        XCTAssertNil(reply.status, reply.text)
        try await server.stop()
    }

    func testIdleKeepAliveConnectionIsClosedAfterItsResponse() async throws {
        let server = try await LiveServer.start { $0.idleTimeout = .seconds(1) }
        let connection = try RawConnection(port: server.port)
        connection.write(rawRequest("GET", "/health"))
        let health = await connection.read(until: "\"ok\"", timeout: 10)
        XCTAssertEqual(health.status, 200, health.text)
        let after = await connection.read(timeout: 10)
        XCTAssertTrue(after.closed, "an idle keep-alive connection must be closed after the idle timeout")
        try await server.stop()
    }

    /// The idle timeout counts reads only while no request is in flight: a stream that writes nothing for three
    /// timeouts (the scheduler held) still ends normally.
    func testStreamSilentForLongerThanTheIdleTimeoutIsNotCut() async throws {
        let server = try await LiveServer.start { $0.idleTimeout = .seconds(1) }
        server.scheduler.pause()
        let connection = try RawConnection(port: server.port)
        connection.write(rawRequest("POST", "/v1/chat/completions", body: Self.streamingChat))
        let opening = await connection.read(until: "data: ", timeout: 10)
        XCTAssertEqual(opening.status, 200, opening.text)
        try await Task.sleep(for: .seconds(3))
        server.scheduler.resume()
        let rest = await connection.read(until: "data: [DONE]", timeout: 10)
        XCTAssertFalse(rest.closed, "the stream was cut: \(opening.text + rest.text)")
        XCTAssertTrue(rest.text.contains("\"finish_reason\":\""), rest.text)
        XCTAssertFalse(rest.text.contains("\"error\""), rest.text)
        try await server.stop()
    }

    func testConnectionsPastTheLimitGet503AndAreClosed() async throws {
        let server = try await LiveServer.start { $0.maxConnections = 2 }
        var held: [RawConnection] = []
        for _ in 0..<2 {
            let connection = try RawConnection(port: server.port)
            connection.write(rawRequest("GET", "/health"))
            let reply = await connection.read(until: "\"ok\"", timeout: 10)
            XCTAssertEqual(reply.status, 200, reply.text)
            held.append(connection)
        }
        let extra = try RawConnection(port: server.port)
        extra.write(rawRequest("GET", "/health"))
        let refused = await extra.read(timeout: 10)
        XCTAssertTrue(refused.closed, "the third connection must be closed, not parked in the backlog")
        XCTAssertEqual(refused.status, 503, refused.text)
        XCTAssertEqual(try refused.errorObject()["code"] as? String, "too_many_connections")
        XCTAssertTrue(server.metrics.render().contains("kujira_refused_connections_total 1"), server.metrics.render())
        // A closed connection frees its place (the server notices the close asynchronously, so retry for a while).
        held.removeFirst()
        var status: Int?
        for _ in 0..<50 where status != 200 {
            let connection = try RawConnection(port: server.port)
            connection.write(rawRequest("GET", "/health"))
            status = await connection.read(until: "\"ok\"", timeout: 10).status
            if status != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        XCTAssertEqual(status, 200, "a place must be free again after a connection closed")
        try await server.stop()
    }

    func testTruncatedBodyIs400WithTheErrorEnvelope() async throws {
        let server = try await LiveServer.start()
        let connection = try RawConnection(port: server.port)
        connection.write(rawRequest("POST", "/v1/chat/completions", body: #"{"messages":"#, contentLength: 100))
        connection.shutdownWrite()
        let reply = await connection.read(timeout: 10)
        XCTAssertEqual(reply.status, 400, reply.text)
        let error = try reply.errorObject()
        XCTAssertEqual(error["code"] as? String, "incomplete_body")
        XCTAssertEqual(error["type"] as? String, "invalid_request_error")
        XCTAssertTrue(reply.closed, "the server closes after answering a half-closed connection")
        try await server.stop()
    }

    func testBodiesReallyOverTheLimitStay413() async throws {
        let server = try await LiveServer.start { $0.maxBodyBytes = 512 }
        let big = #"{"messages":[{"role":"user","content":""# + String(repeating: "x", count: 2000) + #""}]}"#
        let declared = try RawConnection(port: server.port)
        declared.write(rawRequest("POST", "/v1/chat/completions", body: big))
        let declaredReply = await declared.read(until: "}}", timeout: 10)
        XCTAssertEqual(declaredReply.status, 413, declaredReply.text)
        XCTAssertEqual(try declaredReply.errorObject()["code"] as? String, "request_too_large")
        // Chunked: no Content-Length, so the limit trips while collecting.
        let chunked = try RawConnection(port: server.port)
        chunked.write("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n" + String(big.utf8.count, radix: 16) + "\r\n" + big + "\r\n0\r\n\r\n")
        let chunkedReply = await chunked.read(until: "}}", timeout: 10)
        XCTAssertEqual(chunkedReply.status, 413, chunkedReply.text)
        try await server.stop()
    }

    /// SIGTERM's path without the signal: stop accepting, end open streams with an error event, close idle
    /// connections, and return normally (the CLI then exits 0).
    func testGracefulShutdownEndsOpenStreamsWithAnErrorEvent() async throws {
        let server = try await LiveServer.start()
        let idle = try RawConnection(port: server.port)
        idle.write(rawRequest("GET", "/health"))
        let health = await idle.read(until: "\"ok\"", timeout: 10)
        XCTAssertEqual(health.status, 200, health.text)
        server.scheduler.pause()  // the stream stays open: queued behind a held scheduler
        let stream = try RawConnection(port: server.port)
        stream.write(rawRequest("POST", "/v1/chat/completions", body: Self.streamingChat))
        let opening = await stream.read(until: "data: ", timeout: 10)
        XCTAssertEqual(opening.status, 200, opening.text)
        await server.beginShutdown()
        let rest = await stream.read(timeout: 10)
        XCTAssertTrue(rest.closed, "the stream must end after shutdown starts: \(rest.text)")
        let events = (opening.text + rest.text).components(separatedBy: "\n\n").compactMap { part -> String? in
            guard let range = part.range(of: "data: ") else { return nil }
            return String(part[range.upperBound...])
        }
        XCTAssertEqual(events.last, "[DONE]", rest.text)
        let last = try XCTUnwrap(events.dropLast().last)
        let error = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])?["error"] as? [String: Any],
                                  "the last event before [DONE] must be an error: \(last)")
        XCTAssertEqual(error["code"] as? String, "server_shutting_down")
        let idleAfter = await idle.read(timeout: 10)
        XCTAssertTrue(idleAfter.closed, "an idle keep-alive connection is closed on shutdown")
        try await server.waitUntilStopped()
        XCTAssertThrowsError(try RawConnection(port: server.port), "the listener must be closed")
        XCTAssertEqual(server.scheduler.activeCount, 0)
        XCTAssertEqual(server.scheduler.queueDepth, 0)
    }

    /// A running (not queued) sequence is failed with `shuttingDown` and its slot freed. Generation is fast, so an
    /// attempt whose request finished before `pause()` took hold is repeated on a fresh scheduler.
    func testShutdownFailsARunningSequenceAndFreesItsSlot() async throws {
        let pipeline = try ServerFixtures.pipeline()
        var options = pipeline.options(maxTokens: 200)
        options.stopTokens = []  // no early end: 200 steps unless stopped
        for _ in 0..<20 {
            let metrics = ServerMetrics()
            let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: 1, maxQueue: 2, metrics: metrics)
            let handle = try scheduler.submit(prompt: pipeline.completionPrompt("go"), options: options)
            var iterator = handle.stream.makeAsyncIterator()
            var outputs: [SchedulerOutput] = []
            if let first = await iterator.next() { outputs.append(first) }
            scheduler.pause()
            scheduler.shutdown()
            while let output = await iterator.next() { outputs.append(output) }
            if outputs.contains(where: { if case .finished = $0 { return true } else { return false } }) { continue }
            guard case .failed(let error)? = outputs.last else { return XCTFail("the running request must end failed: \(outputs)") }
            XCTAssertEqual(error, .shuttingDown)
            XCTAssertEqual(scheduler.activeCount, 0)
            XCTAssertTrue(metrics.render().contains("kujira_active_sequences 0.0"), metrics.render())
            XCTAssertThrowsError(try scheduler.submit(prompt: pipeline.completionPrompt("go"), options: options)) {
                XCTAssertEqual($0 as? APIError, .shuttingDown)
            }
            return
        }
        XCTFail("every attempt finished its 200 tokens before shutdown")
    }
}
