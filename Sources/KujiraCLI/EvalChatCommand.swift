import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraTokenizer

/// `kujira eval-chat`: held-out exact match of a chat model (and adapter) on chat JSONL.
struct EvalChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-chat",
        abstract: "Exact-match accuracy on chat JSONL: greedy-answer each conversation without its last assistant message and compare.",
        discussion: """
            A reply counts when the generated answer, stripped of surrounding whitespace, equals the line's last assistant \
            message stripped the same way.
            Example: kujira eval-chat --model SmolLM2-135M-Instruct.Q4_1.gguf --lora runs/sentiment --data heldout.jsonl
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Chat JSONL with {\"messages\": [...]} ending in the expected assistant reply.") var data: String
    @Option(help: "Most tokens generated per answer.") var maxTokens: Int = 16
    @Option(help: "Evaluate only the first N lines (0: all).") var limit: Int = 0
    @Option(help: "Print this many mismatches.") var show: Int = 3

    func validate() throws {
        guard maxTokens > 0, limit >= 0, show >= 0 else { throw ValidationError("--max-tokens must be positive, --limit and --show non-negative") }
    }

    func run() throws {
        let pipeline = try TextPipeline.load(path: modelOptions.model, lora: modelOptions.lora, cachePrecision: modelOptions.cachePrecision,
                                             numerics: modelOptions.numerics)
        guard let text = try? String(contentsOfFile: data, encoding: .utf8) else { throw ValidationError("--data: cannot read \(data)") }
        var lines = text.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }
        if limit > 0 { lines = Array(lines.prefix(limit)) }
        var correct = 0, shown = 0
        let started = Date()
        for (index, line) in lines.enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  var messages = object["messages"] as? [[String: Any]], let last = messages.last,
                  last["role"] as? String == "assistant", let expected = last["content"] as? String else {
                throw ValidationError("\(data):\(index + 1): expected {\"messages\": [...]} ending in an assistant message")
            }
            messages.removeLast()
            let prompt = try pipeline.chatPrompt(messages: try messages.map { try JinjaValue(any: $0) })
            let slot = SequenceSlot(model: pipeline.model)
            var answer = ""
            _ = try pipeline.run(prompt: prompt, options: pipeline.options(maxTokens: maxTokens), slot: slot) { event in
                if case let .content(piece) = event { answer += piece }
            }
            let got = answer.trimmingCharacters(in: .whitespacesAndNewlines), want = expected.trimmingCharacters(in: .whitespacesAndNewlines)
            if got == want {
                correct += 1
            } else if shown < show {
                shown += 1
                print("line \(index + 1): expected \(want.debugDescription), got \(got.debugDescription)")
            }
        }
        let accuracy = lines.isEmpty ? 0 : Double(correct) / Double(lines.count)
        print(String(format: "exact match %d/%d = %.1f%% (%.1f s)", correct, lines.count, accuracy * 100, Date().timeIntervalSince(started)))
    }
}
