#!/usr/bin/env python3
"""Error of the 8-bit KV cache (`--kv-bits 8`) against the float cache on one model.

1. Greedy generation of N tokens with each cache (`kujira generate --json --ignore-eos`): how many leading tokens agree.
2. Teacher-forced on the float run's tokens (`kujira logits`, which reads the cache exactly as decoding does): max
   |Δlogit| per position and top-1 agreement.

    python3 scripts/kv-int8-error.py MODEL [--kujira .build/release/kujira] [--prompt 1,2,3,4,5,6,7,8] [-n 64]
"""
import argparse, json, subprocess
import numpy as np

def run(cmd):
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--kujira", default=".build/release/kujira")
    ap.add_argument("--prompt", default="1,2,3,4,5,6,7,8")
    ap.add_argument("-n", type=int, default=64)
    a = ap.parse_args()
    prompt = [int(t) for t in a.prompt.split(",")]
    greedy = {}
    for bits in (32, 8):
        greedy[bits] = run([a.kujira, "generate", "--model", a.model, "--kv-bits", str(bits), "--tokens", a.prompt,
                            "--max-tokens", str(a.n), "--ignore-eos", "--json"])["tokens"]
    same = next((i for i, (x, y) in enumerate(zip(greedy[32], greedy[8])) if x != y), min(len(greedy[32]), len(greedy[8])))
    sequence = ",".join(str(t) for t in prompt + greedy[32])
    logits = {bits: np.array(run([a.kujira, "logits", "--model", a.model, "--kv-bits", str(bits), "--tokens", sequence])["logits"],
                             dtype=np.float64) for bits in (32, 8)}
    diff = np.abs(logits[32] - logits[8]).max(axis=1)
    top1 = (logits[32].argmax(axis=1) == logits[8].argmax(axis=1)).mean()
    print(json.dumps({
        "model": a.model, "greedy_tokens": a.n, "greedy_equal_prefix": same,
        "teacher_forced_positions": len(diff), "max_abs_dlogit": float(diff.max()), "median_abs_dlogit_per_position": float(np.median(diff)),
        "logit_range": float(np.abs(logits[32]).max()), "top1_agreement": float(top1),
    }))

if __name__ == "__main__":
    main()
