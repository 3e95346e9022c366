#!/usr/bin/env python3
"""Kujira vs llama.cpp on one GGUF (single file or the first shard of a split set): first-step logits of a few token
prompts (max |Δ|, top-1, llama.cpp's top-2 margin) and greedy continuations (equal prefix length).
usage: ~/.cache/kujira-ref/venv/bin/python scripts/check-vs-llama-cpp.py FILE.gguf [--kujira .build/release/kujira] [--steps 8]"""
import argparse, json, subprocess
import numpy as np
import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--kujira", default=".build/release/kujira")
ap.add_argument("--steps", type=int, default=8)
args = ap.parse_args()
prompts = [[0, 100, 200, 300, 400, 500, 600, 700], [0, 1234, 4321, 999, 15, 27, 3100, 8, 77, 5000],
           [1, 504, 3458, 282, 260, 1513, 282, 4649, 47, 216, 504, 3458, 282, 260, 1513, 30]]
llm = llama_cpp.Llama(model_path=args.model, n_ctx=256, n_threads=2, verbose=False, logits_all=True)
for p in prompts:
    p = [t % llm.n_vocab() for t in p]
    llm.reset()
    llm.eval(p)
    ref = np.array(llm.scores[len(p) - 1])
    out = subprocess.run([args.kujira, "logits", "--model", args.model, "--tokens", ",".join(map(str, p))], capture_output=True, text=True, check=True)
    ours = np.array(json.loads(out.stdout)["logits"][-1])
    greedy = []
    llm.reset()
    for t in llm.generate(p, temp=0.0, top_k=1, reset=True):
        greedy.append(t)
        if len(greedy) == args.steps: break
    out = subprocess.run([args.kujira, "generate", "--model", args.model, "--tokens", ",".join(map(str, p)), "--max-tokens", str(args.steps),
                          "--temperature", "0", "--json", "--ignore-eos"], capture_output=True, text=True, check=True)
    mine = json.loads(out.stdout.strip().splitlines()[-1])["tokens"]
    equal = next((i for i in range(args.steps) if i >= len(mine) or mine[i] != greedy[i]), args.steps)
    top = np.sort(ref)
    print(json.dumps({"prompt_tokens": len(p), "max_abs_logit_diff": round(float(np.abs(ours - ref).max()), 4), "logit_std": round(float(ref.std()), 3),
                      "top1_llama_cpp": int(ref.argmax()), "top1_kujira": int(ours.argmax()), "llama_cpp_top2_margin": round(float(top[-1] - top[-2]), 4),
                      "greedy_equal_prefix": equal, "greedy_llama_cpp": greedy, "greedy_kujira": mine}))
