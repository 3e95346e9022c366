import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor

/// Fine-tuning checkpoints: `run/step-N/` holds a plain Hugging Face model directory (config.json, model.safetensors,
/// the base model's tokenizer and chat template files) plus optimizer.safetensors and trainer_state.json; each is
/// published whole with one rename (`CheckpointDirectory`), so a run killed at any moment resumes from its newest
/// complete step.
public enum SFTCheckpoint {
    /// Tokenizer, template and generation files copied from the base model into every checkpoint.
    public static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                                        "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt"]

    struct State: Codable {
        var step: Int
        var settings: SFTSettings
        var history: [SFTRecord]
    }

    /// The directory whose tokenizer files a run copies: the base model's directory. A GGUF base has none to copy.
    public static func tokenizerSource(_ model: String) throws -> String {
        let directory = CheckpointDirectory.modelDirectory(model)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("tokenizer.json")) else {
            throw TrainingError.unsupported("full fine-tuning of \(model): checkpoints are Hugging Face directories and need the base model's tokenizer.json (use a model directory, or LoRA for a GGUF file)")
        }
        return directory
    }

    /// Publishes `trainer`'s state as `root/step-N/` and returns that directory.
    @discardableResult
    public static func save(_ trainer: SFTTrainer, to root: String) throws -> String {
        try CheckpointDirectory(root: root).publish(step: trainer.step, keep: trainer.settings.keep) { try write(trainer, into: $0) }
    }

    /// Writes the checkpoint files into `directory`: the model (or the LoRA adapter), optimizer moments, trainer state.
    public static func write(_ trainer: SFTTrainer, into directory: String) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let model = trainer.model
        if model.lora != nil {
            try model.writeAdapter(to: directory, baseModel: trainer.settings.model)
        } else {
            try writeModel(model, base: trainer.settings.model, step: trainer.step, into: directory)
        }
        try trainer.optimizer.writeMoments(of: model.parameters, step: trainer.step, to: path("optimizer.safetensors"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(State(step: trainer.step, settings: trainer.settings, history: trainer.history)),
                             to: path("trainer_state.json"))
    }

    /// A full fine-tuning checkpoint's model: config.json, model.safetensors and the base tokenizer files.
    static func writeModel(_ model: DecoderTrainingModel, base: String, step: Int, into directory: String) throws {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let step = String(step)
        var config = model.config.values
        config["torch_dtype"] = .string("float32")
        try AtomicFile.write(JSONValue.object(config).serialized(), to: path("config.json"))
        try SafeTensorsWriter.write(model.parameters.tensors(gradients: false), metadata: ["format": "pt", "step": step], to: path("model.safetensors"))
        let source = try tokenizerSource(base)
        for name in tokenizerFiles {
            let from = (source as NSString).appendingPathComponent(name)
            if let data = FileManager.default.contents(atPath: from) { try AtomicFile.write(data, to: path(name)) }
        }
    }

    /// The run saved in `run` (its newest complete checkpoint), ready to continue: weights, optimizer moments and step,
    /// history, and the data schedule rebuilt from the saved settings.
    public static func resume(from run: String) throws -> SFTTrainer {
        let directory = try Checkpoint.resolve(run)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        guard let stateData = FileManager.default.contents(atPath: path("trainer_state.json")) else {
            throw TrainingError.badCheckpoint(path: path("trainer_state.json"), detail: "missing (not a fine-tuning checkpoint)")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: stateData) } catch {
            throw TrainingError.badCheckpoint(path: path("trainer_state.json"), detail: "unreadable: \(error)")
        }
        if state.settings.lora == nil {
            let saved = try SafeTensorsFile(path: path("model.safetensors")).metadata["step"]
            guard saved == String(state.step) else {
                throw TrainingError.badCheckpoint(path: path("model.safetensors"), detail: "is from step \(saved ?? "?"), trainer_state.json from step \(state.step)")
            }
        }
        let model = state.settings.lora == nil ? try DecoderTrainingModel(path: directory)
            : try DecoderTrainingModel.lora(path: state.settings.model, adapterDirectory: directory)
        let optimizer = AdamW(settings: state.settings.optimizer, parameterCount: model.parameters.count)
        try optimizer.readMoments(of: model.parameters, step: state.step, from: path("optimizer.safetensors"))
        let data = try SFTData.load(settings: state.settings, formatterPath: state.settings.lora == nil ? directory : state.settings.model)
        return try SFTTrainer(model: model, settings: state.settings, schedule: data.schedule, evalSequences: data.eval,
                              optimizer: optimizer, history: state.history)
    }
}

/// The packed training and eval data of a run's settings.
public enum SFTData {
    /// Tokenizes `settings.data` (and `evalData`) with the tokenizer and template at `formatterPath`, and packs them.
    public static func load(settings: SFTSettings, formatterPath: String) throws -> (schedule: SFTSchedule, eval: [PackedSequence]) {
        let formatter = try SFTFormatter(modelPath: formatterPath)
        let pad = formatter.tokenizer.eosTokenIds.first ?? 0  // padding has no targets, so its id only has to exist
        let train = try formatter.load(file: settings.data, maxLength: settings.length)
        let eval = try settings.evalData.map { try formatter.load(file: $0, maxLength: settings.length) } ?? []
        return (SFTSchedule(examples: train, length: settings.length, padId: pad, seed: settings.seed),
                SFTSchedule.pack(eval, length: settings.length, padId: pad))
    }
}
