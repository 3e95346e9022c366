#!/usr/bin/env python3
"""Loads a Kujira training checkpoint in HF transformers and compares its logits with `kujira logits`.

Runnable locally (not in CI; needs PyTorch + transformers 4.56+ or 5.x):
    PY=$(../shared/tools/setup-reference-env.sh --torch)
    swift build -c release
    $PY scripts/check-checkpoint-transformers.py CHECKPOINT_DIR [--kujira .build/release/kujira]
scripts/check-checkpoint-transformers-4-and-5.sh runs it with transformers 4.x and 5.x.

Checks: the tokenizer files load in `tokenizers`/transformers and the text round-trips; the checkpoint's routed-expert
layout (deepseek-ai's per-expert `mlp.experts.E.{gate,up,down}_proj.weight`, or stacked `mlp.experts.gate_up_proj` /
`mlp.experts.down_proj`) is printed; transformers' DeepseekV3ForCausalLM (float32) loads config.json +
model.safetensors with no missing or mismatched keys and no unexpected keys outside the MTP layers (index >=
num_hidden_layers, which transformers' main model ignores); every routed expert of the main layers equals the
checkpoint's tensor after loading (whichever layout the installed transformers keeps them in); and the logits match
Kujira's within 1e-4. Prints the transformers version it ran with.
"""
import argparse, json, re, subprocess, sys
import torch, transformers
from packaging.version import Version
from safetensors import safe_open
from transformers import AutoTokenizer, DeepseekV3ForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("checkpoint")
ap.add_argument("--kujira", default=".build/release/kujira")
ap.add_argument("--text", default="<｜User｜>345+678<｜Assistant｜><think>\n5+8+0=13\n")
a = ap.parse_args()
print(f"transformers {transformers.__version__} ({transformers.__file__}), torch {torch.__version__}")

tok = AutoTokenizer.from_pretrained(a.checkpoint)
ids = tok(a.text)["input_ids"]
print("tokens", ids)
assert tok.decode(ids, skip_special_tokens=False).endswith(a.text), "tokenizer round trip"
chat = tok.apply_chat_template([{"role": "user", "content": "345+678"}], add_generation_prompt=True, tokenize=False)
print("chat prompt", repr(chat))

layers = json.load(open(f"{a.checkpoint}/config.json"))["num_hidden_layers"]
PER_EXPERT = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$")
STACKED = re.compile(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$")
ROUTED = re.compile(r"\.mlp\.experts\.")  # not shared_experts
LAYER = re.compile(r"model\.layers\.(\d+)\.")

def per_expert(tensors):
    """{(layer, expert, 'gate_proj'|'up_proj'|'down_proj'): 2-D tensor} from names -> tensors in either layout."""
    out = {}
    for name, t in tensors.items():
        if m := PER_EXPERT.match(name):
            out[(int(m[1]), int(m[2]), m[3])] = t
        elif m := STACKED.match(name):
            for e in range(t.shape[0]):
                if m[2] == "down_proj":
                    out[(int(m[1]), e, "down_proj")] = t[e]
                else:  # [experts, 2 * intermediate, hidden]: gate rows, then up rows
                    gate, up = t[e].chunk(2, dim=0)
                    out[(int(m[1]), e, "gate_proj")], out[(int(m[1]), e, "up_proj")] = gate, up
    return out

with safe_open(f"{a.checkpoint}/model.safetensors", "pt") as f:
    names = list(f.keys())
    n_per, n_stacked = sum(bool(PER_EXPERT.match(n)) for n in names), sum(bool(STACKED.match(n)) for n in names)
    layout = ("per-expert" if n_per and not n_stacked else "stacked" if n_stacked and not n_per
              else "mixed" if n_per else "none")
    print(f"checkpoint routed-expert layout: {layout} ({n_per} per-expert tensors, {n_stacked} stacked tensors,"
          f" {len(names)} tensors in all)")
    saved = per_expert({n: f.get_tensor(n) for n in names if PER_EXPERT.match(n) or STACKED.match(n)})

# `dtype` replaced `torch_dtype` in 4.56; 5.x warns on (and may drop) the old name.
dtype_kw = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
model, info = DeepseekV3ForCausalLM.from_pretrained(a.checkpoint, **{dtype_kw: torch.float32}, output_loading_info=True)
model.eval()
missing, unexpected = sorted(info["missing_keys"]), sorted(info["unexpected_keys"])
mismatched = sorted(map(str, info.get("mismatched_keys", [])))
mtp = lambda k: (m := LAYER.match(k)) is not None and int(m[1]) >= layers
print(f"missing keys ({len(missing)}): {missing}")
print(f"unexpected keys ({len(unexpected)}, {sum(map(mtp, unexpected))} of them in MTP layers >= {layers}): {unexpected}")
if mismatched: print(f"mismatched keys ({len(mismatched)}): {mismatched}")
failures = []
if bad := [k for k in missing + unexpected if ROUTED.search(k) and not mtp(k)]:
    failures.append(f"routed-expert weights reported missing/unexpected: {bad}")
if missing: failures.append(f"missing keys (left at random init): {missing}")
if bad := [k for k in unexpected if not mtp(k)]: failures.append(f"unexpected keys outside the MTP layers: {bad}")
if mismatched: failures.append(f"shape-mismatched keys: {mismatched}")

state = model.state_dict()
loaded = per_expert({n: t for n, t in state.items() if PER_EXPERT.match(n) or STACKED.match(n)})
main_saved = {k: t for k, t in saved.items() if k[0] < layers}
model_layout = "per-expert" if any(PER_EXPERT.match(n) for n in state) else "stacked"
if set(main_saved) != set(loaded):
    failures.append(f"routed experts differ: only in checkpoint {sorted(set(main_saved) - set(loaded))[:6]},"
                    f" only in model {sorted(set(loaded) - set(main_saved))[:6]}")
else:
    worst = max(((main_saved[k].float() - loaded[k]).abs().max().item() for k in main_saved), default=0.0)
    print(f"routed experts in the model ({model_layout}): {len(loaded)} tensors, max |loaded - saved| = {worst:.3g}")
    if worst != 0: failures.append(f"loaded routed experts differ from the checkpoint by up to {worst:.3g}")

with torch.no_grad():
    hf = model(torch.tensor([ids])).logits[0]
run = subprocess.run([a.kujira, "logits", "--model", a.checkpoint, "--tokens", ",".join(map(str, ids))],
                     capture_output=True, text=True)
if run.returncode != 0:
    failures.append(f"kujira logits exited {run.returncode}: {run.stderr.strip()[-500:]}")
else:
    kj = torch.tensor(json.loads(run.stdout)["logits"])
    diff = (hf - kj).abs().max().item()
    print(f"max |logit difference| = {diff:.3g} (transformers {transformers.__version__})")
    if not diff < 1e-4: failures.append(f"logits differ by {diff:.3g} (tolerance 1e-4)")
for f in failures: print("FAIL:", f)
print("PASS" if not failures else "FAILED", f"(transformers {transformers.__version__})")
sys.exit(1 if failures else 0)
