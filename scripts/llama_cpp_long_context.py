#!/usr/bin/env python3
"""llama.cpp's decoding speed after a long prompt (through llama-cpp-python), to set beside
`kujira bench --context C -n N`: the same synthetic prompt as ../shared/tools/llama_cpp_bench.py, evaluated once in
batches of 512, then N tokens one at a time at that context; prints one JSON line.

usage: llama_cpp_long_context.py MODEL.gguf [--context 4096] [-n 32] [-t 2]
"""
import argparse, json, resource, time
import llama_cpp

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("--context", type=int, default=4096); ap.add_argument("-n", type=int, default=32)
ap.add_argument("-t", type=int, default=2)
a = ap.parse_args()
llm = llama_cpp.Llama(model_path=a.model, n_ctx=a.context + a.n + 8, n_batch=512, n_threads=a.t, n_threads_batch=a.t,
                      verbose=False, logits_all=False)
vocab = llm.n_vocab()
prompt = [(i * 7919 + 13) % (vocab - 10) + 5 for i in range(a.context)]
start = time.perf_counter()
llm.eval(prompt)
prefill = a.context / (time.perf_counter() - start)
tok = prompt[-1]
start = time.perf_counter()
for i in range(a.n):
    llm.eval([tok])
    tok = prompt[i % a.context]
tg = a.n / (time.perf_counter() - start)
print(json.dumps({"engine": "llama.cpp", "version": llama_cpp.__version__, "model": a.model, "threads": a.t, "context": a.context,
                  "n": a.n, "prefill_tok_s": round(prefill, 2), "tg_tok_s": round(tg, 2),
                  "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
