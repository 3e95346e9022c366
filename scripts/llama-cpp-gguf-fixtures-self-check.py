#!/usr/bin/env python3
"""For every GGUF fixture: does llama.cpp itself reproduce its own golden (first 4 greedy tokens) when only its
attention settings change (flash attention on, or an f32 KV cache)? Measures how stable those goldens are.
Run with the reference env: ~/.cache/kujira-ref/venv/bin/python scripts/llama-cpp-gguf-fixtures-self-check.py"""
import glob, json, os, numpy as np, llama_cpp
root = os.path.join(os.path.dirname(__file__), '..', 'Tests/Fixtures/gguf')
settings = [("golden settings (no FA, f16 KV)", False, 1), ("flash attention", True, 1), ("f32 KV cache", False, 0)]
totals = {s[0]: [0, 0] for s in settings}
for path in sorted(glob.glob(os.path.join(root, '*.gguf'))):
    golden = json.load(open(path.replace('.gguf', '.golden.json')))
    row = []
    for name, fa, kv in settings:
        llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=2, verbose=False, logits_all=True, flash_attn=fa, type_k=kv, type_v=kv)
        ok = 0
        for case in golden['cases']:
            llm.reset(); llm.eval(case['tokens']); out = []
            for _ in range(4):
                t = int(np.argmax(llm.scores[llm.n_tokens - 1])); out.append(t); llm.eval([t])
            ok += out == case['greedy'][:4]
        totals[name][0] += ok; totals[name][1] += len(golden['cases'])
        row.append(f"{ok}/{len(golden['cases'])}")
    print(os.path.basename(path), *row)
for name, (ok, n) in totals.items():
    print(f"{name}: {ok}/{n} cases reproduce the golden's first 4 greedy tokens")
