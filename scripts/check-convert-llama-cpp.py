#!/usr/bin/env python3
"""Does llama.cpp load and run what `kujira convert --to gguf` writes, with the right numbers?

Converts each fixture model (Tests/Fixtures/models/*) to GGUF f32, f16, bf16, q8_0 and q4_k with a kujira binary,
loads every file in llama-cpp-python (llama.cpp 0.3.36 here), evaluates the golden prompts with all logits, and prints
max |Δlogit| against the HF transformers golden plus whether the last position's top-1 token agrees. The embedded
model (Models/kujira-arith, a DeepSeek-V3 architecture with a real tokenizer and an MTP layer) has no HF golden: its
reference is `kujira logits` on the HF directory (which the test suite holds to the HF goldens at 1e-4), and its
tokenizer is checked by llama.cpp tokenizing a prompt like our tokenizer.json does.

llama.cpp runs with an F32 KV cache: its default F16 cache alone moves logits by ~1e-2 (docs/pitfalls).

Run:  swift build && ~/.cache/kujira-ref/venv/bin/python scripts/check-convert-llama-cpp.py [--kujira .build/debug/kujira]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import llama_cpp

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
FIXTURES = ["qwen2-tiny", "llama-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v3-tiny", "deepseek-v3-tiny-fp8", "deepseek-v3-tiny-bf16", "deepseek-v2-lite-tiny"]
TYPES = ["f32", "f16", "bf16", "q8_0", "q4_k"]


def convert(kujira, model, gguf_type, out):
    subprocess.run([kujira, "convert", "--model", model, "--to", "gguf", "--type", gguf_type, "--out", out, "--quiet", "--force"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def quiet_llama(**kwargs):
    """llama.cpp's load-time chatter goes to the C stderr; keep it out of the table."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        return llama_cpp.Llama(**kwargs)
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def llama_logits(path, cases):
    llm = quiet_llama(model_path=path, n_ctx=512, n_threads=2, n_batch=512, logits_all=True, verbose=False,
                          type_k=0, type_v=0, flash_attn=False)
    out = []
    for tokens in cases:
        llm.reset()
        llm.eval(tokens)
        out.append(np.array(llm.scores[:len(tokens)], dtype=np.float32))
    return llm, out


def compare(ours, golden):
    worst = max(float(np.max(np.abs(o - g))) for o, g in zip(ours, golden))
    top1 = all(int(np.argmax(o[-1])) == int(np.argmax(g[-1])) for o, g in zip(ours, golden))
    return worst, top1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kujira", default=os.path.join(ROOT, ".build", "debug", "kujira"))
    ap.add_argument("--types", default=",".join(TYPES))
    args = ap.parse_args()
    types = args.types.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fixture in FIXTURES:
            model = os.path.join(ROOT, "Tests", "Fixtures", "models", fixture)
            golden = json.load(open(os.path.join(model, "golden.json")))
            cases = [c["tokens"] for c in golden["cases"]]
            expected = [np.array(c["logits"], dtype=np.float32) for c in golden["cases"]]
            for t in types:
                path = os.path.join(tmp, f"{fixture}-{t}.gguf")
                convert(args.kujira, model, t, path)
                _, logits = llama_logits(path, cases)
                worst, top1 = compare(logits, expected)
                rows.append((fixture, t, "HF golden", worst, top1))

        arith = os.path.join(ROOT, "Models", "kujira-arith")
        prompt_text = "<｜User｜>123+45=<｜Assistant｜><think>\n"
        ids = json.loads(subprocess.run([args.kujira, "tokenize", "--tokenizer", arith, "--text", prompt_text],
                                        check=True, capture_output=True, text=True).stdout)
        ref = json.loads(subprocess.run([args.kujira, "logits", "--model", arith, "--tokens", ",".join(map(str, ids))],
                                        check=True, capture_output=True, text=True).stdout)["logits"]
        ref = [np.array(ref, dtype=np.float32)]
        for t in types:
            path = os.path.join(tmp, f"kujira-arith-{t}.gguf")
            convert(args.kujira, arith, t, path)
            llm, logits = llama_logits(path, [ids])
            worst, top1 = compare(logits, ref)
            llama_ids = llm.tokenize(prompt_text.encode(), add_bos=False, special=True)
            rows.append(("kujira-arith", t, "kujira logits (HF dir)", worst, top1))
            if llama_ids != ids:
                print(f"kujira-arith {t}: llama.cpp tokenizes the prompt as {llama_ids}, tokenizer.json as {ids}")
                rows[-1] = rows[-1][:4] + (False,)

    print(f"{'model':24} {'type':5} {'reference':24} {'max |Δlogit|':>13}  top-1")
    for fixture, t, reference, worst, top1 in rows:
        print(f"{fixture:24} {t:5} {reference:24} {worst:13.2e}  {'same' if top1 else 'DIFFERENT'}")
    bad = [r for r in rows if r[1] == "f32" and r[3] > 1e-3]
    if bad:
        print("f32 files off by more than 1e-3:", [r[0] for r in bad])
        sys.exit(1)


if __name__ == "__main__":
    main()
