#!/usr/bin/env python3
"""Wall time of whole `kujira run` processes with and without speculative decoding, alternating, same prompt.

Usage: scripts/bench_speculation.py --model FILE [--speculative ngram] [--rounds 5] [--kujira .build/release/kujira]
       [--prompts FILE --lines A-B]   (each prompt of lines A..B of FILE instead of the passage tasks, plus a total)
Prints, per task, the median seconds of each setting (whole processes: load included), their ratio, the median
tokens/s of the generation itself (`--verbose`: prompt prefill and decoding) and its ratio, the drafts accepted (from --verbose) and whether
the outputs were identical. The tasks: a ~170-word passage, then "repeat" (copying) and "summarise" instructions.
"""
import argparse, re, statistics, subprocess, time

PASSAGE = (
    "The lighthouse at Carrow Point was built in 1871 to guard ships from the reef that runs two miles out from the "
    "headland. Its keeper, Margaret Ellis, lived in the cottage below the tower for thirty-one years. Each evening she "
    "climbed one hundred and twelve steps to light the lamp, trimmed the wick at midnight, and wrote the weather in a "
    "leather logbook. In the winter of 1894 a storm drove the schooner Alder onto the rocks; Margaret rowed out twice "
    "in the dark and brought eleven sailors to shore. The town gave her a silver medal, which she kept in a drawer and "
    "never wore. When the light was automated in 1952, the logbooks went to the county museum, where visitors can still "
    "read her small, careful handwriting. The cottage is now a guest house, and the tower is open on summer weekends. "
    "From the top you can see the reef at low tide, a dark line of rock under the water, and on clear days the hills "
    "of the next county across the bay."
)
TASKS = {
    "repeat": "Repeat the first three sentences of the text above word for word.",
    "summarise": "Summarize the text above in a few sentences.",
}


def run(kujira, model, speculation, prompt, max_tokens):
    start = time.monotonic()
    result = subprocess.run([kujira, "run", "--model", model, "--temperature", "0", "--max-tokens", str(max_tokens),
                             "--speculative", speculation, "--verbose", prompt], capture_output=True, text=True, check=True)
    seconds = time.monotonic() - start
    drafts = re.search(r"(\d+) of (\d+) drafts accepted", result.stderr)
    rate = float(re.search(r"([\d.]+) tok/s overall", result.stderr).group(1))
    return seconds, rate, result.stdout, (drafts.group(1) + "/" + drafts.group(2)) if drafts else "0/0"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--speculative", default="ngram")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--kujira", default=".build/release/kujira")
    parser.add_argument("--prompts", help="a file of prompts, one per line, used as they are")
    parser.add_argument("--lines", default="1-8", help="which lines of --prompts (1-based, inclusive)")
    args = parser.parse_args()
    tasks = {name: PASSAGE + "\n\n" + instruction for name, instruction in TASKS.items()}
    if args.prompts:
        first, last = (int(x) for x in args.lines.split("-"))
        lines = [l.strip() for l in open(args.prompts, encoding="utf-8") if l.strip()]
        tasks = {f"line {i}": lines[i - 1] for i in range(first, min(last, len(lines)) + 1)}
    totals = {"off": 0.0, args.speculative: 0.0, "accepted": 0, "drafted": 0, "same": True}
    for name, prompt in tasks.items():
        times = {"off": [], args.speculative: []}
        rates = {"off": [], args.speculative: []}
        outputs, drafts = {}, ""
        for _ in range(args.rounds):
            for setting in times:
                seconds, rate, text, accepted = run(args.kujira, args.model, setting, prompt, args.max_tokens)
                times[setting].append(seconds)
                rates[setting].append(rate)
                outputs.setdefault(setting, set()).add(text)
                if setting != "off":
                    drafts = accepted
        off, spec = statistics.median(times["off"]), statistics.median(times[args.speculative])
        same = outputs["off"] == outputs[args.speculative] and len(outputs["off"]) == 1
        rate_off, rate_spec = statistics.median(rates["off"]), statistics.median(rates[args.speculative])
        totals["off"] += 1 / rate_off
        totals[args.speculative] += 1 / rate_spec
        accepted, drafted = (int(x) for x in drafts.split("/"))
        totals["accepted"] += accepted
        totals["drafted"] += drafted
        totals["same"] = totals["same"] and same
        print(f"{name}: process wall time off {off:.3f} s, {args.speculative} {spec:.3f} s ({spec / off:.2f}x); generation "
              f"(prefill + decode) {rate_off:.1f} vs {rate_spec:.1f} tokens/s ({rate_spec / rate_off:.2f}x); drafts accepted "
              f"{drafts}; identical output: {same}")

    if len(tasks) > 1:
        print(f"all {len(tasks)}: mean generation tokens/s (harmonic) {len(tasks) / totals['off']:.1f} vs "
              f"{len(tasks) / totals[args.speculative]:.1f} ({totals['off'] / totals[args.speculative]:.2f}x); drafts accepted "
              f"{totals['accepted']}/{totals['drafted']}; identical output: {totals['same']}")


if __name__ == "__main__":
    main()
