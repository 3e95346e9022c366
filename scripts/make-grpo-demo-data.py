#!/usr/bin/env python3
"""Writes Examples/grpo-addition/{train,heldout}.jsonl: two-digit additions as GRPO prompts with an "answer" field,
for `kujira grpo --data ... --reward number` (docs/finetuning.md). A problem (a, b) with 10 <= a, b <= 99 is held out
when (a * 31 + b * 17) % 5 == 0, so the two files never share a problem; each file is a seeded sample of its side.
usage: scripts/make-grpo-demo-data.py"""
import json, os, random

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Examples", "grpo-addition")
os.makedirs(root, exist_ok=True)
pairs = [(a, b) for a in range(10, 100) for b in range(10, 100)]
held = [p for p in pairs if (p[0] * 31 + p[1] * 17) % 5 == 0]
train = [p for p in pairs if (p[0] * 31 + p[1] * 17) % 5 != 0]
rng = random.Random(2026)
for name, source, count in [("train", train, 400), ("heldout", held, 100)]:
    lines = [json.dumps({"messages": [{"role": "user", "content": f"What is {a} + {b}? Reply with only the number."}], "answer": str(a + b)})
             for a, b in rng.sample(source, count)]
    with open(os.path.join(root, f"{name}.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
print(f"train {400}, heldout {100} prompts in {root}")
