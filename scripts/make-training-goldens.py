#!/usr/bin/env python3
"""Writes PyTorch/transformers gradient goldens for the dense tiny fixture models, so Kujira's training
forward/backward for Llama, Qwen2 and Qwen3 can be checked against the reference implementation.

For each M in llama-tiny, qwen2-tiny, qwen3-tiny (Tests/Fixtures/models/M: config.json + model.safetensors, float32)
it writes Tests/Fixtures/training/M/:
  golden.json              tokens (48 ids), loss, masked_targets, masked_loss, versions, tie info
  grads.safetensors        d loss / d param for every named parameter ("plain" case), float32
  masked-grads.safetensors d masked_loss / d param ("masked" case), float32

  plain:  loss = mean over t = 0..T-2 of CE(logits[t], tokens[t+1])                  (HF labels=ids)
  masked: targets[t] = tokens[t+1], except -100 at t in 0..15, 30..35 and T-1;
          masked_loss = mean over the t with targets[t] != -100 of CE(logits[t], targets[t])   (SFT loss masking)

The model runs in eval mode (no dropout in these configs anyway) with gradients on, attn_implementation="eager",
float32 on the CPU, one thread. After writing, the script reads the files back and checks the gradient names and
shapes equal the model's safetensors, and recomputes both losses with a hand-written log-softmax in float64.

Run:  PY=$(../shared/tools/setup-reference-env.sh --torch)
      $PY scripts/make-training-goldens.py
"""
import json, os, sys
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file, load_file
from transformers import AutoModelForCausalLM

MODELS = ["llama-tiny", "qwen2-tiny", "qwen3-tiny"]
T = 48
SEED = 1234
IGNORE = -100
MASKED_RANGES = [(0, 16), (30, 36)]  # target positions set to IGNORE (half-open); the last position is always ignored

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
torch.set_num_threads(1)


def load(model_dir):
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}  # missing/unexpected/mismatched keys, load errors
    assert not bad, f"{model_dir}: loading info not clean: {bad}"  # nothing randomly initialised or dropped
    return model.eval()


def grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    grads, missing = {}, []
    for name, p in model.named_parameters():
        if p.grad is None:
            missing.append(name)
        else:
            grads[name] = p.grad.detach().to(torch.float32).contiguous().clone()
    return grads, missing


def ce_float64(logits, targets):
    """Independent loss: log-softmax by hand in float64, mean over targets != IGNORE."""
    x = logits.detach().to(torch.float64)
    lse = x.max(dim=-1, keepdim=True).values
    lse = lse.squeeze(-1) + (x - lse).exp().sum(dim=-1).log()
    keep = [t for t in range(len(targets)) if targets[t] != IGNORE]
    return sum(float(lse[t] - x[t, targets[t]]) for t in keep) / len(keep)


def summary(grads):
    return " ".join(f"{n.replace('model.', '').replace('layers.', 'L')}={g.abs().max().item():.3g}" for n, g in grads.items())


def make(name):
    model_dir = os.path.join(root, "Tests", "Fixtures", "models", name)
    out = os.path.join(root, "Tests", "Fixtures", "training", name)
    os.makedirs(out, exist_ok=True)
    model = load(model_dir)
    cfg = model.config
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    if not tied:  # an untied lm_head must be its own tensor, not the embedding's storage
        assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()

    g = torch.Generator().manual_seed(SEED)
    tokens = torch.randint(0, cfg.vocab_size, (T,), generator=g, dtype=torch.int64).tolist()
    ids = torch.tensor([tokens])

    # plain: next-token CE over t = 0..T-2
    logits = model(input_ids=ids).logits[0]  # [T, V]
    plain_targets = tokens[1:] + [IGNORE]
    loss = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="mean")
    grads, missing = grads_of(model, loss)
    assert not missing, f"parameters without gradient: {missing}"

    # masked: same tokens, prompt-like spans of the targets ignored
    masked_targets = list(plain_targets)
    for a, b in MASKED_RANGES:
        for t in range(a, b):
            masked_targets[t] = IGNORE
    logits_m = model(input_ids=ids).logits[0]
    masked_loss = torch.nn.functional.cross_entropy(
        logits_m, torch.tensor(masked_targets), ignore_index=IGNORE, reduction="mean")
    masked_grads, missing_m = grads_of(model, masked_loss)
    assert not missing_m, f"parameters without gradient (masked): {missing_m}"

    save_file(grads, os.path.join(out, "grads.safetensors"), metadata={"format": "pt"})
    save_file(masked_grads, os.path.join(out, "masked-grads.safetensors"), metadata={"format": "pt"})
    golden = {
        "model": name,
        "tokens": tokens,
        "tokens_definition": f"torch.randint(0, vocab_size={cfg.vocab_size}, ({T},), generator=torch.Generator().manual_seed({SEED})), batch 1",
        "loss": loss.item(),
        "loss_definition": "mean cross-entropy of logits[t] against tokens[t+1] over t = 0..T-2 (HF labels=ids)",
        "masked_targets": masked_targets,
        "masked_loss": masked_loss.item(),
        "masked_loss_definition": "mean cross-entropy of logits[t] against masked_targets[t] over the t with "
                                  "masked_targets[t] != -100 (targets = tokens shifted left; -100 at t in 0..15, "
                                  "30..35 and T-1)",
        "tie_word_embeddings": tied,
        "parameters": list(grads.keys()),
        "params_without_grad": [],
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "generator": "scripts/make-training-goldens.py (eval mode with gradients, attn_implementation=eager, float32, CPU)",
    }
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")

    print(f"{name}: tied={tied} loss={loss.item():.9g} masked_loss={masked_loss.item():.9g} "
          f"({sum(t != IGNORE for t in masked_targets)} of {T - 1} targets kept)")
    print(f"  plain  max|g|: {summary(grads)}")
    print(f"  masked max|g|: {summary(masked_grads)}")

    # --- sanity check: read everything back
    with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    expected = {k: v for k, v in shapes.items() if not (tied and k == "lm_head.weight")}
    for fname, ref in [("grads.safetensors", grads), ("masked-grads.safetensors", masked_grads)]:
        back = load_file(os.path.join(out, fname))
        assert set(back) == set(expected), f"{fname}: names differ: {set(back) ^ set(expected)}"
        for k, v in back.items():
            assert tuple(v.shape) == expected[k], f"{fname}:{k} shape {tuple(v.shape)} vs {expected[k]}"
            assert v.dtype == torch.float32 and torch.equal(v, ref[k]), f"{fname}:{k} round trip"
            assert torch.isfinite(v).all() and v.abs().max() > 0, f"{fname}:{k} zero or non-finite"
    back = json.load(open(os.path.join(out, "golden.json")))
    assert back["tokens"] == tokens and len(back["masked_targets"]) == T and back["masked_targets"][-1] == IGNORE
    for key, targets, logit in [("loss", plain_targets, logits), ("masked_loss", masked_targets, logits_m)]:
        ref = ce_float64(logit, targets)
        assert abs(ref - back[key]) < 1e-5, f"{key}: {back[key]} vs float64 hand-written {ref}"
    print(f"  check: {len(expected)} tensors, names/shapes match model.safetensors, losses match a float64 "
          f"hand-written CE ({ce_float64(logits, plain_targets):.9g}, {ce_float64(logits_m, masked_targets):.9g})")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    for m in (sys.argv[1:] or MODELS):
        make(m)
