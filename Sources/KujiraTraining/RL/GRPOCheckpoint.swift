import Foundation
import KujiraFormats

/// GRPO checkpoints: the policy and AdamW state in the trainer's checkpoint layout (so the directory is a plain HF
/// model for `kujira generate`/`eval`) plus `grpo_state.json` (settings, PRNG, curriculum pass rates, history),
/// in one checkpoint directory published atomically; resume checks that all of them belong to the same step.
public enum GRPOCheckpoint {
    struct State: Codable {
        var step: Int
        var random: [String]
        var settings: GRPOSettings
        var referencePath: String
        var passRates: [Double?]
        var history: [GRPOStepRecord]
    }

    static let stateFile = "grpo_state.json"

    /// Publishes `root/step-N/` (policy, optimizer and `grpo_state.json` in one atomic checkpoint: `CheckpointDirectory`).
    @discardableResult
    public static func save(_ trainer: GRPOTrainer, to root: String, keep: Int = 3) throws -> String {
        try CheckpointDirectory(root: root).publish(step: trainer.step, keep: keep) { try write(trainer, into: $0) }
    }

    static func write(_ trainer: GRPOTrainer, into directory: String) throws {
        var training = TrainingSettings()
        training.optimizer = trainer.optimizer.settings
        training.task = trainer.settings.task
        training.balanceGamma = 0; training.balanceAlpha = 0; training.mtpWeight = 0
        let wrapper = Trainer(model: trainer.policy, optimizer: trainer.optimizer, settings: training, random: trainer.random, history: [])
        try Checkpoint.write(wrapper, into: directory)
        let state = State(step: trainer.optimizer.step, random: trainer.random.state.map { String($0, radix: 16) }, settings: trainer.settings,
                          referencePath: trainer.referencePath, passRates: trainer.passRates, history: trainer.history)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(try encoder.encode(state), to: (directory as NSString).appendingPathComponent(stateFile))
    }

    public static func resume(from run: String) throws -> GRPOTrainer {
        let directory = try Checkpoint.resolve(run)
        let path = (directory as NSString).appendingPathComponent(stateFile)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.badCheckpoint(path: path, detail: "missing (not a GRPO checkpoint)")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: data) } catch {
            throw TrainingError.badCheckpoint(path: path, detail: "unreadable: \(error)")
        }
        let restored = try Checkpoint.resume(from: directory)
        guard restored.optimizer.step == state.step else {
            throw TrainingError.badCheckpoint(path: path, detail: "is from update \(state.step), the model files from update \(restored.optimizer.step)")
        }
        let random = state.random.compactMap { UInt64($0, radix: 16) }
        guard random.count == 4 else { throw TrainingError.badCheckpoint(path: path, detail: "bad random state") }
        return try GRPOTrainer(policy: restored.model, optimizer: restored.optimizer, referencePath: state.referencePath, settings: state.settings,
                               random: TrainingRandom(state: random), passRates: state.passRates, history: state.history)
    }
}
