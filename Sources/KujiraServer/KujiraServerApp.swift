import Foundation
import Hummingbird
import KujiraGeneration
import enum KujiraModels.KVCachePrecision
import enum KujiraTensor.Numerics
import Logging

/// Settings of `kujira serve`.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Clients must send `Authorization: Bearer <apiKey>` when set.
    public var apiKey: String?
    public var maxConcurrent = 1
    public var maxQueue = 16
    /// Context length (`--ctx`); nil = the model's maximum.
    public var contextLength: Int?
    /// KV-cache storage of every sequence (`--kv-bits`).
    public var cachePrecision = KVCachePrecision.float32
    /// Kujira's kernels or llama.cpp's arithmetic bit for bit (`--numerics`).
    public var numerics = Numerics.kujira
    public var maxBodyBytes = ServerConfiguration.defaultMaxBodyBytes

    public static let defaultMaxBodyBytes = 4 << 20

    public init() {}
}

/// The model behind the server: loading (503), ready, or failed to load (503 with the reason).
public final class ModelHost: @unchecked Sendable {
    private enum State { case loading, ready(GenerationScheduler), failed(String) }
    private let lock = NSLock()
    private var state = State.loading
    /// Unix time the server started (`created` of the model list).
    public let created = Int(Date().timeIntervalSince1970)

    public init() {}

    public func setReady(_ scheduler: GenerationScheduler) { lock.withLock { state = .ready(scheduler) } }
    public func setFailed(_ message: String) { lock.withLock { state = .failed(message) } }

    /// The scheduler, or 503 while loading.
    public func scheduler() throws -> GenerationScheduler {
        switch lock.withLock({ state }) {
        case .ready(let scheduler): return scheduler
        case .loading: throw APIError.unavailable("the model is loading; retry shortly")
        case .failed(let message): throw APIError.unavailable("the model failed to load: \(message)")
        }
    }
}

/// Builds the HTTP API: OpenAI/DeepSeek routes, errors in OpenAI's envelope, optional API key.
public enum KujiraServer {
    public static func makeRouter(host: ModelHost, configuration: ServerConfiguration, metrics: ServerMetrics) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware(metrics: metrics))
        if let key = configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
        let routes = Routes(host: host, configuration: configuration, metrics: metrics)
        router.get("/health") { _, _ in routes.health() }
        router.get("/metrics") { _, _ in routes.metricsText() }
        for path in ["/v1/models", "/models"] {
            router.get(RouterPath(path)) { _, _ in try routes.models() }
            router.get(RouterPath(path + "/:id")) { _, context in try routes.model(id: context.parameters.get("id") ?? "") }
        }
        for path in ["/v1/chat/completions", "/chat/completions"] {
            router.post(RouterPath(path)) { request, _ in try await routes.chatCompletions(request) }
        }
        for path in ["/v1/completions", "/completions", "/beta/completions", "/beta/v1/completions"] {
            router.post(RouterPath(path)) { request, _ in try await routes.completions(request, fim: path.hasPrefix("/beta")) }
        }
        return router
    }

    /// Loads the model on a background thread (the server answers 503 until it is ready) and serves until stopped.
    public static func run(modelPath: String, configuration: ServerConfiguration, logger: Logger) async throws {
        let host = ModelHost()
        let metrics = ServerMetrics()
        let router = makeRouter(host: host, configuration: configuration, metrics: metrics)
        let app = Application(router: router,
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                   serverName: "kujira"),
                              logger: logger)
        let loader = Thread {
            do {
                let pipeline = try TextPipeline.load(path: modelPath, contextLength: configuration.contextLength,
                                                       cachePrecision: configuration.cachePrecision, numerics: configuration.numerics)
                let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: configuration.maxConcurrent,
                                                    maxQueue: configuration.maxQueue, metrics: metrics)
                host.setReady(scheduler)
                logger.info("model loaded: \(pipeline.modelName), context \(pipeline.contextLength) tokens")
            } catch {
                host.setFailed("\(error)")
                logger.error("model failed to load: \(error)")
            }
        }
        loader.stackSize = 8 << 20
        loader.start()
        try await app.runService()
    }
}

/// Turns every thrown error into OpenAI's envelope (bad input never becomes a 500) and counts requests.
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            response = APIError.notFound(request.uri.path).makeResponse()
        } catch let error as HTTPError {
            response = APIError(status: error.status, message: error.body ?? "\(error.status.reasonPhrase)",
                                type: "invalid_request_error").makeResponse()
        } catch {
            response = APIError.from(error).makeResponse()
        }
        let path = request.uri.path
        metrics.countRequest(endpoint: Routes.knownPaths.contains(path) ? path : "other", status: response.status.code)
        return response
    }
}
