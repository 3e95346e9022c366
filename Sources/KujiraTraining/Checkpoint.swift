import Foundation
import KujiraFormats
import KujiraModels

/// Checkpoints in Hugging Face layout (config.json, model.safetensors incl. the MTP layer, tokenizer files) plus the
/// training state (optimizer.safetensors, trainer_state.json). Every file is written atomically; trainer_state.json
/// goes last and names the step the other files belong to, so a crash mid-save is detected at resume.
public enum Checkpoint {
    /// The model's tensors as saved: every parameter, routed experts in deepseek-ai's per-expert layout
    /// (`mlp.experts.E.gate_proj.weight` …, what transformers 4 and 5, vLLM and SGLang read; the trainer stacks them in
    /// memory), and for the MTP layer deepseek-ai's copies of the shared embedding and head (`embed_tokens`,
    /// `shared_head.head`).
    public static func modelTensors(_ model: DeepseekTrainingModel) throws -> [SafeTensorsWriter.Tensor] {
        var tensors: [SafeTensorsWriter.Tensor] = []
        for e in model.parameters.entries {
            let values = UnsafeBufferPointer(start: model.parameters.values + e.offset, count: e.count)
            if e.name.hasSuffix(".experts.gate_up_proj") || e.name.hasSuffix(".experts.down_proj") {
                let prefix = e.name.hasSuffix("gate_up_proj") ? String(e.name.dropLast("gate_up_proj".count)) : String(e.name.dropLast("down_proj".count))
                let experts = e.shape[0], rows = e.shape[1], cols = e.shape[2], per = rows * cols
                for expert in 0..<experts {
                    let base = expert * per
                    if e.name.hasSuffix("gate_up_proj") {
                        let half = rows / 2
                        tensors.append(.float32("\(prefix)\(expert).gate_proj.weight", shape: [half, cols], values: Array(values[base..<(base + half * cols)])))
                        tensors.append(.float32("\(prefix)\(expert).up_proj.weight", shape: [half, cols], values: Array(values[(base + half * cols)..<(base + per)])))
                    } else {
                        tensors.append(.float32("\(prefix)\(expert).down_proj.weight", shape: [rows, cols], values: Array(values[base..<(base + per)])))
                    }
                }
            } else {
                tensors.append(.float32(e.name, shape: e.shape, values: Array(values)))
            }
        }
        if model.hasMTP {
            let p = "model.layers.\(model.configuration.layers)"
            let shape = [model.configuration.vocabSize, model.configuration.hiddenSize]
            tensors.append(.float32("\(p).embed_tokens.weight", shape: shape, values: try model.parameters.array("model.embed_tokens.weight")))
            tensors.append(.float32("\(p).shared_head.head.weight", shape: shape, values: try model.parameters.array("lm_head.weight")))
        }
        return tensors
    }

    /// config.json as deepseek-ai writes it: the run's config keys, with architectures, dtype and token ids filled in.
    static func configJSON(_ config: ModelConfig, tokenizer: CharacterTokenizer) throws -> Data {
        var values = config.values
        values["architectures"] = .array([.string("DeepseekV3ForCausalLM")])
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
        var moments: [SafeTensorsWriter.Tensor] = []
        for e in model.parameters.entries where e.trainable {
            moments.append(.float32("exp_avg.\(e.name)", shape: e.shape, values: Array(UnsafeBufferPointer(start: trainer.optimizer.m.pointer + e.offset, count: e.count))))
            moments.append(.float32("exp_avg_sq.\(e.name)", shape: e.shape, values: Array(UnsafeBufferPointer(start: trainer.optimizer.v.pointer + e.offset, count: e.count))))
        }
        try SafeTensorsWriter.write(moments, metadata: ["step": stepText], to: path("optimizer.safetensors"))
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
        let model = try DeepseekTrainingModel(config: try ModelConfig(path: directory))
        let weights = try SafeTensorsStore(files: [path("model.safetensors")], source: path("model.safetensors"))
        try model.parameters.load(from: weights)
        let moments = try SafeTensorsStore(files: [path("optimizer.safetensors")], source: path("optimizer.safetensors"))
        for (file, store) in [("model.safetensors", weights), ("optimizer.safetensors", moments)] {
            let metadataStep = try SafeTensorsFile(path: path(file)).metadata["step"]
            guard metadataStep == String(state.step) else {
                throw TrainingError.badCheckpoint(path: path(file), detail: "is from step \(metadataStep ?? "?"), trainer_state.json from step \(state.step)")
            }
            _ = store
        }
        let optimizer = AdamW(settings: state.settings.optimizer, parameterCount: model.parameters.count)
        optimizer.step = state.step
        for e in model.parameters.entries where e.trainable {
            for (prefix, buffer) in [("exp_avg.", optimizer.m), ("exp_avg_sq.", optimizer.v)] {
                let values = try moments.tensor(prefix + e.name, shape: e.shape).toFloatArray()
                values.withUnsafeBufferPointer { (buffer.pointer + e.offset).update(from: $0.baseAddress!, count: e.count) }
            }
        }
        return Trainer(model: model, optimizer: optimizer, settings: state.settings, random: TrainingRandom(state: randomState),
                       history: state.history)
    }
}
