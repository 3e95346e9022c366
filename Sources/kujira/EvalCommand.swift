import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraModels
import KujiraTraining

/// `kujira eval`: pass@1, pass@k, format rate and mean length of a model on an arithmetic split, as JSON.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on a verifiable task: pass@1 (greedy and sampled), pass@k, format rate, mean length (JSON).")

    @Option(help: "Model directory (default: $KUJIRA_MODEL, else the embedded Models/kujira-arith).")
    var model: String?

    @Option(help: "Task: arithmetic.") var task: String = "arithmetic"
    @Option(help: "Split: heldout (never trained on) or train.") var split: String = "heldout"
    @Option(help: "Operations: any of + - * (e.g. +-).") var ops: String = "+-"
    @Option(help: "Operand digit counts, e.g. 3 or 1-3.") var digits: String = "1-3"
    @Option(help: "Number of problems.") var problems: Int = 200
    @Option(help: "Samples per problem for pass@k (0: greedy only).") var k: Int = 0
    @Option(help: "Sampling temperature for the k samples.") var temperature: Float = 1.0
    @Option(help: "Seed of the problem set (train split) and of the sampling.") var seed: UInt64 = 0x5EED

    func validate() throws {
        guard task == "arithmetic" else { throw ValidationError("--task: only 'arithmetic' is available") }
        guard split == "heldout" || split == "train" else { throw ValidationError("--split: use heldout or train, got '\(split)'") }
        guard !ops.isEmpty, ops.allSatisfy({ "+-*".contains($0) }) else { throw ValidationError("--ops: use characters from + - *") }
        _ = try parseDigitRange(digits)
        guard problems > 0, k >= 0 else { throw ValidationError("--problems must be positive and --k ≥ 0") }
        guard k == 0 || (temperature > 0 && temperature.isFinite) else { throw ValidationError("--k > 0 needs --temperature > 0") }
    }

    func run() throws {
        let path = try DefaultModel.resolve(model)
        try ModelOptions.check(path)
        let arithmetic = ArithmeticTask(operations: ops.compactMap { ArithmeticOperation(rawValue: String($0)) }, digits: try parseDigitRange(digits))
        let set: [ArithmeticProblem]
        if split == "heldout" {
            set = arithmetic.heldOutSet(count: problems, seed: seed)
        } else {
            var rng = TrainingRandom(seed: seed)
            set = (0..<problems).map { _ in arithmetic.sample(&rng) }
        }
        let evaluator = ArithmeticEvaluator(model: try ModelRegistry.load(directory: path))
        let result = try evaluator.evaluate(set, k: k, temperature: temperature, seed: seed)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var json = String(decoding: try encoder.encode(result), as: UTF8.self)
        json.insert(contentsOf: "\n  \"model\" : \"\(path)\",\n  \"split\" : \"\(split)\",\n  \"ops\" : \"\(ops)\",\n  \"digits\" : \"\(digits)\",", at: json.index(after: json.startIndex))
        print(json)
    }
}

/// Parses `N` or `A-B` (1 ≤ A ≤ B ≤ 9) into a digit-count range.
func parseDigitRange(_ text: String) throws -> ClosedRange<Int> {
    let parts = text.split(separator: "-").compactMap { Int($0) }
    guard parts.count == 1 || parts.count == 2, let lo = parts.first, let hi = parts.last, lo >= 1, hi >= lo, hi <= 9 else {
        throw ValidationError("--digits: expected N or A-B with 1 ≤ A ≤ B ≤ 9, got '\(text)'")
    }
    return lo...hi
}
