#!/usr/bin/env python3
"""Writes Tests/Fixtures/topk/golden.json: tie-heavy rows and the indices torch.topk (CPU) keeps for each, so the test
suite can check `TorchTopK` (Sources/KujiraTensor/Kernels/TopK.swift) picks the same keys among exact ties as the
reference implementations do. Rows mix zeros (a lightning indexer's ReLU), ±1, −inf (masked future keys) and random
values; sizes cover both of ATen's paths (nth_element when k·64 > n, partial_sort otherwise).

Run:  ~/.cache/kujira-ref/venv/bin/python scripts/make-topk-goldens.py
"""
import json, os, random
import torch

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = os.path.join(root, "Tests", "Fixtures", "topk")
os.makedirs(out, exist_ok=True)
random.seed(20261206)
cases = []
for _ in range(250):
    n = random.choice([random.randint(2, 40), random.randint(41, 300)])
    k = random.randint(1, min(n, 64))
    row = [random.choice([0.0, 0.0, 0.0, 1.0, -1.0, float("-inf"), round(random.uniform(-2, 2), 3)]) for _ in range(n)]
    picked = sorted(torch.tensor(row, dtype=torch.float32).topk(k).indices.tolist())
    cases.append({"values": ["-inf" if v == float("-inf") else v for v in row], "k": k, "indices": picked})
with open(os.path.join(out, "golden.json"), "w") as f:
    json.dump({"generator": f"torch {torch.__version__} torch.topk on CPU", "cases": cases}, f, separators=(",", ":"))
print(f"{len(cases)} cases -> {out}/golden.json")
