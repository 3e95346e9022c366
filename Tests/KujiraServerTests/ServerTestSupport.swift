import Foundation
import Hummingbird
import HummingbirdTesting
import KujiraGeneration
import KujiraServer
import KujiraTokenizer
import XCTest

/// Builds in-memory servers on the tiny DeepSeek-V3 model with its 256-id DeepSeek-style tokenizer.
enum ServerFixtures {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let tinyChat = fixtures.appendingPathComponent("server/tiny-chat").path

    static func pipeline(contextLength: Int? = nil) throws -> TextPipeline {
        try TextPipeline.load(path: tinyChat, contextLength: contextLength)
    }

    /// A router over a ready model (or a loading one when `pipeline` is nil).
    static func router(pipeline: TextPipeline?, configure: (inout ServerConfiguration) -> Void = { _ in },
                       maxConcurrent: Int = 1, maxQueue: Int = 4, prefixCache: PrefixCache? = nil) -> (Router<BasicRequestContext>, GenerationScheduler?) {
        var configuration = ServerConfiguration()
        configure(&configuration)
        let host = ModelHost()
        let metrics = ServerMetrics()
        var scheduler: GenerationScheduler?
        if let pipeline {
            scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: maxConcurrent, maxQueue: maxQueue, metrics: metrics,
                                            prefixCache: prefixCache)
            host.setReady(scheduler!)
        }
        return (KujiraServer.makeRouter(host: host, configuration: configuration, metrics: metrics), scheduler)
    }
}

extension TestResponse {
    /// The body parsed as a JSON object.
    func json(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let data = Data(body.readableBytesView)
        let object = try JSONSerialization.jsonObject(with: data)
        return try XCTUnwrap(object as? [String: Any], "body is not a JSON object: \(String(decoding: data, as: UTF8.self))",
                             file: file, line: line)
    }

    var text: String { String(decoding: body.readableBytesView, as: UTF8.self) }

    /// Checks OpenAI's error envelope and returns its `error` object.
    func errorEnvelope(_ status: HTTPResponse.Status, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(self.status, status, text, file: file, line: line)
        XCTAssertEqual(headers[.contentType], "application/json", file: file, line: line)
        let error = try XCTUnwrap(try json()["error"] as? [String: Any], file: file, line: line)
        XCTAssertNotNil(error["message"] as? String, file: file, line: line)
        XCTAssertNotNil(error["type"] as? String, file: file, line: line)
        XCTAssertTrue(error.keys.contains("param") && error.keys.contains("code"), "\(error)", file: file, line: line)
        return error
    }

    /// The `data:` payloads of an SSE body, checking the framing (each event one `data:` line + blank line).
    func sseEvents(file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let events = text.components(separatedBy: "\n\n")
        XCTAssertEqual(events.last, "", "body must end with a blank line", file: file, line: line)
        return events.dropLast().map { event in
            XCTAssertTrue(event.hasPrefix("data: ") && !event.contains("\n"), "bad SSE event: \(event)", file: file, line: line)
            return String(event.dropFirst(6))
        }
    }
}

func jsonBody(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: object))
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]
