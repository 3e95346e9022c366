#!/usr/bin/env python3
"""Writes PEFT LoRA goldens for llama-tiny and qwen3-tiny, so Kujira's LoRA forward, its LoRA gradients and its
PEFT adapter reader/writer can be checked against the reference implementation.

Made with torch 2.15.0, transformers 5.25.0, peft 0.21.2, safetensors 0.8.0 (CPU, one thread, float32, eager).

For each M in llama-tiny, qwen3-tiny (base: Tests/Fixtures/models/M, config.json + model.safetensors, float32) it
writes Tests/Fixtures/lora/M/:
  adapter/adapter_config.json        PEFT's own file (r=4, lora_alpha=8 -> scaling alpha/r = 2, dropout 0, no bias,
                                     q/k/v/o/gate/up/down_proj of every layer; target_modules list sorted
                                     afterwards so that re-running gives identical bytes)
  adapter/adapter_model.safetensors  PEFT's own file and tensor names, e.g.
                                     base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight   [r, in]
                                     base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight   [out, r]
  golden.json                        tokens (the 48 ids of Tests/Fixtures/training/llama-tiny/golden.json), logits of
                                     the adapted model (48 x 256, row-major, flat, 7 significant digits), loss,
                                     base_loss, merged_logits_max_abs_diff, versions
  grads.safetensors                  d loss / d p for every lora_A / lora_B tensor (base frozen), float32, named like
                                     the tensors in adapter_model.safetensors

  loss = mean over t = 0..T-2 of CE(logits[t], tokens[t+1])   (as in Tests/Fixtures/training)

PEFT initialises lora_B to zeros (a no-op adapter), so after get_peft_model every lora_A and lora_B weight is
replaced, in sorted parameter-name order, by torch.randn(shape, generator=torch.Generator().manual_seed(4321)) * 0.05
(one generator for all of them).

Checks: the base model's loss equals Tests/Fixtures/training/M's loss; merge_and_unload() logits equal the adapted
logits; the saved adapter reloaded with PeftModel.from_pretrained on a fresh base gives the same logits; a hand merge
from the saved files alone (W += (alpha/r) * B @ A into a fresh base) gives the same logits; gradient names/shapes
equal the adapter's tensors, all finite and non-zero; the loss recomputed in float64 from the saved logits agrees.

Run:  PY=$(../shared/tools/setup-reference-env.sh --torch); $PY -m pip install peft==0.21.2
      $PY scripts/make-lora-goldens.py [llama-tiny qwen3-tiny]
"""
import json, os, sys
import torch
import transformers, peft, safetensors
from safetensors import safe_open
from safetensors.torch import save_file, load_file
from transformers import AutoModelForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

MODELS = ["llama-tiny", "qwen3-tiny"]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
R, ALPHA = 4, 8
SEED = 4321
INIT_SCALE = 0.05

root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
torch.set_num_threads(1)


def load_base(model_dir):
    model, info = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"{model_dir}: loading info not clean: {bad}"
    return model.eval()


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits[0].detach().clone()


def next_token_ce(logits, ids):
    return torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="mean")


def saved_name(param_name):
    """PEFT's in-memory name (…q_proj.lora_A.default.weight) -> its name in adapter_model.safetensors."""
    assert ".default." in param_name, param_name
    return param_name.replace(".default.", ".")


def sig7(x):
    return float(f"{x:.7g}")


