import ArgumentParser
import Foundation
import KujiraGeneration
import KujiraModels
import KujiraTensor

/// `kujira bench`: prompt-processing and generation speed, measured the way llama-bench (and
/// `shared/tools/llama_cpp_bench.py`) measure them, so the numbers compare directly.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing (pp) and generation (tg) tokens per second.",
        discussion: #"Example: kujira bench --model model.gguf -p 128 -n 64 --threads 2"#)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .customShort("p"), help: "Prompt tokens processed in one batch.")
    var promptTokens: Int = 128

    @Option(name: .customShort("n"), help: "Tokens generated one at a time.")
    var generatedTokens: Int = 64

    @Option(help: "Sequences decoding together in tg (one batched step for all per token, as `kujira serve` runs concurrent requests); tg is then their aggregate tokens/s.")
    var batch: Int = 1

    @Option(help: "Tokens of context before the generated ones: tg measures decoding at this length (the context is prefilled once; caches that can drop a suffix return to it between repetitions).")
    var context: Int = 8

    @Option(help: "Comma-separated token counts: also time one forward pass over that many tokens at the decoding position (a speculative verify, or a batch of drafts), reported against one decoding step, e.g. 2,4,8.")
    var verify: String = ""

    @Flag(help: "Also measure the machine's memory read bandwidth (a STREAM-like loop on the same threads) and report tg as a fraction of the weight-streaming roofline.")
    var roofline = false

    @Option(help: "Repetitions; the median is reported (after one warm-up).")
    var repeats: Int = 3

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print one JSON line.")
    var json = false

    func validate() throws {
        guard promptTokens >= 9 else { throw ValidationError("-p must be ≥ 9 (generation starts after 8 prompt tokens)") }
        guard generatedTokens >= 1 else { throw ValidationError("-n must be ≥ 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be ≥ 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be ≥ 1") }
        guard context >= 8 else { throw ValidationError("--context must be ≥ 8") }
        guard context == 8 || batch == 1 else { throw ValidationError("--context applies to single-sequence generation (--batch 1)") }
        guard verifySizes.count == verify.split(separator: ",").count, verifySizes.allSatisfy({ (1...64).contains($0) }) else {
            throw ValidationError("--verify: comma-separated token counts in 1...64, e.g. 2,4,8")
        }
    }

    private var verifySizes: [Int] { verify.split(separator: ",").compactMap { Int($0) } }

    func run() throws {
        threadOptions.apply()
        let model = try modelOptions.load()
        let rssAfterLoad = residentMemory()
        let fileBytes = (try? modelFileBytes(modelOptions.model)) ?? 0
        guard max(promptTokens, context) + (repeats + 2) * generatedTokens + 8 <= model.maxPositions else {
            throw ValidationError("-p / --context + -n exceed the model's \(model.maxPositions) positions")
        }
        let vocab = model.vocabSize
        // The same synthetic prompt as llama_cpp_bench.py.
        let prompt = (0..<promptTokens).map { ($0 * 7919 + 13) % (vocab - 10) + 5 }

        func promptProcessing() throws -> Double {
            let cache = model.makeCache()
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.forward(prompt, cache: cache, allLogits: false)
            return Double(promptTokens) / seconds(since: start)
        }
        func batchedGeneration() throws -> Double {
            // Sequence b starts from its own 8-token window of the prompt, so the batch holds different sequences.
            let starts = (0..<batch).map { $0 % (promptTokens - 8) }
            let caches = starts.map { _ in model.makeCache() }
            for (b, s) in starts.enumerated() { _ = try model.forward(Array(prompt[s..<(s + 8)]), cache: caches[b], allLogits: false) }
            var tokens = starts.map { prompt[$0 + 8] }
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<generatedTokens {
                let logits = try model.decodeBatch(tokens, caches: caches)
                for b in 0..<batch { tokens[b] = Sampler.argmax(UnsafeBufferPointer(rebasing: logits[(b * vocab)..<((b + 1) * vocab)])) }
            }
            return Double(generatedTokens * batch) / seconds(since: start)
        }
        var contextCache: KVCache?
        func generation() throws -> Double {
            if batch > 1 { return try batchedGeneration() }
            let cache: KVCache
            if context > 8 {
                // Decoding at a long context: prefill it once, come back to it for each repetition where the cache allows.
                if contextCache == nil {
                    let filled = model.makeCache()
                    _ = try model.forward((0..<context).map { ($0 * 7919 + 13) % (vocab - 10) + 5 }, cache: filled, allLogits: false)
                    contextCache = filled
                }
                cache = contextCache!
                if cache.canKeepPrefix { cache.truncate(to: context) }
            } else {
                cache = model.makeCache()
                _ = try model.forward(Array(prompt[..<8]), cache: cache, allLogits: false)
            }
            var token = prompt[8]
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<generatedTokens {
                token = Sampler.argmax(try model.decode(token, cache: cache))
            }
            return Double(generatedTokens) / seconds(since: start)
        }
        // One extra pass (prefill + generation) that records which experts the router picks (MoE models).
        let load = ExpertLoad()
        let statsCache = model.makeCache()
        statsCache.expertLoad = load
        var statsToken = Sampler.argmax(try model.forward(prompt, cache: statsCache, allLogits: false))
        let rssAfterPrefill = residentMemory()
        for _ in 0..<generatedTokens { statsToken = Sampler.argmax(try model.decode(statsToken, cache: statsCache)) }
        let rssAfterDecode = residentMemory()
        let experts = ExpertBytes(model: model, load: load)
        _ = try promptProcessing()
        _ = try generation()
        let pp = median(try (0..<repeats).map { _ in try promptProcessing() })
        let tg = median(try (0..<repeats).map { _ in try generation() })
        let rss = residentMemory()
        let traffic = DecodeTraffic(model: model, fileBytes: fileBytes)
        let weightGBs = Double(traffic.bytesPerToken) * tg / Double(batch) / 1e9
        let bandwidth = roofline ? MemoryBandwidth.read(pool: ThreadPool.shared, seconds: 0.5) : 0
        let verifyCosts = try verifySizes.map { n in (n, try verifyCost(model: model, prompt: prompt, tokens: n)) }
        if json {
            print("{\"engine\": \"kujira\", \"model\": \"\(modelOptions.model)\", \"threads\": \(threadOptions.effectiveThreads), "
                + "\"p\": \(promptTokens), \"n\": \(generatedTokens), \"batch\": \(batch), \"context\": \(context), \"pp_tok_s\": \(round2(pp)), \"tg_tok_s\": \(round2(tg)), "
                + "\"peak_rss_bytes\": \(rss.peak), \"rss_after_load_bytes\": \(rssAfterLoad.current), \"rss_anon_after_load_bytes\": \(rssAfterLoad.anonymous), "
                + "\"rss_after_prefill_bytes\": \(rssAfterPrefill.current), \"rss_after_decode_bytes\": \(rssAfterDecode.current), "
                + "\"rss_anon_after_decode_bytes\": \(rssAfterDecode.anonymous), \"file_bytes\": \(fileBytes), \"kv_bits\": \(modelOptions.kvBits)"
                + (experts.total == 0 ? "" : ", \"expert_bytes_total\": \(experts.total), \"expert_bytes_touched\": \(experts.touched)")
                + (load.counts.isEmpty ? "" : ", \"expert_load_max_over_mean\": \(round2(load.maxOverMean)), \"experts_touched\": \(load.touched.used), \"experts_total\": \(load.touched.total)")
                + ", \"weight_bytes_per_token\": \(traffic.bytesPerToken), \"tg_weight_gb_s\": \(round2(weightGBs))"
                + (roofline ? ", \"read_bandwidth_gb_s\": \(round2(bandwidth)), \"roofline_fraction\": \(round2(weightGBs / bandwidth))" : "")
                + (verifyCosts.isEmpty ? "" : ", \"verify_cost_over_decode\": {" + verifyCosts.map { "\"\($0.0)\": \(round2($0.1))" }.joined(separator: ", ") + "}")
                + "}")
        } else {
            print("model      \(modelOptions.model)")
            print("threads    \(threadOptions.effectiveThreads)")
            print("pp\(promptTokens)      \(round2(pp)) tok/s")
            print("tg\(generatedTokens)       \(round2(tg)) tok/s" + (context > 8 ? " at a \(context)-token context (\(round2(1000 / tg)) ms/token)" : "") + (batch > 1 ? " (aggregate of \(batch) sequences decoding together; \(round2(tg / Double(batch))) each)" : ""))
            print("weights    \(traffic.bytesPerToken / 1_048_576) MiB read per decoded token → tg streams \(round2(weightGBs)) GB/s"
                + (roofline ? String(format: "; memory read bandwidth %.1f GB/s → %.0f%% of the roofline", bandwidth, 100 * weightGBs / bandwidth) : ""))
            for (n, cost) in verifyCosts { print("verify     one pass over \(n) tokens costs \(round2(cost))x a decoding step") }
            print("peak RSS   \(rss.peak / 1_048_576) MiB; weight files \(fileBytes / 1_048_576) MiB mapped")
            print("RSS (MiB)  after load \(describeResident(rssAfterLoad)), after one \(promptTokens)-token prefill \(describeResident(rssAfterPrefill)), "
                + "after its \(generatedTokens) decode steps \(describeResident(rssAfterDecode))")
            if experts.total > 0 {
                print("expert weights touched \(experts.touched / 1_048_576) of \(experts.total / 1_048_576) MiB")
            }
            if !load.counts.isEmpty {
                print("experts    \(load.touched.used)/\(load.touched.total) touched by the \(promptTokens)-token prompt and \(generatedTokens) generated tokens; max/mean load \(round2(load.maxOverMean))")
                for layer in load.counts.keys.sorted() {
                    print("  layer \(layer): tokens per expert \(load.counts[layer]!.map(String.init).joined(separator: " "))")
                }
            }
        }
    }

    /// Median time of one forward pass over `tokens` tokens (every row's logits, as a verify needs) after an 8-token
    /// context, divided by the median time of one decoding step there.
    func verifyCost(model: any LanguageModel, prompt: [Int], tokens n: Int) throws -> Double {
        func filled() throws -> KVCache {
            let cache = model.makeCache()
            _ = try model.forward(Array(prompt[..<8]), cache: cache, allLogits: false)
            return cache
        }
        var cache = try filled()
        let input = (8..<(8 + n)).map { ($0 * 7919 + 13) % (model.vocabSize - 10) + 5 }
        func time(_ body: () throws -> Void) throws -> Double {
            var samples: [Double] = []
            for _ in 0..<(2 * repeats + 5) {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                samples.append(seconds(since: start))
                if cache.canKeepPrefix { cache.truncate(to: 8) } else { cache = try filled() }
            }
            return median(Array(samples.dropFirst()))
        }
        let step = try time { _ = try model.decode(input[0], cache: cache) }
        let pass = try time { _ = try model.forward(input, cache: cache, allLogits: true) }
        return pass / step
    }

    func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    func median(_ values: [Double]) -> Double { let s = values.sorted(); return s[s.count / 2] }
    func round2(_ v: Double) -> Double { (v * 100).rounded() / 100 }
}

