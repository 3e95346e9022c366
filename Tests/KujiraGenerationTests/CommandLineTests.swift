import Foundation
import XCTest

/// The `kujira` executable built beside this test bundle (`swift test` builds every product); skips when absent.
func builtKujira() throws -> String {
    let built = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kujira").path
    guard FileManager.default.isExecutableFile(atPath: built) else { throw XCTSkip("no kujira executable beside the test bundle (\(built))") }
    return built
}

/// The installed `kujira` as a user meets it: `--version` from the build, one-line errors and documented exit codes.
final class CommandLineTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func run(_ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try builtKujira())
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// `KUJIRA_ISA` caps the kernels the process picks (read by the C library when it loads), and every level gives the same
    /// logits bit for bit: the embedded DeepSeek-V3 model (F32 rows, MLA, MoE) and, when present, SmolLM2 Q4_1 (block dots).
    func testEveryKernelLevelGivesTheSameLogits() throws {
        let levels = try ["", "avx2", "swift"].map { cap -> String in
            let result = try run(["bench-kernels", "--formats", "Q8_0", "--shapes", "64x64", "--threads", "1", "--seconds", "0.01"],
                                 environment: ["KUJIRA_ISA": cap])
            XCTAssertEqual(result.status, 0, result.stderr)
            return result.stdout.components(separatedBy: "kernels: ").dropFirst().first?.components(separatedBy: ";").first ?? "?"
        }
        XCTAssertEqual(levels[2], "swift")
        XCTAssertTrue(levels[1] == "avx2" || levels[1] == "swift", levels[1])
        XCTAssertTrue(["avx512-vnni", "avx2", "swift"].contains(levels[0]), levels[0])
        var models = [["--tokens", "0,5,6,7,1,8"]]
        let smol = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        if FileManager.default.fileExists(atPath: smol) { models.append(["--model", smol, "--tokens", "1,504,3060,314,253,1345,30"]) }
        for arguments in models {
            let outputs = try ["", "avx2", "swift"].map { cap -> String in
                let result = try run(["logits"] + arguments, environment: ["KUJIRA_ISA": cap])
                XCTAssertEqual(result.status, 0, result.stderr)
                return result.stdout
            }
            XCTAssertGreaterThan(outputs[0].count, 100)
            XCTAssertEqual(outputs[1], outputs[0], "KUJIRA_ISA=avx2 \(arguments)")
            XCTAssertEqual(outputs[2], outputs[0], "KUJIRA_ISA=swift \(arguments)")
        }
    }

    /// `bench` reports the weight bytes one decoded token reads: on the embedded model (BF16 safetensors, MoE with 2 of
    /// 8 experts, an MTP layer with its own embedding and head copies) the file's bytes counted from its header —
    /// embedding one row, routed experts k/E, the MTP layer none — within 0.1% (its few non-BF16 values are estimated);
    /// and the verify costs it was asked for.
    func testBenchReportsTheWeightBytesADecodedTokenReads() throws {
        let directory = Self.repository.appendingPathComponent("Models/kujira-arith")
        let result = try run(["bench", "--model", directory.path, "-p", "9", "-n", "2", "--repeats", "1", "--json", "--verify", "2,3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let reported = try XCTUnwrap(report["weight_bytes_per_token"] as? Int)
        let file = try Data(contentsOf: directory.appendingPathComponent("model.safetensors"))
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("config.json"))) as? [String: Any])
        let layers = try XCTUnwrap(config["num_hidden_layers"] as? Int), experts = try XCTUnwrap(config["n_routed_experts"] as? Int)
        let k = try XCTUnwrap(config["num_experts_per_tok"] as? Int)
        var expected = Double(8 + headerLength)
        for (name, value) in header where name != "__metadata__" {
            let entry = try XCTUnwrap(value as? [String: Any])
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int]), shape = try XCTUnwrap(entry["shape"] as? [Int])
            let bytes = Double(offsets[1] - offsets[0])
            if name.hasPrefix("model.layers.\(layers).") { continue }
            if name == "model.embed_tokens.weight" { expected += bytes / Double(shape[0]) } else if name.contains(".mlp.experts.") {
                expected += bytes * Double(k) / Double(experts)
            } else { expected += bytes }
        }
        XCTAssertEqual(Double(reported), expected, accuracy: expected * 0.001)
        let costs = try XCTUnwrap(report["verify_cost_over_decode"] as? [String: Double])
        XCTAssertEqual(Set(costs.keys), ["2", "3"])
        XCTAssertTrue(costs.values.allSatisfy { $0 > 0 }, "\(costs)")
        XCTAssertNotNil(report["tg_weight_gb_s"] as? Double)
    }

    func testVersionIsTheCheckoutsGitDescribe() throws {
        let result = try run(["--version"])
        XCTAssertEqual(result.status, 0)
        let version = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        git.arguments = ["-C", Self.repository.path, "rev-parse", "--short=7", "HEAD"]
        let pipe = Pipe()
        git.standardOutput = pipe
        git.standardError = FileHandle.nullDevice
        guard (try? git.run()) != nil else { throw XCTSkip("no git") }
        let head = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        git.waitUntilExit()
        guard git.terminationStatus == 0 else { throw XCTSkip("not a git checkout") }
        XCTAssertTrue(version.contains(head), "--version says \(version), HEAD is \(head)")
    }

    func testUsageErrorsExit64AndFailuresExit1WithOneLine() throws {
        let usage = try run(["run", "--model", "/no/such/model", "hi"])
        XCTAssertEqual(usage.status, 64)
        XCTAssertTrue(usage.stderr.hasPrefix("Error: --model: /no/such/model does not exist"), usage.stderr)
        let hostile = Self.repository.appendingPathComponent("Tests/Fixtures/fuzz/gguf/regression-2e31-experts-hang.gguf").path
        let failure = try run(["run", "--model", hostile, "hi"])
        XCTAssertEqual(failure.status, 1)
        let lines = failure.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, failure.stderr)
        XCTAssertTrue(failure.stderr.contains(hostile) && failure.stderr.contains("num_hidden_layers"), failure.stderr)
        XCTAssertFalse(failure.stderr.contains("Backtrace") || failure.stderr.contains("Fatal error"), failure.stderr)
    }

    /// `kujira train-mtp` on the embedded model with a fresh head: the report shows the head learned the model's
    /// continuations, the output drafts with it, and an existing --out is a usage error that leaves it alone.
    func testTrainMTPFitsAFreshHeadAndWritesAModelThatDrafts() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("kujira-train-mtp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let prompts = (work as NSString).appendingPathComponent("prompts.txt"), out = (work as NSString).appendingPathComponent("fitted")
        try ["12+34", "987-654", "5+5", "40-17", "301+299", "8-9", "77+1", "650-60", "3+333"].joined(separator: "\n")
            .write(toFile: prompts, atomically: true, encoding: .utf8)
        let model = Self.repository.appendingPathComponent("Models/kujira-arith").path
        let fit = try run(["train-mtp", "--model", model, "--data", prompts, "--out", out, "--fresh", "--epochs", "40", "--batch", "4",
                           "--lr", "3e-3", "--held-out-every", "0", "--threads", "1"])
        XCTAssertEqual(fit.status, 0, fit.stderr)
        XCTAssertTrue(fit.stdout.contains("fitting a fresh MTP module"), fit.stdout)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/mtp_fit.json"))) as? [String: Any])
        let before = try XCTUnwrap((report["trainBefore"] as? [String: Any])?["accuracy"] as? Double)
        let after = try XCTUnwrap((report["trainAfter"] as? [String: Any])?["accuracy"] as? Double)
        XCTAssertGreaterThan(after, before + 0.4, "accuracy \(before) → \(after)")
        let drafted = try run(["run", "--model", out, "--speculative", "mtp", "--verbose", "12+34"])
        XCTAssertEqual(drafted.status, 0, drafted.stderr)
        let plain = try run(["run", "--model", model, "--speculative", "off", "12+34"])
        XCTAssertEqual(drafted.stdout, plain.stdout)
        XCTAssertTrue(drafted.stderr.contains("drafts accepted"), drafted.stderr)
        let again = try run(["train-mtp", "--model", model, "--data", prompts, "--out", out])
        XCTAssertEqual(again.status, 64)
        XCTAssertTrue(again.stderr.contains("exists"), again.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/mtp_fit.json"))
    }

    func testEveryCommandsHelpHasAnExample() throws {
        let commands = ["pull", "list", "rm", "run", "chat", "serve", "generate", "logits", "inspect", "bench", "bench-kernels", "tokenize",
                        "template", "init", "convert", "train", "train-step", "train-mtp", "eval", "grpo", "distill", "export"]
        for command in commands {
            let help = try run([command, "--help"])
            XCTAssertEqual(help.status, 0, command)
            XCTAssertTrue(help.stdout.contains("Example: kujira \(command)"), "\(command) --help has no example line")
        }
    }
}
