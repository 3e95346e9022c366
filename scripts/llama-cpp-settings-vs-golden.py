#!/usr/bin/env python3
"""How many greedy tokens llama.cpp itself reproduces of its SmolLM2 golden under different settings (flash attention,
KV cache type). Run with the reference env: ~/.cache/kujira-ref/venv/bin/python scripts/llama-cpp-settings-vs-golden.py"""
import json, os, numpy as np, llama_cpp
M=os.path.expanduser('~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf')
g=json.load(open(os.path.join(os.path.dirname(__file__), '..', 'Tests/Fixtures/smollm2/golden.json')))
for fa, tk in [(False,1),(True,1),(False,0)]:
    llm=llama_cpp.Llama(model_path=M, n_ctx=512, n_threads=2, verbose=False, logits_all=True, flash_attn=fa, type_k=tk, type_v=tk)
    res=[]
    for c in g['cases']:
        llm.reset(); llm.eval(c['prompt_tokens']); out=[]
        for _ in range(len(c['greedy'])):
            t=int(np.argmax(llm.scores[llm.n_tokens-1])); out.append(t); llm.eval([t])
        n=0
        while n<len(out) and out[n]==c['greedy'][n]: n+=1
        res.append(n)
    print('flash_attn',fa,'kv','f16' if tk==1 else 'f32','greedy prefix equal to golden per prompt:',res, 'of', [len(c['greedy']) for c in g['cases']])
