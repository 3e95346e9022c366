#!/usr/bin/env bash
# DeepSeek-V3-architecture benchmark, Kujira vs llama.cpp on the same files (issue 5, item 7):
#   kujira init (docs/configs/deepseek-v3-mini.json, BF16, DeepSeek-V3 tokenizer) → kujira convert → GGUF Q8_0 and Q4_K
#   → kujira bench and llama.cpp (llama-cpp-python, ../shared/tools/llama_cpp_bench.py), back to back, same threads.
# usage: scripts/bench-v3-mini.sh [THREADS]    (env: OUT=dir for the model files, PY=python with llama_cpp, REPS=rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-2}
OUT=${OUT:-$HOME/.cache/kujira/v3-mini}
PY=${PY:-$HOME/.cache/kujira-ref/venv/bin/python}
REF_BENCH=${REF_BENCH:-../shared/tools/llama_cpp_bench.py}
ROUNDS=${ROUNDS:-2}
swift build -c release --product kujira >/dev/null 2>&1
K=.build/release/kujira
mkdir -p "$OUT"
if [ ! -f "$OUT/hf/config.json" ]; then
  $K init --config docs/configs/deepseek-v3-mini.json --out "$OUT/hf" --seed 1 --dtype bf16 --tokenizer Tests/Fixtures/tokenizers/deepseek-v3
fi
$K inspect --model "$OUT/hf"
for type in q8_0 q4_k; do
  f="$OUT/v3-mini-$type.gguf"
  [ -f "$f" ] || $K convert --model "$OUT/hf" --to gguf --type "$type" --out "$f" --quiet
done
for round in $(seq 1 "$ROUNDS"); do
  for type in q8_0 q4_k; do
    f="$OUT/v3-mini-$type.gguf"
    echo "== round $round, $type, $(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg)"
    "$PY" "$REF_BENCH" "$f" -p 128 -n 64 -t "$THREADS"
    $K bench --model "$f" -p 128 -n 64 --threads "$THREADS" --json
  done
done
