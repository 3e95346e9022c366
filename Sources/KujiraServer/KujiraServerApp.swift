import Foundation
import Hummingbird
import HummingbirdCore
import KujiraGeneration
import enum KujiraModels.KVCachePrecision
import enum KujiraTensor.Numerics
import Logging
import NIOCore
import ServiceLifecycle

/// Settings of `kujira serve`.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Clients must send `Authorization: Bearer <apiKey>` (or `X-Api-Key: <apiKey>`) when set.
    public var apiKey: String?
    /// Browser origins allowed to call the API from another site (`--cors-origin`; `*` = any); empty = no CORS.
    /// Preflight requests are answered before the API key is checked, as browsers send them without one.
    public var corsOrigins: [String] = []
    public var maxConcurrent = 1
    public var maxQueue = 16
    /// Context length (`--ctx`); nil = the model's maximum.
    public var contextLength: Int?
    /// KV-cache storage of every sequence (`--kv-bits`).
    public var cachePrecision = KVCachePrecision.float32
    /// Kujira's kernels or llama.cpp's arithmetic bit for bit (`--numerics`).
    public var numerics = Numerics.kujira
    /// A PEFT LoRA adapter directory applied unmerged, or nil.
    public var lora: String?
    /// Speculative decoding for every request (`--speculative`; by default MTP drafting where the model has the head and
    /// it pays); the output does not change.
    public var speculation: Speculation = .defaultAuto
    /// The drafting model of `Speculation.draft` (`--draft-model`).
    public var draftModel: String?
    /// Bytes of prompt-prefix KV rows shared across slots in RAM (`--cache-ram`); 0 = no shared cache.
    public var prefixCacheBytes = 0
    /// Directory where shared prefix blocks survive restarts (`--cache-dir`).
    public var prefixCacheDirectory: String?
    public var maxBodyBytes = ServerConfiguration.defaultMaxBodyBytes
    /// A connection with no complete request part (header, body chunk) for this long is closed: it bounds idle
    /// keep-alive connections, header reads and stalled bodies, never a response being written (`--idle-timeout`).
    public var idleTimeout: Duration? = .seconds(60)
    /// Open connections allowed; more are answered 503 and closed at once (`--max-connections`).
    public var maxConnections = 512
    /// After SIGTERM/SIGINT, how long open responses may take to end before they are cancelled.
    public var shutdownTimeout: Duration = .seconds(10)

    public static let defaultMaxBodyBytes = 4 << 20

    public init() {}
}

/// The model behind the server: loading (503), ready, failed to load (503 with the reason), or stopped (503).
public final class ModelHost: @unchecked Sendable {
    private enum State { case loading, ready(GenerationScheduler), failed(String), stopped }
    private let lock = NSLock()
    private var state = State.loading
    /// Unix time the server started (`created` of the model list).
    public let created = Int(Date().timeIntervalSince1970)

    public init() {}

    /// Serves `scheduler` from now on (or stops it at once when the server is already stopping).
    public func setReady(_ scheduler: GenerationScheduler) {
        let stopped = lock.withLock {
            if case .stopped = state { return true }
            state = .ready(scheduler)
            return false
        }
        if stopped { scheduler.shutdown() }
    }

    public func setFailed(_ message: String) {
        lock.withLock { if case .stopped = state {} else { state = .failed(message) } }
    }

    /// Refuses new requests and ends every queued and running generation with `APIError.shuttingDown`.
    public func shutdown() {
        let previous = lock.withLock {
            let previous = state
            state = .stopped
            return previous
        }
        if case .ready(let scheduler) = previous { scheduler.shutdown() }
    }

    /// The scheduler, or 503 while loading or stopping.
    public func scheduler() throws -> GenerationScheduler {
        switch lock.withLock({ state }) {
        case .ready(let scheduler): return scheduler
        case .loading: throw APIError.unavailable("the model is loading; retry shortly")
        case .failed(let message): throw APIError.unavailable("the model failed to load: \(message)")
        case .stopped: throw APIError.shuttingDown
        }
    }
}

/// A server ready to run: the HTTP application and the hook that ends generation when a graceful shutdown starts.
public struct KujiraServerInstance: Sendable {
    let group: ServiceGroup

    /// Serves until a graceful shutdown (SIGTERM/SIGINT when asked for, or `shutdown()`) has finished.
    public func run() async throws { try await group.run() }

    /// Starts a graceful shutdown: stop accepting, end open streams with an error event, close idle connections.
    public func shutdown() async { await group.triggerGracefulShutdown() }
}

