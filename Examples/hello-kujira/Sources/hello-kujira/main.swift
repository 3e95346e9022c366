import Kujira

// Answers the question on the command line with the model compiled into Kujira, streaming the reply.
let question = CommandLine.arguments.dropFirst().first ?? "What is 2+3?"
let model = try await ChatModel.load(.embedded)
for try await event in model.chat([.user(question)]) {
    switch event {
    case .content(let text): print(text, terminator: "")
    case .finished(let summary): print("\n[\(summary.completionTokens) tokens, \(summary.finishReason)]")
    default: break
    }
}
