#!/usr/bin/env bash
# Kujira → PEFT: fine-tunes a LoRA adapter with `kujira sft --lora-rank 4` on the tiny llama fixture (with the 256-id
# tiny-chat tokenizer), then loads that adapter with Python PEFT onto the transformers model and compares its logits
# with `kujira logits --lora` (scripts/check-peft-interchange.py, tolerance 1e-4). The opposite direction (PEFT →
# Kujira) is LoRATests. Needs torch + transformers + peft:
#   PY=$(../shared/tools/setup-reference-env.sh --torch); $PY -m pip install peft==0.21.2
# usage: scripts/check-peft-roundtrip.sh [kujira-binary]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KUJIRA=${1:-$ROOT/.build/release/kujira}
PY=${KUJIRA_REF_PYTHON:-$HOME/.cache/kujira-ref/venv/bin/python}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir "$T/base"
cp "$ROOT"/Tests/Fixtures/models/llama-tiny/{config.json,model.safetensors} "$ROOT"/Tests/Fixtures/server/tiny-chat/tokenizer*.json "$T/base/"
for i in $(seq 1 30); do
  echo "{\"messages\": [{\"role\": \"user\", \"content\": \"Say $((i % 5))\"}, {\"role\": \"assistant\", \"content\": \"whale $((i % 5))\"}]}"
done > "$T/train.jsonl"
"$KUJIRA" sft --model "$T/base" --data "$T/train.jsonl" --seq 64 --batch 2 --lr 3e-3 --warmup 2 --steps 10 --eval-every 0 \
  --checkpoint-every 10 --lora-rank 4 --out "$T/run" >/dev/null
TOKENS=1,40,77,90,101,55,66,120,30,31,200,201,17,18,60
"$KUJIRA" logits --model "$T/base" --lora "$T/run" --tokens "$TOKENS" > "$T/logits.json"
"$PY" "$ROOT/scripts/check-peft-interchange.py" "$T/base" "$T/run/latest" "[$TOKENS]" "$T/logits.json" 2>/dev/null