/// Resident memory of this process from /proc/self/status (0 where unavailable): current and peak, and the current
/// split into anonymous pages (allocations: copies would show here) and file pages (the mapped weights).
func residentMemory() -> (current: Int, peak: Int, anonymous: Int, file: Int) {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0, 0, 0) }
    func kilobytes(_ key: String) -> Int {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return 0 }
        // "VmRSS:\t  123 kB"; from 10 GB on there is no space after the tab.
        return (Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "0") ?? 0) * 1024
    }
    return (kilobytes("VmRSS:"), kilobytes("VmHWM:"), kilobytes("RssAnon:"), kilobytes("RssFile:"))
}

/// "total (anon A, file F)" in MiB.
func describeResident(_ r: (current: Int, peak: Int, anonymous: Int, file: Int)) -> String {
    "\(r.current / 1_048_576) (anon \(r.anonymous / 1_048_576), file \(r.file / 1_048_576))"
}

/// Bytes of routed-expert weights in the model and in the experts the recorded load touched (what paging-in costs).
struct ExpertBytes {
    var total = 0, touched = 0

    init(model: any LanguageModel, load: ExpertLoad) {
        guard let stacked = model as? any DecoderStackModel else { return }
        for (index, layer) in stacked.stack.layers.enumerated() {
            guard let moe = layer.mixtureOfExperts else { continue }
            let counts = load.counts[index] ?? []
            for (e, expert) in moe.experts.enumerated() {
                let bytes = expert.weightBytes
                total += bytes
                if e < counts.count && counts[e] > 0 { touched += bytes }
            }
        }
    }
}
