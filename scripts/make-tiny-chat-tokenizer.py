#!/usr/bin/env python3
"""Writes Tests/Fixtures/server/tiny-chat/{tokenizer.json,tokenizer_config.json}: a byte-level tokenizer with
exactly 256 ids (for the 256-token fixture models) that carries DeepSeek-V3's special tokens (BOS/EOS, <think>,
User/Assistant, tool calls, FIM) and an R1-style chat template whose generation prompt opens <think>.
ids 0-29: added tokens; ids 30-255: the 226 bytes other than the C0 controls (tab, LF, CR kept) and DEL."""
import json, os, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
out = os.path.join(root, "Tests", "Fixtures", "server", "tiny-chat")

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, map(chr, cs)))

added = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<think>", "</think>",
         "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>", "<｜User｜>", "<｜Assistant｜>", "<|EOT|>",
         "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>",
         "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>",
         "<｜tool▁sep｜>"] + [f"<｜place▁holder▁no▁{i}｜>" for i in range(10)]
special = {"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>", "<|EOT|>"} | {a for a in added if "holder" in a}
dropped = set(range(0, 9)) | {0x0B, 0x0C} | set(range(0x0E, 0x20)) | {0x7F}
mapping = bytes_to_unicode()
vocab = {c: i for i, c in enumerate(added)}  # added tokens are in the model vocabulary too, as HF expects
next_id = len(added)
for b in range(256):
    if b in dropped: continue
    vocab[mapping[b]] = next_id; next_id += 1
assert next_id == 256, next_id

tokenizer = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": c in special} for i, c in enumerate(added)],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": []},
}
v3 = json.load(open(os.path.join(root, "Tests", "Fixtures", "tokenizers", "deepseek-v3", "tokenizer_config.json")))
template = v3["chat_template"]
opener = "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}"
assert opener in template
template = template.replace(opener, "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}")
config = {"add_bos_token": False, "add_eos_token": False, "bos_token": "<｜begin▁of▁sentence｜>",
          "eos_token": "<｜end▁of▁sentence｜>", "model_max_length": 256, "tokenizer_class": "LlamaTokenizerFast",
          "chat_template": template}
os.makedirs(out, exist_ok=True)
json.dump(tokenizer, open(os.path.join(out, "tokenizer.json"), "w"), ensure_ascii=False, indent=1)
json.dump(config, open(os.path.join(out, "tokenizer_config.json"), "w"), ensure_ascii=False, indent=1)
print(out)
