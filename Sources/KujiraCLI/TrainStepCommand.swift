import ArgumentParser
import Foundation
import KujiraFormats
import KujiraModels
import KujiraTraining

/// `kujira train-step`: one forward + backward pass; prints the loss and optionally writes every gradient.
struct TrainStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Compute the training loss of one token sequence and (optionally) every parameter's gradient.",
        discussion: #"Example: kujira train-step --model Tests/Fixtures/models/deepseek-v3-tiny --tokens 1,2,3,4"#)

    @Option(help: "Model directory (config.json + safetensors) of a trainable architecture (or org/name from `kujira pull`).", transform: resolveModelArgument)
    var model: String

    @Option(help: "Comma-separated token ids of one sequence (at least 2).")
    var tokens: String

    @Option(help: "Write the gradients (F32, HF tensor names) to this safetensors file, atomically.")
    var dumpGrads: String?

    @Option(help: "MTP loss weight λ (models with num_nextn_predict_layers: 1).")
    var mtpWeight: Float = 0.3

    @Option(help: "Sequence-wise balance loss weight α (0: off).")
    var balanceAlpha: Float = 0

    func validate() throws {
        guard try parseTokenList(tokens).count >= 2 else { throw ValidationError("--tokens: need at least 2 tokens") }
    }

    func run() throws {
        let ids = try parseTokenList(tokens)
        let trainer = try DecoderTrainingModel(path: model, trainMTP: true)
        trainer.parameters.zeroGradients()
        let shape = TrainingShape(batch: 1, length: ids.count)
        let result = try trainer.forwardBackward(tokens: ids, targets: DecoderTrainingModel.nextTokenTargets(ids, shape: shape), shape: shape,
                                                 settings: LossSettings(mtpWeight: mtpWeight, balanceAlpha: balanceAlpha))
        var line = "loss \(result.loss)"
        if let mtp = result.mtpLoss { line += " (main \(result.mainLoss), mtp \(mtp))" }
        print(line)
        if let path = dumpGrads {
            try SafeTensorsWriter.write(trainer.parameters.tensors(gradients: true), to: path)
            print("gradients of \(trainer.parameters.entries.filter(\.trainable).count) tensors written to \(path)")
        }
    }
}