def make(name):
    model_dir = os.path.join(root, "Tests", "Fixtures", "models", name)
    out = os.path.join(root, "Tests", "Fixtures", "lora", name)
    adapter_dir = os.path.join(out, "adapter")
    os.makedirs(adapter_dir, exist_ok=True)

    tokens = json.load(open(os.path.join(root, "Tests", "Fixtures", "training", "llama-tiny", "golden.json")))["tokens"]
    assert len(tokens) == 48
    ids = torch.tensor([tokens])

    base = load_base(model_dir)
    base_logits = logits_of(base, ids)
    base_loss = next_token_ce(base_logits, ids).item()
    train_golden = json.load(open(os.path.join(root, "Tests", "Fixtures", "training", name, "golden.json")))
    assert train_golden["tokens"] == tokens
    assert abs(base_loss - train_golden["loss"]) < 1e-6, f"base loss {base_loss} vs training golden {train_golden['loss']}"

    cfg = LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                     task_type="CAUSAL_LM")
    model = get_peft_model(base, cfg)
    model.eval()

    # PEFT's lora_B starts at zero: give every adapter weight seeded random values so the adapter matters.
    g = torch.Generator().manual_seed(SEED)
    lora_params = {n: p for n, p in model.named_parameters() if ".lora_A." in n or ".lora_B." in n}
    with torch.no_grad():
        for n in sorted(lora_params):
            p = lora_params[n]
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * INIT_SCALE)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(lora_params), f"trainable set differs: {trainable ^ set(lora_params)}"
    n_layers = model.config.num_hidden_layers
    assert len(lora_params) == 2 * len(TARGETS) * n_layers

    # forward + backward of the adapted model
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=ids).logits[0]
    loss = next_token_ce(logits, ids)
    loss.backward()
    grads = {}
    for n, p in model.named_parameters():
        if n in lora_params:
            assert p.grad is not None, f"no gradient for {n}"
            grads[saved_name(n)] = p.grad.detach().to(torch.float32).contiguous().clone()
        else:
            assert p.grad is None, f"frozen base parameter {n} got a gradient"
    logits = logits.detach().clone()
    assert (logits - base_logits).abs().max().item() > 1e-2, "adapter does not change the logits"

    # save the adapter with PEFT's own writer; point the config at the fixture base, not this machine's path
    model.peft_config["default"].base_model_name_or_path = f"Tests/Fixtures/models/{name}"
    model.save_pretrained(adapter_dir)
    readme = os.path.join(adapter_dir, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    assert sorted(os.listdir(adapter_dir)) == ["adapter_config.json", "adapter_model.safetensors"], os.listdir(adapter_dir)
    # PEFT keeps target_modules as a set, so its order in the JSON changes from run to run (string hashing): sort it,
    # and write the file back exactly as PEFT writes it (json.dumps(indent=2, sort_keys=True), no final newline).
    config_path = os.path.join(adapter_dir, "adapter_config.json")
    acfg = json.load(open(config_path))
    acfg["target_modules"] = sorted(acfg["target_modules"])
    with open(config_path, "w") as f:
        f.write(json.dumps(acfg, indent=2, sort_keys=True))

    save_file(grads, os.path.join(out, "grads.safetensors"), metadata={"format": "pt"})

    # merged model: merge_and_unload() must give the adapted logits
    adapted_for_merge = {n: p.detach().clone() for n, p in model.named_parameters() if n in lora_params}
    merged = model.merge_and_unload()
    merged_logits = logits_of(merged, ids)
    merged_diff = (merged_logits - logits).abs().max().item()

    golden = {
        "model": name,
        "base": f"Tests/Fixtures/models/{name}",
        "adapter": "adapter/ (adapter_config.json + adapter_model.safetensors, written by PEFT save_pretrained)",
        "tokens": tokens,
        "tokens_definition": "the 48 ids of Tests/Fixtures/training/llama-tiny/golden.json, batch 1",
        "lora": {"r": R, "lora_alpha": ALPHA, "scaling": ALPHA / R, "lora_dropout": 0.0, "bias": "none",
                 "target_modules": TARGETS, "use_rslora": False, "use_dora": False},
        "init": f"after get_peft_model, for each lora_A/lora_B parameter in sorted name order: "
                f"torch.randn(shape, generator=torch.Generator().manual_seed({SEED})) * {INIT_SCALE} (one generator)",
        "logits_shape": list(logits.shape),
        "logits": [sig7(x) for x in logits.reshape(-1).tolist()],
        "logits_definition": "logits of the adapted model, row-major [T, vocab], rounded to 7 significant digits",
        "loss": loss.item(),
        "loss_definition": "mean cross-entropy of logits[t] against tokens[t+1] over t = 0..T-2 (HF labels=ids)",
        "base_loss": base_loss,
        "base_loss_definition": "the same loss of the base model without the adapter (= Tests/Fixtures/training/<M> loss)",
        "gradients": "grads.safetensors: d loss / d p for every lora_A/lora_B tensor, base frozen, named as in "
                     "adapter_model.safetensors",
        "parameters": list(grads.keys()),
        "merged_logits_max_abs_diff": merged_diff,
        "merged_definition": "max |logits after merge_and_unload() - adapted logits| (float32)",
        "peft_version": peft.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "safetensors_version": safetensors.__version__,
        "generator": "scripts/make-lora-goldens.py (eval mode with gradients, attn_implementation=eager, float32, CPU)",
    }
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")

    print(f"{name}: loss={loss.item():.9g} base_loss={base_loss:.9g} max|logits-base|="
          f"{(logits - base_logits).abs().max().item():.4g} merged_logits_max_abs_diff={merged_diff:.3g}")
    print(f"  {len(grads)} lora gradients, max|g| {max(v.abs().max().item() for v in grads.values()):.4g}")
    assert merged_diff < 1e-4, f"merged logits differ by {merged_diff}"

    # --- checks from the saved files
    with safe_open(os.path.join(adapter_dir, "adapter_model.safetensors"), "pt") as f:
        adapter = {k: f.get_tensor(k) for k in f.keys()}
    assert set(adapter) == set(grads), f"adapter vs grads names: {set(adapter) ^ set(grads)}"
    for n, p in adapted_for_merge.items():
        assert torch.equal(adapter[saved_name(n)], p), f"saved {saved_name(n)} differs"
    back = load_file(os.path.join(out, "grads.safetensors"))
    for k, v in back.items():
        assert v.shape == adapter[k].shape and v.dtype == torch.float32, f"{k}: shape/dtype"
        assert torch.equal(v, grads[k]) and torch.isfinite(v).all() and v.abs().max() > 0, f"{k}: bad gradient"
    acfg = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    assert acfg["r"] == R and acfg["lora_alpha"] == ALPHA and sorted(acfg["target_modules"]) == sorted(TARGETS)

    # reload with PEFT on a fresh base
    reloaded = PeftModel.from_pretrained(load_base(model_dir), adapter_dir).eval()
    reload_diff = (logits_of(reloaded, ids) - logits).abs().max().item()
    assert reload_diff < 1e-5, f"reloaded adapter logits differ by {reload_diff}"

    # hand merge from the files alone: W += (alpha / r) * B @ A
    fresh = load_base(model_dir)
    sd = fresh.state_dict()
    merged_count = 0
    with torch.no_grad():
        for k in adapter:
            if ".lora_A." not in k:
                continue
            target = k.replace("base_model.model.", "", 1).replace(".lora_A.weight", ".weight")
            A, B = adapter[k].double(), adapter[k.replace(".lora_A.", ".lora_B.")].double()
            sd[target].copy_((sd[target].double() + (ALPHA / R) * (B @ A)).float())
            merged_count += 1
    hand_diff = (logits_of(fresh, ids) - logits).abs().max().item()
    assert merged_count == len(TARGETS) * n_layers and hand_diff < 1e-4, f"hand merge differs by {hand_diff}"

    # float64 loss from the saved (rounded) logits
    saved = torch.tensor(json.load(open(os.path.join(out, "golden.json")))["logits"], dtype=torch.float64).reshape(48, -1)
    lse = torch.logsumexp(saved[:-1], dim=-1)
    ref = (lse - saved[:-1].gather(1, ids[0, 1:, None]).squeeze(1)).mean().item()
    assert abs(ref - loss.item()) < 1e-5, f"loss {loss.item()} vs float64 from saved logits {ref}"
    print(f"  check: reload |d|={reload_diff:.3g}, hand merge (alpha/r={ALPHA / R}) |d|={hand_diff:.3g}, "
          f"float64 loss from saved logits {ref:.9g}")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    for m in (sys.argv[1:] or MODELS):
        make(m)
