import Foundation
import KujiraFormats
import KujiraModels

/// Checkpoints in Hugging Face layout (config.json, model.safetensors incl. the MTP layer, tokenizer files) plus the
/// training state (optimizer.safetensors, trainer_state.json). Every file is written atomically; trainer_state.json
/// goes last and names the step the other files belong to, so a crash mid-save is detected at resume.
public enum Checkpoint {
    /// The model's tensors as saved: every parameter (routed experts in deepseek-ai's per-expert layout,
    /// `mlp.experts.E.gate_proj.weight` …, what transformers 4 and 5, vLLM and SGLang read), and for the MTP layer
    /// deepseek-ai's copies of the shared embedding and head (`embed_tokens`, `shared_head.head`).
    public static func modelTensors(_ model: DecoderTrainingModel) throws -> [SafeTensorsWriter.Tensor] {
        var tensors = model.parameters.tensors(gradients: false)
        if let mtp = model.multiTokenPrediction {
            for (copy, shared) in [(MultiTokenPrediction.Names.embedding, mtp.embeddingName), (MultiTokenPrediction.Names.head, mtp.headName)]
            where !model.parameters.contains("\(mtp.prefix).\(copy)") {
                let entry = try model.parameters.entry(shared)
                tensors.append(.float32("\(mtp.prefix).\(copy)", shape: entry.shape, values: try model.parameters.array(shared)))
            }
        }
        return tensors
    }

    /// config.json as deepseek-ai writes it: the run's config keys, with architectures, dtype and token ids filled in.
    static func configJSON(_ config: ModelConfig, tokenizer: CharacterTokenizer) throws -> Data {
        var values = config.values
        if values["architectures"] == nil, case .string("deepseek_v3")? = values["model_type"] {
            values["architectures"] = .array([.string("DeepseekV3ForCausalLM")])
        }
        values["torch_dtype"] = .string("float32")
        if values["bos_token_id"] == nil { values["bos_token_id"] = .integer(tokenizer.bosId) }
        if values["eos_token_id"] == nil { values["eos_token_id"] = .integer(tokenizer.eosId) }
        return JSONValue.object(values).serialized()
    }

    /// What trainer_state.json holds.
    struct State: Codable {
        var step: Int
        /// The data PRNG state, hex (exact through JSON).
        var random: [String]
        var settings: TrainingSettings
        var history: [StepRecord]
    }

    /// Publishes a checkpoint of `trainer` as `root/step-N/` (a complete, fsynced directory renamed into place, then
    /// `root/latest` pointed at it; the newest `keep` are kept: `CheckpointDirectory`). Returns its directory.
    @discardableResult
    public static func save(_ trainer: Trainer, to root: String, keep: Int = 3) throws -> String {
        try CheckpointDirectory(root: root).publish(step: trainer.step, keep: keep) { try write(trainer, into: $0) }
    }

    /// The checkpoint `path` names: the newest complete `step-N` of the run directory `path` (what an interrupted save
    /// left behind is removed first), else `path` itself when it is a checkpoint (a `step-N`, or a run saved in the
    /// older flat layout: it holds `trainer_state.json`).
    public static func resolve(_ path: String) throws -> String {
        let run = CheckpointDirectory(root: path)
        run.removeTemporaries()
        if let newest = run.newest() { return newest }
        guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("trainer_state.json")) else {
            throw TrainingError.badCheckpoint(path: path, detail: "no complete checkpoint (step-N directory) to resume from")
        }
        return path
    }

    /// Writes everything needed to load the model for inference and to resume training identically into `directory`
    /// (files only; `save` makes the directory durable and publishes it).
    public static func write(_ trainer: Trainer, into directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let model = trainer.model
        let stepText = String(trainer.step)
        try AtomicFile.write(try configJSON(model.config, tokenizer: trainer.tokenizer), to: path("config.json"))
        try SafeTensorsWriter.write(try modelTensors(model), metadata: ["format": "pt", "step": stepText], to: path("model.safetensors"))
        try trainer.tokenizer.write(to: directory)
        let generation: [String: Any] = ["bos_token_id": trainer.tokenizer.bosId, "eos_token_id": trainer.tokenizer.eosId, "do_sample": false]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: generation, options: [.sortedKeys]), to: path("generation_config.json"))
        try trainer.optimizer.writeMoments(of: model.parameters, step: trainer.step, to: path("optimizer.safetensors"))
        let state = State(step: trainer.step, random: trainer.random.state.map { String($0, radix: 16) }, settings: trainer.settings,
                          history: trainer.history)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(state), to: path("trainer_state.json"))
    }

    /// Restores a run saved by `save`: weights (incl. balancing biases), optimizer moments and step, data PRNG, history.
    public static func resume(from run: String) throws -> Trainer {
        let directory = try resolve(run)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        guard let stateData = FileManager.default.contents(atPath: path("trainer_state.json")) else {
            throw TrainingError.badCheckpoint(path: path("trainer_state.json"), detail: "missing (not a training checkpoint)")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: stateData) } catch {
            throw TrainingError.badCheckpoint(path: path("trainer_state.json"), detail: "unreadable: \(error)")
        }
        let randomState = state.random.compactMap { UInt64($0, radix: 16) }
        guard randomState.count == 4 else { throw TrainingError.badCheckpoint(path: path("trainer_state.json"), detail: "bad random state") }
        let model = try DecoderTrainingModel(config: try ModelConfig(path: directory), trainMTP: true)
        let weightsPath = path("model.safetensors")
        let savedStep = try SafeTensorsFile(path: weightsPath).metadata["step"]
        guard savedStep == String(state.step) else {
            throw TrainingError.badCheckpoint(path: weightsPath, detail: "is from step \(savedStep ?? "?"), trainer_state.json from step \(state.step)")
        }
        try model.parameters.load(from: try SafeTensorsStore(files: [weightsPath], source: weightsPath))
        try model.refresh()
        let optimizer = AdamW(settings: state.settings.optimizer, parameterCount: model.parameters.count)
        try optimizer.readMoments(of: model.parameters, step: state.step, from: path("optimizer.safetensors"))
        return Trainer(model: model, optimizer: optimizer, settings: state.settings, random: TrainingRandom(state: randomState),
                       history: state.history)
    }
}
