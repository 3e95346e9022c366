#!/usr/bin/env python3
"""Converts the Qwen3 fixtures with llama.cpp's own converter (convert_hf_to_gguf.py from the llama.cpp that
llama-cpp-python 0.3.36 vendors) into Tests/Fixtures/gguf/{qwen3-tiny,qwen3-moe-tiny}-{f32,q8_0}.gguf, and writes
llama.cpp's own first-step logits and greedy tokens beside each file (`<file>.golden.json`, llama-cpp-python).

The tiny models have a 256-id vocabulary; they are converted with the 256-token byte-level test tokenizer of
Tests/Fixtures/server/tiny-chat, whose pre-tokenizer llama.cpp does not know by hash, so it is declared `qwen2` (the
pre-tokenizer every Qwen3 GGUF carries). Only the model part of these files is compared by the tests.

Run:  ~/.cache/kujira-ref/venv/bin/python scripts/make-qwen3-gguf-fixtures.py
"""
import glob, json, os, shutil, subprocess, sys, tarfile, tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CACHE = os.path.expanduser("~/.cache/kujira-ref/llama-cpp-python-src")


def llama_cpp_source():
    """The llama.cpp tree vendored in the llama-cpp-python 0.3.36 source distribution (downloaded once from PyPI)."""
    tree = os.path.join(CACHE, "llama_cpp_python-0.3.36", "vendor", "llama.cpp")
    if not os.path.exists(os.path.join(tree, "convert_hf_to_gguf.py")):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
                        "llama-cpp-python==0.3.36", "-d", CACHE], check=True)
        with tarfile.open(glob.glob(os.path.join(CACHE, "llama_cpp_python-0.3.36.tar.gz"))[0]) as t:
            t.extractall(CACHE)
    return tree


def convert(tree, fixture, outtype, out):
    with tempfile.TemporaryDirectory() as d:
        for f in ["config.json", "model.safetensors"]:
            shutil.copy(os.path.join(ROOT, "Tests/Fixtures/models", fixture, f), d)
        shutil.copy(os.path.join(ROOT, "Tests/Fixtures/server/tiny-chat/tokenizer_config.json"), d)
        # llama.cpp refuses a BPE vocabulary without merges: give the byte-level test tokenizer one ("Ġ Ġ", as the qwen2
        # and deepseek fixture files carry).
        tokenizer = json.load(open(os.path.join(ROOT, "Tests/Fixtures/server/tiny-chat/tokenizer.json")))
        vocab = tokenizer["model"]["vocab"]
        last = max(vocab, key=vocab.get)  # the merge's result takes the last id, so the vocabulary stays 256
        vocab["ĠĠ"] = vocab.pop(last)
        tokenizer["model"]["merges"] = ["Ġ Ġ"]
        json.dump(tokenizer, open(os.path.join(d, "tokenizer.json"), "w"), ensure_ascii=False)
        code = f"""
import sys
sys.path[:0] = [{tree!r}, {os.path.join(tree, 'gguf-py')!r}]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
import convert_hf_to_gguf
sys.argv = ["convert_hf_to_gguf.py", {d!r}, "--outtype", {outtype!r}, "--outfile", {out!r}]
convert_hf_to_gguf.main()
"""
        subprocess.run([sys.executable, "-c", code], check=True)


def llama_cpp_goldens(path, fixture):
    """llama.cpp's first-step logits and 8 greedy tokens per golden prompt, with its default settings (f16 KV cache),
    in the format of the other GGUF fixture goldens."""
    import numpy as np, llama_cpp
    golden = json.load(open(os.path.join(ROOT, "Tests/Fixtures/models", fixture, "golden.json")))
    model = llama_cpp.Llama(model_path=path, n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    cases = []
    for c in golden["cases"]:
        model.reset()
        model.eval(c["tokens"])
        last = np.array(model.scores[len(c["tokens"]) - 1], dtype=np.float32)
        greedy, token = [], int(last.argmax())
        for _ in range(8):
            greedy.append(token)
            model.eval([token])
            token = int(np.array(model.scores[model.n_tokens - 1]).argmax())
        cases.append({"tokens": c["tokens"], "greedy": greedy, "last_logits": [round(float(v), 6) for v in last]})
    return {"engine": "llama.cpp via llama-cpp-python 0.3.36", "file": os.path.basename(path), "converted_from": fixture,
            "note": "made by scripts/make-qwen3-gguf-fixtures.py: the last prompt position's logits (the first generation step)",
            "cases": cases}


def main():
    tree = llama_cpp_source()
    try:
        import sentencepiece  # noqa: F401 — the converter tries it first and falls back to the BPE vocabulary
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "sentencepiece"], check=True)
    for fixture in ["qwen3-tiny", "qwen3-moe-tiny"]:
        for outtype in ["f32", "q8_0"]:
            out = os.path.join(ROOT, "Tests/Fixtures/gguf", f"{fixture}-{outtype}.gguf")
            convert(tree, fixture, outtype, out)
            json.dump(llama_cpp_goldens(out, fixture), open(out[:-len(".gguf")] + ".golden.json", "w"), separators=(",", ":"))
            print(out, os.path.getsize(out))


if __name__ == "__main__":
    main()
