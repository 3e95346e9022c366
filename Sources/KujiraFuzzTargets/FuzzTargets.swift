import Foundation
import KujiraFormats
import KujiraModels
import KujiraServer
import KujiraTensor
import KujiraTokenizer

/// The fuzz targets: each takes arbitrary bytes, runs them through a loader the way a hostile file or request
/// would reach it, and must return or throw — never crash, hang or allocate without bound (scripts/fuzz.sh runs them
/// under libFuzzer; KujiraFuzzTests replays the corpus and the crash regressions).
public enum FuzzTarget: String, CaseIterable, Sendable {
    case gguf, safetensors, config, tokenizer, template, request

    /// Runs one input. Errors are the expected outcome for most inputs and are swallowed; what matters is that the
    /// call returns.
    public func run(_ data: Data, workspace: FuzzWorkspace) {
        switch self {
        case .gguf: Self.gguf(data, workspace)
        case .safetensors: Self.safetensors(data, workspace)
        case .config: Self.config(data, workspace)
        case .tokenizer: Self.tokenizer(data, workspace)
        case .template: Self.template(data)
        case .request: Self.request(data)
        }
    }

    /// A request body, checked as `/v1/chat/completions` and as `/v1/completions` check it.
    static func request(_ data: Data) {
        _ = try? RequestValidation.validate(body: data, path: "/v1/chat/completions")
        _ = try? RequestValidation.validate(body: data, path: "/v1/completions")
    }

    /// Largest element count a fuzz input may decode (a tiny file can still name a large, valid-looking tensor).
    static let maxElements = 1 << 20

    /// A GGUF file: the directory, every small tensor dequantized, the model built and run, the vocabulary loaded.
    static func gguf(_ data: Data, _ workspace: FuzzWorkspace) {
        guard let path = workspace.write(data, name: "model.gguf") else { return }
        if let file = try? GGUFFile(path: path) {
            let store = GGUFWeightStore(file: file)
            for info in file.tensorInfos.prefix(64) where info.elementCount <= maxElements {
                _ = try? store.tensor(info.name).toFloatArray()
            }
        }
        runModel { try ModelRegistry.load(directory: path) }
        if let tokenizer = try? Tokenizer.load(path: path) { exercise(tokenizer) }
    }

    /// A safetensors file: the header validated, every small tensor converted to floats.
    static func safetensors(_ data: Data, _ workspace: FuzzWorkspace) {
        guard let path = workspace.write(data, name: "model.safetensors"), let file = try? SafeTensorsFile(path: path) else { return }
        for name in file.tensorNames.prefix(64) {
            guard let tensor = try? file.tensor(name), tensor.elementCount <= maxElements else { continue }
            _ = tensor.toFloatArray()
        }
    }

    /// A `config.json`: parsed, its architecture's parameter layout and cache streams computed, then built over a tiny
    /// real checkpoint of the same family (as when a user edits a downloaded config) and run for two tokens.
    static func config(_ data: Data, _ workspace: FuzzWorkspace) {
        guard let config = try? ModelConfig(data: data, path: "config.json") else { return }
        _ = try? ModelSummary(config: config)
        guard let type = try? config.modelType, let weights = workspace.weights(forModelType: type) else { return }
        runModel { try ModelRegistry.build(config: config, weights: weights) }
    }

    /// A `tokenizer.json`: loaded, then used to encode and decode text with special tokens in it.
    static func tokenizer(_ data: Data, _ workspace: FuzzWorkspace) {
        guard let path = workspace.write(data, name: "tokenizer.json"), let tokenizer = try? Tokenizer.load(path: path) else { return }
        exercise(tokenizer)
    }

    /// A chat template: parsed and rendered over a conversation with a system prompt, a tool call and tools.
    static func template(_ data: Data) {
        guard let source = String(data: data, encoding: .utf8), let template = try? ChatTemplate(source: source) else { return }
        _ = try? template.render(messages: sampleMessages, addGenerationPrompt: true, tools: sampleTools, bosToken: "<s>", eosToken: "</s>",
                                 extra: ["enable_thinking": .bool(false)])
    }

    static let sampleMessages: [JinjaValue] = (try? JinjaValue(json: Data("""
        [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "What is 2+3?"},
         {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}}]},
         {"role": "tool", "content": "5"}, {"role": "assistant", "content": "<think>easy</think>5"}, {"role": "user", "content": "Thanks"}]
        """.utf8)).arrayValue) ?? []
    static let sampleTools: [JinjaValue] = (try? JinjaValue(json: Data("""
        [{"type": "function", "function": {"name": "add", "description": "Adds", "parameters": {"type": "object",
          "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}]
        """.utf8)).arrayValue) ?? []

    static func exercise(_ tokenizer: Tokenizer) {
        var text = "Hello, world! 123 héllo 日本 \n\t  <s></s><|im_start|>"
        if let bos = tokenizer.bosToken { text += bos }
        let ids = tokenizer.encode(text, addSpecialTokens: true)
        _ = tokenizer.decode(ids)
        _ = tokenizer.decode([0, 1, 2, -1, Int.max, tokenizer.vocabSize], skipSpecialTokens: true)
    }

    /// Builds a model and, if it is small, runs two tokens through it (build errors are expected).
    static func runModel(_ build: () throws -> any LanguageModel) {
        guard let model = try? build(), model.summary.totalParameters <= maxElements else { return }
        let cache = model.makeCache()
        let tokens = [0, min(1, model.vocabSize - 1)]
        _ = try? model.forward(tokens, cache: cache, allLogits: true)
        _ = try? model.decode(0, cache: cache)
    }
}

extension JinjaValue {
    fileprivate var arrayValue: [JinjaValue]? {
        if case .array(let items) = self { return items }
        return nil
    }
}

/// A scratch directory for one fuzzing process (in /dev/shm when there is one) and the tiny checkpoints the config
/// target builds over.
public final class FuzzWorkspace: @unchecked Sendable {
    public let directory: String
    private let checkpoints: [String: String]
    private var stores: [String: any WeightStore] = [:]

    /// `fixtures`: a directory of tiny HF checkpoints (`Tests/Fixtures/models`); each one's `model_type` maps to it.
    public init(fixtures: String?) {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        directory = (base as NSString).appendingPathComponent("kujira-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var checkpoints: [String: String] = [:]
        if let fixtures, let names = try? FileManager.default.contentsOfDirectory(atPath: fixtures) {
            for name in names.sorted() {
                let dir = (fixtures as NSString).appendingPathComponent(name)
                guard let config = try? ModelConfig(path: dir), let type = try? config.modelType, checkpoints[type] == nil else { continue }
                checkpoints[type] = dir
            }
        }
        self.checkpoints = checkpoints
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The `model_type`s with a checkpoint to build over.
    public var modelTypes: [String] { checkpoints.keys.sorted() }

    /// Writes `data` to `name` in the scratch directory and returns its path.
    func write(_ data: Data, name: String) -> String? {
        let path = (directory as NSString).appendingPathComponent(name)
        return FileManager.default.createFile(atPath: path, contents: data) ? path : nil
    }

    /// The weights of the tiny checkpoint of `modelType`, opened once.
    func weights(forModelType modelType: String) -> (any WeightStore)? {
        if let store = stores[modelType] { return store }
        guard let dir = checkpoints[modelType], let store = try? SafeTensorsStore(directory: dir) else { return nil }
        stores[modelType] = store
        return store
    }
}
