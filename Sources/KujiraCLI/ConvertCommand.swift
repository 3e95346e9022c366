import ArgumentParser
import Foundation
import KujiraFormats
import KujiraModels
import KujiraTensor
import KujiraTokenizer

/// `kujira convert`: a Hugging Face model directory → a GGUF file llama.cpp loads, or → an HF directory in one dtype.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face model directory to GGUF (f32, f16, bf16, q8_0, q4_k) or to safetensors (bf16, f16, f32).",
        discussion: """
            GGUF: llama.cpp's llama, qwen2 and deepseek2 layouts, as convert_hf_to_gguf.py writes them (docs/convert.md).
            Norms, biases and the MoE router stay F32; rows that do not fit the type's blocks fall back (q4_k → q8_0 → f16).
            Multi-token-prediction layers are left out (llama.cpp does not load them).
            Safetensors: every floating-point tensor in --dtype; FP8 weights are dequantised with their block scales.
            Output is written to a temporary name and renamed, so a failed run leaves nothing behind.
            --split-max-size / --split-max-tensors write llama.cpp's gguf-split shards instead: OUT without .gguf
            + -00001-of-0000N.gguf …, metadata in the first; all shards are renamed into place only once all are written.
            
            Example: kujira convert --model models/v3-mini --to gguf --type q4_k --out v3-mini.q4_k.gguf
            """)

    @Option(help: "Model directory (config.json + safetensors, tokenizer.json optional), or org/name from `kujira pull`.",
            transform: resolveModelArgument) var model: String
    @Option(help: "Output format: gguf or safetensors.") var to: String
    @Option(help: "GGUF tensor type: f32, f16, bf16, q8_0 or q4_k.") var type: String = "q8_0"
    @Option(help: "Safetensors dtype: bf16, f16 or f32.") var dtype: String = "bf16"
    @Option(help: "Output path: a .gguf file, or a directory for safetensors.") var out: String
    @Option(help: "general.name of the GGUF (default: the model directory's name).") var name: String?
    @Option(help: "GGUF: split into shards of at most this much tensor data, as gguf-split (bytes, or K/M/G = 10^3/10^6/10^9).")
    var splitMaxSize: String?
    @Option(help: "GGUF: split into shards of at most this many tensors, as gguf-split.") var splitMaxTensors: Int?
    @Flag(help: "Replace an existing output.") var force = false
    @Flag(help: "No per-tensor progress.") var quiet = false

    func validate() throws {
        guard ["gguf", "safetensors"].contains(to) else { throw ValidationError("--to must be gguf or safetensors, got '\(to)'") }
        if to == "gguf" {
            guard GGUFExportType(rawValue: type) != nil else {
                throw ValidationError("--type must be one of \(GGUFExportType.allCases.map(\.rawValue).joined(separator: ", ")), got '\(type)'")
            }
        } else {
            guard ["bf16", "f16", "f32"].contains(dtype) else { throw ValidationError("--dtype must be bf16, f16 or f32, got '\(dtype)'") }
            guard splitMaxSize == nil && splitMaxTensors == nil else { throw ValidationError("--split-max-size and --split-max-tensors are for --to gguf") }
        }
        if let splitMaxSize, GGUFSplitLimits.parseSize(splitMaxSize) == nil {
            throw ValidationError("--split-max-size must be a positive whole number of bytes, optionally with K, M or G (e.g. 2G, 500M), got '\(splitMaxSize)'")
        }
        if let splitMaxTensors, splitMaxTensors <= 0 { throw ValidationError("--split-max-tensors must be positive, got \(splitMaxTensors)") }
    }

    /// The gguf-split limits the options ask for, or nil for one file.
    var splitLimits: GGUFSplitLimits? {
        guard splitMaxSize != nil || splitMaxTensors != nil else { return nil }
        return GGUFSplitLimits(maxBytes: splitMaxSize.flatMap(GGUFSplitLimits.parseSize), maxTensors: splitMaxTensors)
    }

    func run() throws {
        let progress = Progress(quiet: quiet)
        if to == "gguf" {
            let plan = try GGUFExporter.plan(directory: model, type: GGUFExportType(rawValue: type)!, name: name)
            let vocabSize = try ModelConfig(path: model).int("vocab_size")
            let tokenizer = try GGUFTokenizerMetadata.make(directory: model, vocabSize: vocabSize)
            if tokenizer == nil {
                FileHandle.standardError.write(Data("convert: \(model) has no tokenizer.json; writing a placeholder vocabulary of \(vocabSize) [PAD] tokens\n".utf8))
            }
            if !plan.skippedTensors.isEmpty {
                FileHandle.standardError.write(Data("convert: leaving out \(plan.skippedTensors.count) multi-token-prediction tensors (llama.cpp does not load them)\n".utf8))
            }
            let paths = try GGUFExporter.write(plan, tokenizerMetadata: tokenizer ?? GGUFExporter.placeholderVocabulary(size: vocabSize), to: out,
                                               overwrite: force, split: splitLimits) { i, n, d, bytes in
                progress.update(i, n, "\(d.name) \(d.type.name) \(d.shape)", bytes)
            }
            progress.done()
            if splitLimits == nil {
                print("wrote \(out): \(plan.architecture), \(plan.tensors.count) tensors, \(Self.size(of: out))")
            } else {
                for path in paths { print("wrote \(path): \(Self.size(of: path))") }
                print("\(paths.count) shards: \(plan.architecture), \(plan.tensors.count) tensors; load with --model \(paths[0])")
            }
        } else {
            let target: DType = dtype == "bf16" ? .bf16 : dtype == "f16" ? .f16 : .f32
            try SafeTensorsExporter.export(directory: model, to: out, dtype: target, force: force) { i, n, name, bytes in
                progress.update(i, n, name, bytes)
            }
            progress.done()
            print("wrote \(out): model.safetensors (\(dtype)), \(Self.size(of: (out as NSString).appendingPathComponent("model.safetensors")))")
        }
    }

    static func size(of path: String) -> String {
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return String(format: "%.1f MB", Double(bytes) / 1e6)
    }

    /// A progress bar on a terminal, one line per tensor otherwise.
    final class Progress {
        let quiet: Bool
        let terminal = isatty(STDERR_FILENO) == 1
        init(quiet: Bool) { self.quiet = quiet }

        func update(_ index: Int, _ count: Int, _ label: String, _ bytes: Int) {
            guard !quiet else { return }
            let megabytes = String(format: "%.1f MB", Double(bytes) / 1e6)
            if terminal {
                let width = 30, filled = (index + 1) * width / max(count, 1)
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(index + 1)/\(count) \(megabytes)  \(label.prefix(60))".utf8))
            } else {
                FileHandle.standardError.write(Data("[\(index + 1)/\(count)] \(label) (\(megabytes))\n".utf8))
            }
        }

        func done() {
            if terminal && !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
        }
    }
}
