#!/usr/bin/env python3
"""Loads a Kujira training checkpoint in HF transformers and compares its logits with `kujira logits`.

Runnable locally (not in CI; needs PyTorch + transformers):
    PY=$(../shared/tools/setup-reference-env.sh --torch)
    swift build -c release
    $PY scripts/check-checkpoint-transformers.py CHECKPOINT_DIR [--kujira .build/release/kujira]

Checks: the tokenizer files load in `tokenizers`/transformers and encode the chat prompt to the ids Kujira trained on;
transformers' DeepseekV3ForCausalLM (float32) loads config.json + model.safetensors (stacked routed experts, the MTP
layer is ignored by transformers' main model) and its logits match Kujira's within 1e-4.
"""
import argparse, json, subprocess, sys
import torch
from transformers import AutoTokenizer, DeepseekV3ForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("--kujira", default=".build/release/kujira")
ap.add_argument("--text", default="<｜User｜>345+678<｜Assistant｜><think>\n5+8+0=13\n")
a = ap.parse_args()

tok = AutoTokenizer.from_pretrained(a.checkpoint)
ids = tok(a.text)["input_ids"]
print("tokens", ids)
assert tok.decode(ids, skip_special_tokens=False).endswith(a.text), "tokenizer round trip"
chat = tok.apply_chat_template([{"role": "user", "content": "345+678"}], add_generation_prompt=True, tokenize=False)
print("chat prompt", repr(chat))

model = DeepseekV3ForCausalLM.from_pretrained(a.checkpoint, torch_dtype=torch.float32).eval()
with torch.no_grad():
    hf = model(torch.tensor([ids])).logits[0]
out = subprocess.run([a.kujira, "logits", "--model", a.checkpoint, "--tokens", ",".join(map(str, ids))],
                     check=True, capture_output=True, text=True).stdout
kj = torch.tensor(json.loads(out)["logits"])
diff = (hf - kj).abs().max().item()
print(f"max |logit difference| = {diff:.3g}")
sys.exit(0 if diff < 1e-4 else 1)
