#!/usr/bin/env python3
"""Builds Tests/Fixtures/tokenizers/tiny: a small byte-level BPE tokenizer.json trained with HF `tokenizers`,
plus golden.json with the ids HF `tokenizers` gives for texts under several pipeline variants (split
behaviours, invert, Digits, ByteLevel add_prefix_space, NFC, added-token lstrip/rstrip/single_word, merges in
both file formats, TemplateProcessing BOS). Run: python3 scripts/make-tiny-tokenizer-goldens.py"""
import copy, json, os, tokenizers
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

out = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "tokenizers", "tiny")
corpus = ["The quick brown fox jumps over the lazy dog. " * 3, "def add(a, b):\n    return a + b\n",
          "日本語のテキストです。中文测试", "Ünïcödé çafé naïve -- the-final--countdown 12345 and 3.14",
          "I've been 'told he's there, 'RE you sure?"] * 20
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                    show_progress=False))
base = json.loads(tok.to_str())
base["added_tokens"] = []
vocab_size = len(base["model"]["vocab"])
def added(i, content, **kw):
    d = {"id": vocab_size + i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
    d.update(kw)
    return d
base["added_tokens"] = [added(0, "<s>"), added(1, "</s>"), added(2, "<L>", lstrip=True), added(3, "<R>", rstrip=True),
                        added(4, "word", single_word=True, special=False), added(5, "<n>", normalized=True, special=False)]
base["post_processor"] = {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
             {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [vocab_size], "tokens": ["<s>"]}}}
# Merges stored as "a b" strings; variants switch to pairs.
base["model"]["merges"] = [m if isinstance(m, str) else " ".join(m) for m in base["model"]["merges"]]
with open(os.path.join(out, "tokenizer.json"), "w") as f:
    json.dump(base, f, ensure_ascii=False)

llama3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
variants = {"base": {}}
for behavior in ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]:
    for invert in [False, True]:
        for kind, pattern in [("string", {"String": "-"}), ("regex", {"Regex": r"\s+"})]:
            variants[f"split-{kind}-{behavior}-{invert}"] = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": pattern, "behavior": behavior, "invert": invert}, bl]}}
variants["digits-individual"] = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}
variants["digits-contiguous"] = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Digits", "individual_digits": False}, {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}}
variants["bytelevel-prefix-space"] = {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}
variants["llama3-split-nfc"] = {"normalizer": {"type": "NFC"}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": llama3}, "behavior": "Isolated", "invert": False}, bl]}}
variants["ignore-merges-pairs"] = {"model.ignore_merges": True, "merges-as-pairs": True}
variants["unknown-regex-icu"] = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": r"[aeiou]+|\p{Lu}\p{Ll}*|\d+(?=\s)"}, "behavior": "Isolated", "invert": False}, bl]}}

texts = ["", "Hello world", " the-final--countdown ", "a--b-", "-", "12345 and 3.14159, 2,718",
         "Ünïcödé çafé naïve (decomposed: Cafe\u0301)", "日本語のテキストです。", "I've 'RE you sure? WORD word",
         "x <L>y<R> z", "  <L>  a  <R>  b", "word words sword word.", "say <n> and <s>x</s>",
         "def add(a, b):\n    return a + b\n", "tabs\tand  \n\n spaces   ", "emoji 🐳 here"]

def build(spec):
    d = copy.deepcopy(base)
    for k, v in spec.items():
        if k == "model.ignore_merges": d["model"]["ignore_merges"] = v
        elif k == "merges-as-pairs": d["model"]["merges"] = [m.split(" ", 1) for m in d["model"]["merges"]]
        else: d[k] = v
    return d

golden = {"source": f"HF tokenizers {tokenizers.__version__}", "texts": texts, "variants": []}
for name, spec in variants.items():
    t = Tokenizer.from_str(json.dumps(build(spec)))
    golden["variants"].append({"name": name, "spec": spec,
        "ids": [t.encode(x, add_special_tokens=False).ids for x in texts],
        "ids_with_special": [t.encode(x, add_special_tokens=True).ids for x in texts]})
with open(os.path.join(out, "golden.json"), "w") as f:
    json.dump(golden, f, ensure_ascii=False, indent=1)
print(len(golden["variants"]), "variants,", vocab_size, "vocab")