/// Ends every generation once a graceful shutdown starts, so open streams finish (with an error event) and the
/// HTTP server, which waits for them, can stop. Runs before the server's own shutdown (services stop in reverse).
struct GenerationShutdownService: Service {
    let host: ModelHost
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down: open generations end with an error event")
        host.shutdown()
    }
}

/// The shared prefix cache `serve` was asked for (`--cache-ram` and/or `--cache-dir`), or nil. Its fingerprint names the
/// weights by path, size and modification time, and the cache layout, so blocks of other weights are never used.
func makePrefixCache(pipeline: TextPipeline, modelPath: String, configuration: ServerConfiguration) throws -> PrefixCache? {
    guard configuration.prefixCacheBytes > 0 || configuration.prefixCacheDirectory != nil else { return nil }
    let attributes = try? FileManager.default.attributesOfItem(atPath: modelPath)
    let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
    let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    let model = "\(URL(fileURLWithPath: modelPath).standardizedFileURL.path)|\(size)|\(modified)|\(configuration.lora ?? "")"
    let layout = pipeline.model.makeCache().layoutDescription
    return try PrefixCache(model: model, layout: layout, budgetBytes: configuration.prefixCacheBytes > 0 ? configuration.prefixCacheBytes : 256 << 20,
                           directory: configuration.prefixCacheDirectory)
}

/// Builds the HTTP API: OpenAI/DeepSeek routes, errors in OpenAI's envelope, optional API key.
public enum KujiraServer {
    public static func makeRouter(host: ModelHost, configuration: ServerConfiguration, metrics: ServerMetrics) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorEnvelopeMiddleware(metrics: metrics))
        if !configuration.corsOrigins.isEmpty { router.add(middleware: AllowedOriginsMiddleware(origins: configuration.corsOrigins)) }
        // The web chat's page needs no key (it asks for one and sends it with its API calls).
        if let key = configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key, openPaths: ["/health", "/"])) }
        let routes = Routes(host: host, configuration: configuration, metrics: metrics)
        router.get("/") { _, _ in routes.webChat() }
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

    /// The application on `configuration`'s address with its limits: idle timeout, connection bound and the
    /// shutdown hook. `onListening` gets the bound port (useful with port 0); `handleSignals` makes SIGTERM and
    /// SIGINT start a graceful shutdown.
    public static func makeServer(host: ModelHost, configuration: ServerConfiguration, metrics: ServerMetrics,
                                  logger: Logger, handleSignals: Bool = false,
                                  onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> KujiraServerInstance {
        let router = makeRouter(host: host, configuration: configuration, metrics: metrics)
        let limiter = ConnectionLimiter(limit: configuration.maxConnections, metrics: metrics)
        let idleTimeout = configuration.idleTimeout.map { TimeAmount($0) }
        let server = HTTPServerBuilder { responder in
            LimitedHTTP1Channel(http: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: idleTimeout)),
                                limiter: limiter)
        }
        let app = Application(router: router, server: server,
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                                   serverName: "kujira"),
                              onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
                              logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: GenerationShutdownService(host: host, logger: logger))],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        return KujiraServerInstance(group: ServiceGroup(configuration: groupConfiguration))
    }

    /// Loads the model on a background thread (the server answers 503 until it is ready) and serves until SIGTERM or
    /// SIGINT: then it stops accepting, ends open streams with an error event and returns once they are closed.
    public static func run(modelPath: String, configuration: ServerConfiguration, logger: Logger) async throws {
        let host = ModelHost()
        let metrics = ServerMetrics()
        let server = makeServer(host: host, configuration: configuration, metrics: metrics, logger: logger, handleSignals: true)
        let loader = Thread {
            do {
                let pipeline = try TextPipeline.load(path: modelPath, lora: configuration.lora, contextLength: configuration.contextLength,
                                                       cachePrecision: configuration.cachePrecision, numerics: configuration.numerics,
                                                       speculation: configuration.speculation, draftModel: configuration.draftModel)
                let scheduler = GenerationScheduler(pipeline: pipeline, maxConcurrent: configuration.maxConcurrent,
                                                    maxQueue: configuration.maxQueue, metrics: metrics,
                                                    prefixCache: try makePrefixCache(pipeline: pipeline, modelPath: modelPath, configuration: configuration))
                host.setReady(scheduler)
                logger.info("model loaded: \(pipeline.modelName), context \(pipeline.contextLength) tokens")
            } catch {
                host.setFailed("\(error)")
                logger.error("model failed to load: \(error)")
            }
        }
        loader.stackSize = 8 << 20
        loader.start()
        try await server.run()
        logger.info("server stopped")
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
