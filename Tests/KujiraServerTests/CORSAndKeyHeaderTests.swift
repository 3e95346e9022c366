import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import KujiraGeneration
import KujiraServer
import XCTest

/// A browser app on another origin can call the server (`--cors-origin`): the preflight is answered without a key,
/// responses carry `Access-Control-Allow-Origin`, other origins get no CORS headers. `X-Api-Key` works like Bearer.
final class CORSAndKeyHeaderTests: XCTestCase {
    func testPreflightWithoutKeyAndAllowedOriginOnResponses() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try ServerGenerationTests.pipeline.get()) {
            $0.apiKey = "sk-test"
            $0.corsOrigins = ["http://localhost:5173"]
        }
        try await Application(router: router).test(.router) { client in
            let preflight = try await client.execute(uri: "/v1/chat/completions", method: .options,
                                                     headers: [.origin: "http://localhost:5173", .accessControlRequestMethod: "POST",
                                                               .accessControlRequestHeaders: "authorization, content-type"])
            XCTAssertEqual(preflight.status, .noContent)
            XCTAssertEqual(preflight.headers[.accessControlAllowOrigin], "http://localhost:5173")
            let allowed = (preflight.headers[.accessControlAllowHeaders] ?? "").lowercased()
            XCTAssertTrue(allowed.contains("authorization") && allowed.contains("content-type") && allowed.contains("x-api-key"), allowed)
            XCTAssertTrue((preflight.headers[.accessControlAllowMethods] ?? "").contains("POST"))

            var headers = jsonHeaders
            headers[.origin] = "http://localhost:5173"
            headers[.authorization] = "Bearer sk-test"
            let answer = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers,
                                                  body: ServerGenerationTests.chatBody(["max_tokens": 2]))
            XCTAssertEqual(answer.status, .ok)
            XCTAssertEqual(answer.headers[.accessControlAllowOrigin], "http://localhost:5173")

            let other = try await client.execute(uri: "/v1/chat/completions", method: .options,
                                                 headers: [.origin: "https://evil.example", .accessControlRequestMethod: "POST"])
            XCTAssertNil(other.headers[.accessControlAllowOrigin], "an origin not listed gets no CORS headers")
            XCTAssertEqual(other.status, .unauthorized)
        }
    }

    func testWithoutCORSOriginsNoHeadersAreAdded() async throws {
        let (router, _) = ServerFixtures.router(pipeline: nil)
        try await Application(router: router).test(.router) { client in
            let response = try await client.execute(uri: "/health", method: .get, headers: [.origin: "http://localhost:5173"])
            XCTAssertNil(response.headers[.accessControlAllowOrigin])
        }
    }

    func testXApiKeyHeader() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try ServerGenerationTests.pipeline.get()) { $0.apiKey = "sk-test" }
        try await Application(router: router).test(.router) { client in
            let apiKey = HTTPField.Name("X-Api-Key")!
            var good = jsonHeaders
            good[apiKey] = "sk-test"
            let ok = try await client.execute(uri: "/v1/models", method: .get, headers: good)
            XCTAssertEqual(ok.status, .ok)
            var bad = jsonHeaders
            bad[apiKey] = "sk-wrong"
            let refused = try await client.execute(uri: "/v1/models", method: .get, headers: bad)
            XCTAssertEqual(refused.status, .unauthorized)
            let missing = try await client.execute(uri: "/v1/models", method: .get, headers: jsonHeaders)
            XCTAssertEqual(missing.status, .unauthorized)
        }
    }

    /// The web chat's page is served at `/` without a key (it asks for one), self-contained (no external URL), while the API
    /// behind it still needs the key; other paths stay 404/401.
    func testWebChatPageNeedsNoKeyButTheAPIDoes() async throws {
        let (router, _) = ServerFixtures.router(pipeline: try ServerGenerationTests.pipeline.get()) { $0.apiKey = "sk-test" }
        try await Application(router: router).test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            XCTAssertTrue(html.contains("<title>Kujira chat</title>") && html.contains("/v1/chat/completions"), String(html.prefix(200)))
            XCTAssertFalse(html.contains("http://") || html.contains("https://"), "the page loads nothing from elsewhere")
            let models = try await client.execute(uri: "/v1/models", method: .get)
            XCTAssertEqual(models.status, .unauthorized)
            let other = try await client.execute(uri: "/index.html", method: .get)
            XCTAssertEqual(other.status, .unauthorized)
        }
    }
}
