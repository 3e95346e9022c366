#!/usr/bin/env python3
"""`--numerics llama.cpp` against llama.cpp itself, logit by logit: for each SmolLM2 golden prompt, the prompt's logits
(one batch) and then every greedy decode step (one-token batches), max |Δ| between `kujira logits` and llama-cpp-python
over the whole vocabulary, and whether the greedy paths agree. Exact emulation prints 0.0 everywhere.
usage: ~/.cache/kujira-ref/venv/bin/python scripts/llama-cpp-numerics-check.py [KUJIRA_BIN] [MODEL.gguf]"""
import json, os, subprocess, sys, numpy as np, llama_cpp
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
kujira = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, '.build/release/kujira')
model = sys.argv[2] if len(sys.argv) > 2 else os.path.expanduser('~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf')
golden = json.load(open(os.path.join(root, 'Tests/Fixtures/smollm2/golden.json')))
llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_threads=2, verbose=False, logits_all=True)
worst = 0.0
for index, case in enumerate(golden['cases']):
    prompt = case['prompt_tokens']
    llm.reset(); llm.eval(prompt)
    reference = [np.array(llm.scores[i], dtype=np.float32) for i in range(len(prompt))]
    path = []
    for _ in range(len(case['greedy'])):
        t = int(np.argmax(llm.scores[llm.n_tokens - 1])); path.append(t); llm.eval([t])
        reference.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
    # Kujira: the prompt in one batch, then one token at a time (the generate path), logits of every step.
    out = subprocess.run([kujira, 'generate', '--model', model, '--tokens', ','.join(map(str, prompt)), '--max-tokens', str(len(path)),
                          '--numerics', 'llama.cpp', '--json', '--logits'], capture_output=True, text=True, check=True)
    ours = json.loads(out.stdout)
    steps = np.array(ours['logits'], dtype=np.float32)  # JSON holds each float32's shortest repr: parse back to float32
    prompt_rows = json.loads(subprocess.run([kujira, 'logits', '--model', model, '--tokens', ','.join(map(str, prompt)), '--numerics', 'llama.cpp'],
                                            capture_output=True, text=True, check=True).stdout)['logits']
    d_prompt = float(np.max(np.abs(np.array(prompt_rows, dtype=np.float32) - np.array(reference[:len(prompt)]))))
    d_steps = float(np.max(np.abs(steps - np.array(reference[len(prompt) - 1:len(prompt) - 1 + len(steps)]))))
    same = next((i for i, (a, b) in enumerate(zip(ours['tokens'], path)) if a != b), len(path))
    worst = max(worst, d_prompt, d_steps)
    print(f'case {index}: prompt logits max|Δ| {d_prompt:g}, decode steps max|Δ| {d_steps:g}, greedy equal for {same}/{len(path)} '
          f'(golden: {sum(1 for _ in zip(path, case["greedy"]) if _[0] == _[1])}/{len(case["greedy"])})')
print('worst max|Δ|', worst)
