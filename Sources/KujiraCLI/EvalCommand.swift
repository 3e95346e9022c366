import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraModels
import KujiraTraining

/// `kujira eval`: pass@1, pass@k, format rate and mean length of a model on an arithmetic split, as JSON.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model on a verifiable task: pass@1 (greedy and sampled), pass@k, format rate, mean length (JSON).",
        discussion: #"Example: kujira eval --model runs/add3 --digits 3 --problems 200 --k 8"#)

    @Option(help: "Model directory (default: $KUJIRA_MODEL, else the embedded Models/kujira-arith).")
    var model: String?

    @Option(help: "Task: arithmetic.") var task: String = "arithmetic"
    @Option(help: "Split: heldout (never trained on) or train.") var split: String = "heldout"
    @Option(help: "Operations: any of + - * (e.g. +-).") var ops: String = "+-"
    @Option(help: "Operand digit counts, e.g. 3 or 1-3.") var digits: String = "1-3"
    @Flag(help: "Draw the two operands' digit counts independently (e.g. 123+45).") var mixedLengths = false
    @Option(help: "Number of problems.") var problems: Int = 200
    @Option(help: "Samples per problem for pass@k (0: greedy only).") var k: Int = 0
    @Option(help: "Sampling temperature for the k samples.") var temperature: Float = 1.0
    @Option(help: "Seed of the problem set (train split) and of the sampling.") var seed: UInt64 = 0x5EED
    @Flag(help: "Also time greedy decoding of every problem plain vs MTP speculative (acceptance rate, tokens/s).")
    var speculative = false

    func validate() throws {
        guard task == "arithmetic" else { throw ValidationError("--task: only 'arithmetic' is available") }
        guard split == "heldout" || split == "train" else { throw ValidationError("--split: use heldout or train, got '\(split)'") }
        guard !ops.isEmpty, ops.allSatisfy({ "+-*".contains($0) }) else { throw ValidationError("--ops: use characters from + - *") }
        _ = try parseDigitRange(digits)
        guard problems > 0, k >= 0 else { throw ValidationError("--problems must be positive and --k ≥ 0") }
        guard k == 0 || (temperature > 0 && temperature.isFinite) else { throw ValidationError("--k > 0 needs --temperature > 0") }
    }

    func run() throws {
        let path = try resolveModelArgument(try DefaultModel.resolve(model))
        try ModelOptions.check(path)
        let arithmetic = ArithmeticTask(operations: ops.compactMap { ArithmeticOperation(rawValue: String($0)) }, digits: try parseDigitRange(digits),
                                       mixedLengths: mixedLengths)
        let set: [ArithmeticProblem]
        if split == "heldout" {
            set = arithmetic.heldOutSet(count: problems, seed: seed)
        } else {
            var rng = TrainingRandom(seed: seed)
            set = (0..<problems).map { _ in arithmetic.sample(&rng) }
        }
        let loaded = try ModelRegistry.load(directory: path)
        let evaluator = ArithmeticEvaluator(model: loaded)
        let result = try evaluator.evaluate(set, k: k, temperature: temperature, seed: seed)
        var extra = ""
        if speculative {
            guard let deepseek = loaded as? DeepseekV3Model else { throw ValidationError("--speculative needs a DeepSeek-V3 model with MTP") }
            extra = try Self.speculativeTiming(deepseek, evaluator: evaluator, problems: set)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var json = String(decoding: try encoder.encode(result), as: UTF8.self)
        json.insert(contentsOf: "\n  \"model\" : \"\(path)\",\n  \"split\" : \"\(split)\",\n  \"ops\" : \"\(ops)\",\n  \"digits\" : \"\(digits)\",\n  \"mixed_lengths\" : \(mixedLengths),", at: json.index(after: json.startIndex))
        if !extra.isEmpty { json.insert(contentsOf: extra, at: json.index(after: json.startIndex)) }
        print(json)
    }

    /// Greedy decoding of every problem, plain and with MTP drafting (1 draft token), timed in-process; the outputs
    /// must be identical. Returns JSON members for the report.
    static func speculativeTiming(_ model: DeepseekV3Model, evaluator: ArithmeticEvaluator, problems: [ArithmeticProblem]) throws -> String {
        let prompts = try problems.map { try evaluator.prompt($0.question) }
        let stops: Set<Int> = [evaluator.tokenizer.eosId]
        let generator = Generator(model: model), decoder = try SpeculativeDecoder(model: model, draftTokens: 1)
        var plainTokens = 0, specTokens = 0, mismatches = 0
        var rounds = 0, drafted = 0, accepted = 0
        var start = DispatchTime.now().uptimeNanoseconds
        var plainOutputs: [[Int]] = []
        for prompt in prompts {
            let out = try generator.generate(prompt: prompt, maxTokens: 64, sampling: SamplingConfiguration(), stopTokens: stops)
            plainTokens += out.count; plainOutputs.append(out)
        }
        let plainSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        start = DispatchTime.now().uptimeNanoseconds
        for (i, prompt) in prompts.enumerated() {
            let (out, stats) = try decoder.generate(prompt: prompt, maxTokens: 64, stopTokens: stops)
            specTokens += out.count
            if out != plainOutputs[i] { mismatches += 1 }
            rounds += stats.rounds; drafted += stats.drafted; accepted += stats.accepted
        }
        let specSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return String(format: "\n  \"mtp_acceptance_rate\" : %.4f,\n  \"mtp_tokens_per_main_forward\" : %.3f,"
                      + "\n  \"greedy_tokens_per_second\" : %.1f,\n  \"mtp_tokens_per_second\" : %.1f,\n  \"mtp_speedup\" : %.3f,"
                      + "\n  \"mtp_output_mismatches\" : %d,",
                      Double(accepted) / Double(max(1, drafted)), Double(accepted + rounds) / Double(max(1, rounds)), Double(plainTokens) / plainSeconds, Double(specTokens) / specSeconds,
                      (Double(specTokens) / specSeconds) / (Double(plainTokens) / plainSeconds), mismatches)
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
