import Foundation
import KujiraGeneration
import KujiraModels

/// R1-format check: the reply is `<think>\n…\n</think>\n\n{integer}` followed by end-of-sentence (or nothing).
public enum ReplyFormat {
    public static func isWellFormed(_ completion: String) -> Bool {
        var text = Substring(completion)
        if let end = text.range(of: CharacterTokenizer.endOfSentence) {
            guard text[end.upperBound...].isEmpty else { return false }
            text = text[..<end.lowerBound]
        }
        guard text.hasPrefix("<think>\n") else { return false }
        // The opening line's newline may also be the closing one's (empty reasoning: "<think>\n</think>\n\n5").
        let afterOpen = text.index(text.startIndex, offsetBy: 8)
        guard let close = text[text.index(before: afterOpen)...].range(of: "\n</think>\n\n") else { return false }
        let inside = close.lowerBound > afterOpen ? text[afterOpen..<close.lowerBound] : text[afterOpen..<afterOpen]
        guard !inside.contains("<think>"), !inside.contains("</think>") else { return false }
        var answer = text[close.upperBound...]
        if answer.first == "-" { answer = answer.dropFirst() }
        return !answer.isEmpty && answer.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// Scores of a model on a set of arithmetic problems (`kujira eval`).
public struct ArithmeticEvaluationResult: Sendable, Codable, Equatable {
    public var problems: Int
    /// Samples per problem for pass@k (0: greedy only).
    public var k: Int
    public var temperature: Float
    /// Greedy exact match.
    public var passAt1Greedy: Double
    /// Mean exact match of the sampled completions (the unbiased pass@1 estimate from k samples); nil when k = 0.
    public var passAt1Sampled: Double?
    /// Fraction of problems with at least one correct completion among k samples; nil when k = 0.
    public var passAtK: Double?
    /// Fraction of completions (greedy and sampled) in the `<think>…</think>` + answer format.
    public var formatRate: Double
    /// Mean completion length in tokens (greedy and sampled, end-of-sentence included).
    public var meanLength: Double
}

/// Greedy and sampled evaluation of a language model on arithmetic problems, prompts in the chat format the
/// trainer uses (`{bos}<｜User｜>{question}<｜Assistant｜>`; the model writes `<think>` itself).
public struct ArithmeticEvaluator {
    public let model: any LanguageModel
    public let tokenizer = CharacterTokenizer()

    public init(model: any LanguageModel) { self.model = model }

    /// The prompt ids for `question`.
    public func prompt(_ question: String) throws -> [Int] {
        try tokenizer.encode(CharacterTokenizer.beginOfSentence + CharacterTokenizer.user + question + CharacterTokenizer.assistant)
    }

    /// One completion (decoded text and token count) of `problem`.
    public func complete(_ problem: ArithmeticProblem, sampling: SamplingConfiguration) throws -> (text: String, tokens: Int) {
        let ids = try prompt(problem.question)
        let budget = max(0, min(model.maxPositions - ids.count, problem.reply.count + 16))
        let output = try Generator(model: model).generate(prompt: ids, maxTokens: budget, sampling: sampling, stopTokens: [tokenizer.eosId])
        return (tokenizer.decode(output), output.count)
    }

    /// Greedy exact match on every problem, plus `k` samples at `temperature` (seeded from `seed`) when k > 0.
    public func evaluate(_ problems: [ArithmeticProblem], k: Int, temperature: Float, seed: UInt64) throws -> ArithmeticEvaluationResult {
        guard k >= 0 else { throw TrainingError.invalidInput("k must be ≥ 0, got \(k)") }
        guard k == 0 || temperature > 0 else { throw TrainingError.invalidInput("sampling k > 0 completions needs a temperature > 0") }
        var greedyCorrect = 0, sampledCorrect = 0, anyCorrect = 0, wellFormed = 0, completions = 0, tokens = 0
        for (index, problem) in problems.enumerated() {
            let greedy = try complete(problem, sampling: SamplingConfiguration())
            if problem.isCorrect(greedy.text) { greedyCorrect += 1 }
            if ReplyFormat.isWellFormed(greedy.text) { wellFormed += 1 }
            completions += 1; tokens += greedy.tokens
            var solved = false
            for j in 0..<k {
                let sampling = SamplingConfiguration(temperature: temperature, seed: seed &+ UInt64(index) &* 1_000_003 &+ UInt64(j))
                let sample = try complete(problem, sampling: sampling)
                if problem.isCorrect(sample.text) { sampledCorrect += 1; solved = true }
                if ReplyFormat.isWellFormed(sample.text) { wellFormed += 1 }
                completions += 1; tokens += sample.tokens
            }
            if solved { anyCorrect += 1 }
        }
        let n = Double(max(1, problems.count))
        return ArithmeticEvaluationResult(
            problems: problems.count, k: k, temperature: temperature, passAt1Greedy: Double(greedyCorrect) / n,
            passAt1Sampled: k > 0 ? Double(sampledCorrect) / (n * Double(k)) : nil, passAtK: k > 0 ? Double(anyCorrect) / n : nil,
            formatRate: Double(wellFormed) / Double(max(1, completions)), meanLength: Double(tokens) / Double(max(1, completions)))
    }
}
