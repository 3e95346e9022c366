import Foundation
import KujiraGeneration
import KujiraModels

/// R1-style distillation data: the teacher samples several solutions per prompt and only verified-correct,
/// well-formed ones are kept (rejection sampling); the student is then trained on them with plain SFT.
public enum Distillation {
    /// Counts of a rejection-sampling pass.
    public struct Collection: Sendable, Equatable {
        public var examples: [TrainingExample]
        public var sampled: Int
        /// Completions that were correct and well formed (before removing duplicates per prompt).
        public var verified: Int
        /// Prompts with at least one kept trace.
        public var promptsCovered: Int
    }

    /// Samples `samples` completions of each problem from `teacher` at `temperature` and keeps the distinct verified ones.
    public static func collect(teacher: any LanguageModel, problems: [ArithmeticProblem], samples: Int, temperature: Float,
                               seed: UInt64, progress: (Int) -> Void = { _ in }) throws -> Collection {
        guard samples > 0, temperature >= 0 else { throw TrainingError.invalidInput("samples must be positive and temperature ≥ 0") }
        let evaluator = ArithmeticEvaluator(model: teacher)
        var examples: [TrainingExample] = [], sampled = 0, verified = 0, covered = 0
        for (i, problem) in problems.enumerated() {
            var kept = Set<String>()
            for j in 0..<samples {
                let sampling = SamplingConfiguration(temperature: temperature, seed: seed &+ UInt64(i) &* 7919 &+ UInt64(j))
                var text = try evaluator.complete(problem, sampling: sampling).text
                sampled += 1
                guard problem.isCorrect(text), ReplyFormat.isWellFormed(text) else { continue }
                verified += 1
                if let end = text.range(of: CharacterTokenizer.endOfSentence) { text = String(text[..<end.lowerBound]) }
                if kept.insert(text).inserted { examples.append(TrainingExample(question: problem.question, reply: text)) }
            }
            if !kept.isEmpty { covered += 1 }
            progress(i + 1)
        }
        return Collection(examples: examples, sampled: sampled, verified: verified, promptsCovered: covered)
    }

    /// The same examples with the reasoning removed: `<think>\n\n</think>\n\n{answer}` (the answers-only baseline).
    public static func answersOnly(_ examples: [TrainingExample]) -> [TrainingExample] {
        examples.map { example in
            let answer = example.reply.range(of: "</think>", options: .backwards).map { String(example.reply[$0.upperBound...]) } ?? example.reply
            return TrainingExample(question: example.question, reply: "<think>\n\n</think>\n\n" + answer.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
