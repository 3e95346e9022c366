import ArgumentParser
import Foundation
import KujiraTokenizer

/// `kujira tokenize`: encodes text with a tokenizer.json / model directory / GGUF vocabulary and prints ids.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids (JSON arrays).",
        discussion: """
            --text S prints one JSON id array. --jsonl reads one JSON string per line on stdin and writes one JSON \
            id array per line. --decode reads one JSON id array per line and writes one JSON string per line.

            Example: kujira tokenize --tokenizer Models/kujira-arith --text "12+34"
            """
    )

    @Option(help: "A model directory (tokenizer.json + tokenizer_config.json), a tokenizer.json file, or a .gguf file.")
    var tokenizer: String

    @Option(help: "The text to encode.")
    var text: String?

    @Flag(help: "Read one JSON string per line from stdin; write one JSON id array per line.")
    var jsonl = false

    @Flag(help: "Read one JSON id array per line from stdin; write one JSON string per line.")
    var decode = false

    @Flag(help: "Add the tokenizer's special tokens (BOS etc.) when encoding; keep special tokens when decoding.")
    var special = false

    @Option(help: ArgumentHelp("Benchmark: encode this file's whole text repeatedly and print MB/s.", visibility: .hidden))
    var benchFile: String?

    @Option(help: ArgumentHelp("Benchmark repetitions.", visibility: .hidden))
    var benchRepeat: Int = 5

    func validate() throws {
        let modes = [text != nil, jsonl, decode, benchFile != nil].filter { $0 }.count
        guard modes == 1 else {
            throw ValidationError("give exactly one of --text, --jsonl, --decode, --bench-file")
        }
        guard benchRepeat >= 1 else { throw ValidationError("--bench-repeat must be at least 1") }
    }

    func run() throws {
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let tokenizer = try Tokenizer.load(path: self.tokenizer)
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
        let output = BufferedOutput()
        defer { output.flush() }
        if let text {
            output.write(Self.jsonArray(tokenizer.encode(text, addSpecialTokens: special)) + "\n")
        } else if jsonl || decode {
            var lineNumber = 0
            while let line = readLine(strippingNewline: true) {
                lineNumber += 1
                if line.isEmpty { continue }
                let value: Any
                do {
                    value = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
                } catch {
                    throw ValidationError("stdin line \(lineNumber): not valid JSON")
                }
                if jsonl {
                    guard let string = value as? String else {
                        throw ValidationError("stdin line \(lineNumber): expected a JSON string")
                    }
                    output.write(Self.jsonArray(tokenizer.encode(string, addSpecialTokens: special)) + "\n")
                } else {
                    guard let ids = value as? [Int] else {
                        throw ValidationError("stdin line \(lineNumber): expected a JSON array of integers")
                    }
                    output.write(Self.jsonString(tokenizer.decode(ids, skipSpecialTokens: !special)) + "\n")
                }
            }
        } else if let benchFile {
            guard let data = FileManager.default.contents(atPath: benchFile) else {
                throw ValidationError("cannot read --bench-file \(benchFile)")
            }
            let string = String(decoding: data, as: UTF8.self)
            var tokens = tokenizer.encode(string).count  // warm-up
            var best = Double.infinity
            var total = 0.0
            for _ in 0..<benchRepeat {
                let start = DispatchTime.now().uptimeNanoseconds
                tokens = tokenizer.encode(string).count
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                best = min(best, seconds)
                total += seconds
            }
            let megabytes = Double(data.count) / 1e6
            output.write(String(format: "{\"bytes\": %d, \"tokens\": %d, \"load_s\": %.3f, \"best_s\": %.4f, \"mean_s\": %.4f, \"mb_per_s\": %.3f}\n",
                                data.count, tokens, loadSeconds, best, total / Double(benchRepeat), megabytes / best))
        }
    }

    static func jsonArray(_ ids: [Int]) -> String {
        "[" + ids.map(String.init).joined(separator: ",") + "]"
    }

    static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Collects stdout writes and flushes them in large blocks.
final class BufferedOutput {
    private var buffer: [UInt8] = []

    func write(_ string: String) {
        buffer.append(contentsOf: string.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
