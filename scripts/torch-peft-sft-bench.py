#!/usr/bin/env python3
"""PyTorch + PEFT LoRA fine-tuning benchmark on the CPU: SmolLM2-135M-Instruct, SFT on Examples/sft-sentiment, to
compare training speed (and the result) with Kujira's LoRA trainer.

The model exists here only as a GGUF (scripts/fetch-smollm2.sh puts the Q4_1 file at
~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf); transformers dequantizes it to float32 on load
(AutoModelForCausalLM/AutoTokenizer.from_pretrained(dir, gguf_file=name), needs the `gguf` package).

Data: each example's messages go through the tokenizer's chat template (apply_chat_template); the loss covers only
the assistant reply: its content tokens and the end-of-turn token <|im_end|> (labels -100 on the system/user prompt,
the "<|im_start|>assistant\\n" header and the template's trailing newline). Each example is padded to --seq (one
example per row; --pack instead concatenates whole examples into rows of --seq tokens), batches of --batch rows, cycling
through the shuffled training set. LoRA (peft) on --targets with --rank/--alpha, dropout 0, AdamW(lr, weight_decay 0)
on the LoRA weights only, float32, sdpa attention, model.train().

Per step it prints the loss and tokens/s, where tokens = batch x seq (padding included) and the time covers forward,
backward and the optimizer step. At the end: median (and best) tokens/s over the steps after the first 2, peak RSS
(getrusage ru_maxrss; it includes the GGUF load and dequantization, so the RSS after loading and at the end are
printed too), wall time. --eval greedy-generates up to 4 new tokens for every held-out example before and
after training and prints exact-match accuracy (decoded reply, special tokens skipped, stripped of whitespace, equal to
the label; also a lenient rate: the reply names the right label and not the other).

Made with torch 2.15.0, transformers 5.25.0, peft 0.21.2, gguf 0.19.0.
Run:  PY=$(../shared/tools/setup-reference-env.sh --torch); $PY -m pip install peft==0.21.2
      $PY scripts/torch-peft-sft-bench.py --threads 2 --steps 20 --batch 8 --seq 64 --rank 8 --alpha 16 --eval
"""
import argparse, collections, json, os, random, resource, statistics, subprocess, sys, time

