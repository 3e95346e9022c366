import Prometheus

/// Prometheus metrics of the server (`GET /metrics`): requests, tokens, tokens/s, queue depth, connections.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let promptTokens: Counter
    public let generatedTokens: Counter
    public let queueDepth: Gauge
    public let activeSequences: Gauge
    /// Generation speed of the last finished request.
    public let tokensPerSecond: Gauge
    /// TCP connections open now (bounded by `--max-connections`).
    public let openConnections: Gauge
    /// Connections refused because `--max-connections` were open.
    public let refusedConnections: Counter

    public init() {
        promptTokens = registry.makeCounter(name: "kujira_prompt_tokens_total", help: "Prompt tokens processed")
        generatedTokens = registry.makeCounter(name: "kujira_generated_tokens_total", help: "Tokens generated")
        queueDepth = registry.makeGauge(name: "kujira_queue_depth", help: "Requests waiting for a slot")
        activeSequences = registry.makeGauge(name: "kujira_active_sequences", help: "Sequences being generated")
        tokensPerSecond = registry.makeGauge(name: "kujira_generation_tokens_per_second",
                                             help: "Decode speed of the last finished request")
        openConnections = registry.makeGauge(name: "kujira_open_connections", help: "HTTP connections open now")
        refusedConnections = registry.makeCounter(name: "kujira_refused_connections_total",
                                                  help: "Connections refused because --max-connections were open")
    }

    /// Counts one request by route and status code.
    public func countRequest(endpoint: String, status: Int) {
        registry.makeCounter(name: "kujira_requests_total", labels: [("endpoint", endpoint), ("status", String(status))],
                             help: "HTTP requests by endpoint and status").increment()
    }

    /// The text exposition format.
    public func render() -> String { registry.emitToString() }
}
