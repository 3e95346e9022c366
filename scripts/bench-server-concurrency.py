#!/usr/bin/env python3
"""Aggregate generation throughput of a running `kujira serve` with 1, 2, 4 … concurrent streaming requests.

Usage: scripts/bench-server-concurrency.py http://127.0.0.1:PORT [--concurrency 1,2,4] [--max-tokens 64] [--repeats 2]
Each request POSTs /v1/completions (stream, temperature 0) with its own prompt; completion tokens come from the
final usage chunk. Aggregate tok/s = all completion tokens / wall time from the first request to the last [DONE]
(prefill included, as a client sees it). Prints one line per concurrency (the best of --repeats)."""
import argparse, json, threading, time, urllib.request

PROMPTS = ["Once upon a time, in a small village by the sea,", "The three most important ideas in physics are",
           "Here is a recipe for a simple tomato soup:", "Write a short letter to a friend about your holiday.",
           "The history of the printing press begins", "A list of ten animals that live in the ocean:",
           "In computer science, a hash table is", "The best way to learn a new language is"]

def one_request(base, prompt, max_tokens, out, index):
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    request = urllib.request.Request(base + "/v1/completions", data=body, headers={"Content-Type": "application/json"})
    tokens, chunks = None, 0
    with urllib.request.urlopen(request) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            elif event.get("choices"):
                chunks += 1
    out[index] = tokens if tokens is not None else chunks

def run(base, concurrency, max_tokens):
    out = [0] * concurrency
    threads = [threading.Thread(target=one_request, args=(base, PROMPTS[i % len(PROMPTS)], max_tokens, out, i)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    seconds = time.perf_counter() - start
    return sum(out), seconds

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    run(args.base, 1, 8)  # warm-up
    for c in [int(x) for x in args.concurrency.split(",")]:
        best = max((run(args.base, c, args.max_tokens) for _ in range(args.repeats)), key=lambda r: r[0] / r[1])
        tokens, seconds = best
        print(f"concurrency {c}: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tok/s aggregate")

if __name__ == "__main__":
    main()
