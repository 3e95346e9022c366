import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraModels
import KujiraTokenizer

/// Sampling flags shared by `kujira run` and `kujira chat`.
struct TextSamplingOptions: ParsableArguments {
    @Option(help: "Maximum number of new tokens per answer (default: up to the context length).")
    var maxTokens: Int?

    @OptionGroup var basic: SamplingFlags

    @Option(help: "Drop tokens less likely than min-p times the most likely one.")
    var minP: Float = 0

    @Option(help: "Repetition penalty (1 = off).")
    var repetitionPenalty: Float = 1

    @Option(help: "Context length (default: the model's maximum).")
    var ctx: Int?

    @Option(help: "A system message to start the conversation with.")
    var system: String?

    @Flag(help: "Do not print the model's thinking.")
    var hideThinking = false

    @Flag(help: "Print token counts, the finish reason and speed to stderr after each answer.")
    var verbose = false

    func validate() throws {
        if let maxTokens, maxTokens < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be ≥ 2") }
        do { try sampling.validate() } catch { throw ValidationError("\(error)") }
    }

    var sampling: SamplingConfiguration {
        SamplingConfiguration(temperature: basic.temperature, topK: basic.topK, topP: basic.topP, minP: minP,
                              repetitionPenalty: repetitionPenalty, seed: basic.seed)
    }
}

/// Streams answers to stdout: thinking dimmed (ANSI) on a terminal, plain otherwise.
struct ChatPrinter {
    let pipeline: TextPipeline
    let sampling: TextSamplingOptions
    let slot: SequenceSlot
    let color = isatty(STDOUT_FILENO) == 1

    init(pipeline: TextPipeline, sampling: TextSamplingOptions) {
        self.pipeline = pipeline
        self.sampling = sampling
        slot = SequenceSlot(model: pipeline.model)
    }

    private func write(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

    /// Generates the assistant's answer to `messages`, printing it as it streams; returns the answer text.
    func answer(_ messages: [JinjaValue]) throws -> String {
        let prompt = try pipeline.chatPrompt(messages: messages)
        let room = pipeline.contextLength - prompt.tokens.count
        guard room > 0 else {
            throw TextPipelineError.contextTooLong(promptTokens: prompt.tokens.count, contextLength: pipeline.contextLength)
        }
        let options = pipeline.options(maxTokens: min(sampling.maxTokens ?? room, room), sampling: sampling.sampling)
        var answer = ""
        var inThinking = false
        let start = Date()
        let result = try pipeline.run(prompt: prompt, options: options, slot: slot) { event in
            switch event {
            case .reasoning(let text):
                guard !sampling.hideThinking else { return }
                if !inThinking { inThinking = true; write(color ? "\u{1B}[2m" : "") }
                write(text)
            case .content(var text):
                // The template separates thinking and answer with blank lines; print one separator of our own.
                if answer.isEmpty { text = String(text.drop(while: \.isNewline)) }
                guard !text.isEmpty else { return }
                if inThinking { inThinking = false; write(color ? "\u{1B}[0m\n" : "\n") }
                answer += text
                write(text)
            case .toolCalls(let calls):
                for call in calls { write("\n[tool call] \(call.name)(\(call.arguments))") }
            case .logprob:
                break
            }
        }
        if inThinking { write(color ? "\u{1B}[0m" : "") }
        write("\n")
        if sampling.verbose {
            let seconds = Date().timeIntervalSince(start)
            let u = result.usage
            var line = String(format: "[%@: %d prompt tokens (%d cached), %d generated (%d reasoning), %.2f s, %.1f tok/s overall",
                              result.finishReason.rawValue, u.promptTokens, u.cachedPromptTokens, u.completionTokens,
                              u.reasoningTokens, seconds, Double(u.completionTokens) / max(seconds, 1e-9))
            if u.draftedTokens > 0 { line += ", \(u.acceptedDrafts) of \(u.draftedTokens) drafts accepted" }
            line += "]\n"
            FileHandle.standardError.write(Data(line.utf8))
        } else if result.finishReason == .length {
            FileHandle.standardError.write(Data("[stopped at the token limit]\n".utf8))
        }
        return answer
    }
}

/// `kujira run`: one user turn through the model's chat template, streamed to stdout.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Answer one prompt with the model's chat template, streaming the text.",
        discussion: #"Example: kujira run --model unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M "What is 17*23?""#)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var samplingOptions: TextSamplingOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Argument(help: "The user message.")
    var prompt: String

    func run() throws {
        let pipeline = try TextPipeline.load(path: modelOptions.model, lora: modelOptions.lora, contextLength: samplingOptions.ctx,
                                              cachePrecision: modelOptions.cachePrecision, numerics: modelOptions.numerics,
                                              speculation: try speculationOptions.speculation(), draftModel: speculationOptions.draftModelPath)
        var messages: [JinjaValue] = []
        if let system = samplingOptions.system { messages.append(["role": "system", "content": .string(system)]) }
        messages.append(["role": "user", "content": .string(prompt)])
        _ = try ChatPrinter(pipeline: pipeline, sampling: samplingOptions).answer(messages)
    }
}

/// `kujira chat`: like `run` for one prompt; with no prompt, an interactive conversation (reusing the KV cache of
/// the conversation so far).
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model: one prompt, or an interactive loop when none is given.",
        discussion: #"Example: kujira chat "What is 123+45?"   (no prompt: an interactive conversation, /bye to quit)"#)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var samplingOptions: TextSamplingOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Argument(help: "A single user message; omit for an interactive session.")
    var prompt: String?

    func run() throws {
        let pipeline = try TextPipeline.load(path: modelOptions.model, lora: modelOptions.lora, contextLength: samplingOptions.ctx,
                                              cachePrecision: modelOptions.cachePrecision, numerics: modelOptions.numerics,
                                              speculation: try speculationOptions.speculation(), draftModel: speculationOptions.draftModelPath)
        let printer = ChatPrinter(pipeline: pipeline, sampling: samplingOptions)
        var messages: [JinjaValue] = []
        if let system = samplingOptions.system { messages.append(["role": "system", "content": .string(system)]) }
        if let prompt {
            messages.append(["role": "user", "content": .string(prompt)])
            _ = try printer.answer(messages)
            return
        }
        let interactive = isatty(STDIN_FILENO) == 1
        while true {
            if interactive { FileHandle.standardOutput.write(Data(">>> ".utf8)) }
            guard let line = readLine() else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text == "/bye" || text == "/exit" { break }
            messages.append(["role": "user", "content": .string(text)])
            do {
                let answer = try printer.answer(messages)
                messages.append(["role": "assistant", "content": .string(answer)])
            } catch let error as TextPipelineError {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                messages.removeLast()
            }
        }
    }
}