root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
T0 = time.perf_counter()
SHORT = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
         "down": "down_proj"}


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().strip()


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def model_path(arg):
    if arg:
        return arg
    default = os.path.expanduser("~/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    if os.path.exists(default):
        return default
    return subprocess.run([os.path.join(root, "scripts", "fetch-smollm2.sh")], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def ids_of(enc):
    return list(enc["input_ids"]) if hasattr(enc, "keys") else list(enc)


def encode(tok, messages):
    """(input ids, labels): labels are -100 except on the assistant reply's content and its end-of-turn token."""
    assert messages[-1]["role"] == "assistant"
    full = ids_of(tok.apply_chat_template(messages, tokenize=True))
    prompt = ids_of(tok.apply_chat_template(messages[:-1], tokenize=True, add_generation_prompt=True))
    assert full[:len(prompt)] == prompt, "chat template: prompt is not a prefix of the full conversation"
    end = tok.convert_tokens_to_ids("<|im_end|>")
    stop = full.index(end, len(prompt)) + 1  # through <|im_end|>; the template's trailing "\n" is not learned
    labels = [-100] * len(prompt) + full[len(prompt):stop] + [-100] * (len(full) - stop)
    return full, labels


def rows_of(examples, seq, pad_id, pack):
    """Rows of exactly seq tokens: (ids, labels, attention mask)."""
    rows, truncated = [], 0
    cur_ids, cur_lab = [], []

    def flush():
        n = len(cur_ids)
        rows.append((cur_ids + [pad_id] * (seq - n), cur_lab + [-100] * (seq - n), [1] * n + [0] * (seq - n)))

    for ids, labels in examples:
        if len(ids) > seq:
            truncated += 1
            ids, labels = ids[:seq], labels[:seq]
        if not pack:
            cur_ids, cur_lab = ids, labels
            flush()
            continue
        if len(cur_ids) + len(ids) > seq:
            flush()
            cur_ids, cur_lab = [], []
        cur_ids, cur_lab = cur_ids + ids, cur_lab + labels
    if pack and cur_ids:
        flush()
    return rows, truncated


def evaluate(model, tok, examples, label):
    import torch
    model.eval()
    correct, lenient, preds, t = 0, 0, collections.Counter(), time.perf_counter()
    for ex in examples:
        prompt = ids_of(tok.apply_chat_template(ex["messages"][:-1], tokenize=True, add_generation_prompt=True))
        ids = torch.tensor([prompt])
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4,
                                 do_sample=False, pad_token_id=tok.pad_token_id)
        reply = tok.decode(out[0, len(prompt):], skip_special_tokens=True).strip()
        preds[reply] += 1
        gold = ex["messages"][-1]["content"]
        correct += reply == gold
        said = {w for w in ("positive", "negative") if w in reply.lower()}
        lenient += said == {gold}
    n = len(examples)
    print(f"[eval {label}] held-out exact match {correct}/{n} = {correct / n:.3f} "
          f"(lenient, reply names only the right label: {lenient / n:.3f}; {time.perf_counter() - t:.1f} s); "
          f"replies: {dict(preds.most_common(6))}", flush=True)
    return correct / n, lenient / n


def main():
    ap = argparse.ArgumentParser(description="PyTorch+PEFT LoRA SFT benchmark (SmolLM2-135M-Instruct, CPU)")
    ap.add_argument("--model", help="GGUF file (default: scripts/fetch-smollm2.sh's Q4_1 file)")
    ap.add_argument("--train", default=os.path.join(root, "Examples", "sft-sentiment", "train.jsonl"))
    ap.add_argument("--heldout", default=os.path.join(root, "Examples", "sft-sentiment", "heldout.jsonl"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down",
                    help="comma-separated: q,k,v,o,gate,up,down or full module names")
    ap.add_argument("--pack", action="store_true", help="pack whole examples into rows instead of one per row")
    ap.add_argument("--eval", action="store_true", help="held-out exact match before and after training")
    ap.add_argument("--eval-limit", type=int, default=0, help="only the first N held-out examples (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch, transformers, peft
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import LoraConfig, get_peft_model
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; "
          f"threads {torch.get_num_threads()}; loadavg at start: {loadavg()}", flush=True)

    path = model_path(a.model)
    d, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    print(f"loaded {path} (dequantized to float32, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, "
          f"attention {model.config._attn_implementation}) in {time.perf_counter() - t:.1f} s; RSS now "
          f"{rss_mb():.0f} MB, peak so far {peak_rss_mb():.0f} MB", flush=True)
    rss_loaded = rss_mb()

    train = [json.loads(l) for l in open(a.train)]
    heldout = [json.loads(l) for l in open(a.heldout)]
    if a.eval_limit:
        heldout = heldout[:a.eval_limit]
    encoded = [encode(tok, ex["messages"]) for ex in train]
    lengths = [len(i) for i, _ in encoded]
    print(f"train: {len(train)} examples, {min(lengths)}..{max(lengths)} tokens (mean {statistics.mean(lengths):.1f}), "
          f"{sum(sum(l != -100 for l in lab) for _, lab in encoded) / len(encoded):.1f} labelled per example", flush=True)

    acc_before = evaluate(model, tok, heldout, "before") if a.eval else None

    targets = [SHORT.get(x.strip(), x.strip()) for x in a.targets.split(",") if x.strip()]
    cfg = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=0.0, target_modules=targets, bias="none",
                     task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"LoRA r={a.rank} alpha={a.alpha:g} on {','.join(targets)}: {n_train} trainable parameters", flush=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0)

    rng = random.Random(a.seed)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    rows, truncated = rows_of([encoded[i] for i in order], a.seq, tok.pad_token_id, a.pack)
    if truncated:
        print(f"warning: {truncated} examples longer than --seq {a.seq} were truncated", flush=True)
    print(f"{len(rows)} rows of {a.seq} tokens ({'packed' if a.pack else 'one example per row, padded'}), "
          f"batch {a.batch}", flush=True)

    model.train()
    rates, losses, cursor = [], [], 0
    t_train = time.perf_counter()
    for step in range(1, a.steps + 1):
        batch = [rows[(cursor + i) % len(rows)] for i in range(a.batch)]
        cursor += a.batch
        ids = torch.tensor([r[0] for r in batch])
        labels = torch.tensor([r[1] for r in batch])
        mask = torch.tensor([r[2] for r in batch])
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t
        rates.append(a.batch * a.seq / dt)
        losses.append(loss.item())
        print(f"step {step:3d}  loss {losses[-1]:.4f}  {dt * 1000:7.1f} ms  {rates[-1]:7.1f} tok/s", flush=True)
    train_s = time.perf_counter() - t_train

    acc_after = evaluate(model, tok, heldout, "after") if a.eval else None
    steady = rates[2:] or rates
    result = {
        "engine": f"pytorch {torch.__version__} + peft {peft.__version__} eager CPU",
        "model": os.path.basename(path), "threads": a.threads, "steps": a.steps, "batch": a.batch, "seq": a.seq,
        "pack": a.pack, "lr": a.lr, "rank": a.rank, "alpha": a.alpha, "targets": targets,
        "trainable_params": n_train, "first_loss": losses[0], "last_loss": losses[-1],
        "median_tok_s_after_2": round(statistics.median(steady), 1), "best_tok_s_after_2": round(max(steady), 1),
        "train_s": round(train_s, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_load_mb": round(rss_loaded, 1), "rss_end_mb": round(rss_mb(), 1),
        "wall_s": round(time.perf_counter() - T0, 2), "loadavg_end": loadavg(),
    }
    if a.eval:
        result.update({"heldout_n": len(heldout), "heldout_exact_before": acc_before[0],
                       "heldout_exact_after": acc_after[0], "heldout_lenient_before": acc_before[1],
                       "heldout_lenient_after": acc_after[1]})
    print(f"median tokens/s (steps 3..{a.steps}): {result['median_tok_s_after_2']}  peak RSS {result['peak_rss_mb']} MB  "
          f"wall {result['wall_s']} s (training {result['train_s']} s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
