#!/usr/bin/env python3
"""Differential fuzz of `kujira tokenize` against HF `tokenizers` (pip install tokenizers).
Random strings over the characters where pre-tokenizers branch (contractions, marks, CJK, fullwidth digits,
NBSP/U+3000/U+2028/NEL/VT/CR/LF/CRLF, emoji, special tokens) are encoded by the release binary and by HF:
- with DeepSeek-V3's tokenizer.json;
- with each GGUF vocabulary of Tests/Fixtures/tokenizers/gguf-vocab, turned into the equivalent HF
  tokenizer.json (vocab, merges, control tokens, the pre-tokenizer the GGUF name stands for).
Usage: swift build -c release --product kujira && python3 scripts/fuzz-tokenizer-vs-hf.py [count]"""
import json, random, struct, subprocess, sys
from tokenizers import Tokenizer

BIN = subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], text=True).strip() + "/kujira"
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ALPHABET = ["a", "b", "Z", "s", "t", "S", "'", "\"", "é", "ß", "Ж", "日", "本", "の", "ア", "한", "\u0301", "0", "7",
            "٣", "５", "½", "!", ".", ",", "-", "(", "「", "。", "’", "$", "+", "<", "🐳", "©", " ", " ", " ", "\t", "\n",
            "\r", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b", "\u200d", "_", "`", "~", "Hello", " world",
            "123456", "ｱ", "ﾞ", "\u0000", "\x7f", "\ufeff", "Ω", "K", "ΐ"]

def texts(special):
    rng = random.Random(42)
    return ["".join(rng.choice(ALPHABET + special) for _ in range(rng.randint(0, 30))) for _ in range(COUNT)]

def kujira(tokenizer, items):
    out = subprocess.run([BIN, "tokenize", "--tokenizer", tokenizer, "--jsonl"], check=True, capture_output=True,
                         input="".join(json.dumps(t) + "\n" for t in items).encode()).stdout.decode()
    return [json.loads(line) for line in out.splitlines()]

def compare(name, hf, tokenizer, items):
    ours = kujira(tokenizer, items)
    bad = [(t, o, hf.encode(t, add_special_tokens=False).ids) for t, o in zip(items, ours)
           if o != hf.encode(t, add_special_tokens=False).ids]
    for t, o, h in bad[:3]:
        print("  MISMATCH", repr(t), o, h)
    print(f"{name:<16} {len(bad)} mismatches of {len(items)}")
    return not bad

def read_gguf_metadata(path):
    b = open(path, "rb").read(); o = 8
    _, nkv = struct.unpack_from("<QQ", b, o); o += 16
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    def string():
        nonlocal o
        n, = struct.unpack_from("<Q", b, o); o += 8; v = b[o:o + n].decode("utf-8"); o += n; return v
    def value(t):
        nonlocal o
        if t == 8: return string()
        if t == 9:
            et, = struct.unpack_from("<I", b, o); o += 4; n, = struct.unpack_from("<Q", b, o); o += 8
            if et == 8: return [string() for _ in range(n)]
            r = list(struct.unpack_from("<%d%s" % (n, fmt[et]), b, o)); o += n * size[et]; return r
        v, = struct.unpack_from("<" + fmt[t], b, o); o += size[t]; return v
    md = {}
    for _ in range(nkv):
        k = string(); t, = struct.unpack_from("<I", b, o); o += 4; md[k] = value(t)
    return md

# llama.cpp's deepseek-llm letter class, written with escapes where NFC would corrupt a range.
LETTERS = ("A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373"
           "\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f"
           "\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77"
           "\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d"
           "\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4"
           "\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
           "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d"
           "\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a"
           "\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2"
           "\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943")
CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
SPLITS = {"deepseek-llm": [r"[\r\n]", r"\s?[" + LETTERS + "]+", "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
                           r"\s+$", CJK, r"\p{N}+"],
          "deepseek-coder": [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"],
          "qwen2": [LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")], "llama-bpe": [LLAMA3], "gpt-2": None}

def hf_from_gguf(path):
    md = read_gguf_metadata(path); pre = md["tokenizer.ggml.pre"]
    tokens = md["tokenizer.ggml.tokens"]; types = md.get("tokenizer.ggml.token_type", [1] * len(tokens))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": SPLITS[pre] is None}
    pre_tokenizer = byte_level if SPLITS[pre] is None else {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False} for p in SPLITS[pre]] + [byte_level]}
    spec = {"version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": types[i] == 3} for i, t in enumerate(tokens) if types[i] in (3, 4)],
            "normalizer": {"type": "NFC"} if pre == "qwen2" else None, "pre_tokenizer": pre_tokenizer,
            "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": pre == "llama-bpe",
                      "vocab": {t: i for i, t in enumerate(tokens) if types[i] not in (3, 4)}, "merges": md["tokenizer.ggml.merges"]}}
    return pre, Tokenizer.from_str(json.dumps(spec)), [t for i, t in enumerate(tokens) if types[i] == 3][:3]

ok = compare("deepseek-v3", Tokenizer.from_file("Tests/Fixtures/tokenizers/deepseek-v3/tokenizer.json"),
             "Tests/Fixtures/tokenizers/deepseek-v3", texts(["<｜end▁of▁sentence｜>", "<think>", "</think>"]))
for name in ["deepseek-llm", "deepseek-coder", "qwen2", "llama-bpe", "gpt-2"]:
    path = f"Tests/Fixtures/tokenizers/gguf-vocab/ggml-vocab-{name}.gguf"
    pre, hf, control = hf_from_gguf(path)
    ok = compare(name, hf, path, texts(control)) and ok
sys.exit(0 if ok else 1)
