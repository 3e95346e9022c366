import ArgumentParser
import Foundation
import KujiraServer
import Logging

/// `kujira serve`: a DeepSeek/OpenAI-compatible HTTP API for one model.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over a DeepSeek/OpenAI-compatible HTTP API (chat, completions, FIM, models).",
        discussion: #"Example: kujira serve --model model.gguf --port 8080 --api-key sk-local --max-concurrent 4"#)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Option(help: "Address to bind (loopback by default).")
    var host = "127.0.0.1"

    @Option(help: "TCP port.")
    var port = 8080

    @Option(help: "Require 'Authorization: Bearer KEY' (default: the KUJIRA_API_KEY environment variable, else none).")
    var apiKey: String?

    @Option(help: "Sequences generated at the same time (each keeps its own KV cache).")
    var maxConcurrent = 1

    @Option(help: "Requests allowed to wait for a free slot; more get 429.")
    var maxQueue = 16

    @Option(help: "Context length in tokens (default: the model's maximum).")
    var ctx: Int?

    @Option(help: "Close a connection that sends no complete header or body chunk for this many seconds (idle keep-alive, slow headers, stalled bodies; never a response being written). 0 = never.")
    var idleTimeout = 60.0

    @Option(help: "Open connections allowed; more are answered 503 and closed at once.")
    var maxConnections = 512

    @Option(help: "Allow browser apps on this origin (e.g. http://localhost:5173) to call the API (CORS); repeat for more, '*' for any.")
    var corsOrigin: [String] = []

    @Option(help: "MiB of prompt-prefix KV rows shared by all slots (two users with the same system prompt compute it once); 0 = off (256 with --cache-dir).")
    var cacheRam = 0

    @Option(help: "Directory where shared prompt prefixes are kept across restarts (files written atomically; corrupt or foreign ones are ignored).")
    var cacheDir: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard maxConcurrent >= 1 else { throw ValidationError("--max-concurrent must be ≥ 1") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue must be ≥ 0") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be ≥ 2") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        guard (0...(1 << 20)).contains(cacheRam) else { throw ValidationError("--cache-ram must be in 0...1048576 MiB") }
        for origin in corsOrigin where origin != "*" && !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            throw ValidationError("--cors-origin: '\(origin)' is not an origin (http(s)://host[:port] or *)")
        }
        guard (0...1_000_000).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be in 0...1000000 seconds") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be ≥ 1") }
    }

    func run() async throws {
        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        let environmentKey = ProcessInfo.processInfo.environment["KUJIRA_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.apiKey = apiKey ?? environmentKey
        configuration.corsOrigins = corsOrigin
        configuration.maxConcurrent = maxConcurrent
        configuration.maxQueue = maxQueue
        configuration.contextLength = ctx
        configuration.idleTimeout = idleTimeout > 0 ? .milliseconds(Int64((idleTimeout * 1000).rounded())) : nil
        configuration.maxConnections = maxConnections
        configuration.cachePrecision = modelOptions.cachePrecision
        configuration.numerics = modelOptions.numerics
        configuration.lora = modelOptions.lora
        configuration.speculation = try speculationOptions.speculation()
        configuration.draftModel = speculationOptions.draftModelPath
        configuration.prefixCacheBytes = cacheRam << 20
        configuration.prefixCacheDirectory = cacheDir
        var logger = Logger(label: "kujira.serve")
        logger.logLevel = .info
        logger.info("serving \(modelOptions.model) on http://\(host):\(port) (API key \(configuration.apiKey == nil ? "off" : "on"), idle timeout \(idleTimeout > 0 ? "\(idleTimeout) s" : "off"), max \(maxConnections) connections)")
        try await KujiraServer.run(modelPath: modelOptions.model, configuration: configuration, logger: logger)
    }
}
