#!/usr/bin/env python3
"""Checks that a LoRA adapter directory (adapter_config.json + adapter_model.safetensors, e.g. one Kujira wrote) means
the same to PEFT as to whoever produced LOGITS_JSON: loads BASE_DIR with transformers (float32, eager attention, CPU),
applies ADAPTER_DIR with peft.PeftModel.from_pretrained, runs TOKENS and compares its logits with LOGITS_JSON.

usage: check-peft-interchange.py BASE_DIR ADAPTER_DIR TOKENS_JSON LOGITS_JSON [--tol 1e-4]
  BASE_DIR     HF model directory (config.json + model.safetensors), e.g. Tests/Fixtures/models/llama-tiny
  ADAPTER_DIR  PEFT LoRA adapter directory
  TOKENS_JSON  file (or literal text) holding a JSON list of token ids, or an object with a "tokens" list
  LOGITS_JSON  file (or literal text) holding the logits to compare: a list of rows [[vocab floats], ...], or one flat
               row-major list, or an object with a "logits" entry of either form (e.g. Tests/Fixtures/lora/M/golden.json).
               With as many rows as tokens every position is compared; with fewer rows, they are the last positions
               (e.g. one row = the logits after the final token).
Prints max |delta| (and where), exits 0 if it is <= tol, 1 if larger, 2 on bad input.

Made with torch 2.15.0, transformers 5.25.0, peft 0.21.2.
Run:  PY=$(../shared/tools/setup-reference-env.sh --torch); $PY -m pip install peft==0.21.2
      $PY scripts/check-peft-interchange.py Tests/Fixtures/models/llama-tiny Tests/Fixtures/lora/llama-tiny/adapter \\
          Tests/Fixtures/lora/llama-tiny/golden.json Tests/Fixtures/lora/llama-tiny/golden.json
"""
import argparse, json, os, sys


def read_json(arg):
    if os.path.exists(arg):
        with open(arg) as f:
            return json.load(f)
    return json.loads(arg)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_dir"); ap.add_argument("adapter_dir"); ap.add_argument("tokens_json"); ap.add_argument("logits_json")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()

    tokens = read_json(a.tokens_json)
    if isinstance(tokens, dict):
        tokens = tokens["tokens"]
    if not (isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens)):
        print("TOKENS_JSON must be a non-empty JSON list of ints (or an object with \"tokens\")", file=sys.stderr)
        return 2
    expected = read_json(a.logits_json)
    if isinstance(expected, dict):
        expected = expected["logits"]

    import torch, transformers, peft
    from transformers import AutoModelForCausalLM
    from peft import PeftModel
    torch.set_num_threads(min(2, torch.get_num_threads()))

    base = AutoModelForCausalLM.from_pretrained(a.base_dir, dtype=torch.float32, attn_implementation="eager").eval()
    vocab = base.config.vocab_size
    model = PeftModel.from_pretrained(base, a.adapter_dir).eval()
    # every tensor of the file must land in a LoRA parameter and every LoRA parameter must come from the file (PEFT
    # only warns about missing keys and would leave such a lora_B at zero)
    from safetensors import safe_open
    with safe_open(os.path.join(a.adapter_dir, "adapter_model.safetensors"), "pt") as f:
        in_file = set(f.keys())
    in_model = {n.replace(".default.", ".") for n, _ in model.named_parameters() if ".lora_A." in n or ".lora_B." in n}
    n_lora = len(in_model)
    if in_file != in_model:
        print(f"adapter tensors do not match the model's LoRA parameters: only in the file "
              f"{sorted(in_file - in_model)[:5]}, only in the model {sorted(in_model - in_file)[:5]}", file=sys.stderr)
        return 1
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([tokens])).logits[0].to(torch.float64)  # [T, V]
    ref = torch.tensor(expected, dtype=torch.float64)
    if ref.dim() == 1:
        if ref.numel() % vocab:
            print(f"flat LOGITS_JSON has {ref.numel()} values, not a multiple of vocab {vocab}", file=sys.stderr)
            return 2
        ref = ref.reshape(-1, vocab)
    if ref.dim() != 2 or ref.shape[1] != logits.shape[1] or not 1 <= ref.shape[0] <= logits.shape[0]:
        print(f"LOGITS_JSON shape {tuple(ref.shape)} does not fit the model's {tuple(logits.shape)}", file=sys.stderr)
        return 2
    rows = ref.shape[0]
    got = logits[-rows:]
    diff = (got - ref).abs()
    worst = int(diff.argmax())
    t, v = divmod(worst, diff.shape[1])
    t += logits.shape[0] - rows
    md = diff.max().item()
    ok = md <= a.tol
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}: "
          f"{n_lora} LoRA tensors, {len(tokens)} tokens, {rows} logit rows x {vocab} compared")
    print(f"max |delta| = {md:.3g} at position {t}, token id {v} (peft {logits[t, v].item():.7g}); "
          f"max |logit| {ref.abs().max().item():.4g}; tol {a.tol:g}: {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
