#!/usr/bin/env bash
# Kujira vs llama.cpp on the same files, same threads, same run: for each file one llama_cpp_bench.py run immediately
# followed by one `kujira bench` run (pp128 / tg64, warm-up + median of 3), ROUNDS rounds (default 2), with a ratio line per pair.
# usage: scripts/bench-vs-llama-cpp.sh [THREADS] [FILE.gguf ...]
#   default files: SmolLM2 Q4_1 (scripts/fetch-smollm2.sh), its Q8_0 / Q4_K_M / Q5_K_M requantizations
#   (scripts/requantize-with-llama-cpp.py) and the V3-mini Q8_0 / Q4_K files of scripts/bench-v3-mini.sh (and its Q5_K_M
#   requantization of the Q8_0 file), where present.
# env: PY (python with llama_cpp; default the setup-reference-env.sh venv), REF_BENCH (llama_cpp_bench.py), P (prompt tokens, default 128)
set -uo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}; shift || true
PY=${PY:-$HOME/.cache/kujira-ref/venv/bin/python}
REF_BENCH=${REF_BENCH:-../shared/tools/llama_cpp_bench.py}
M=$HOME/.cache/kujira/models; V=$HOME/.cache/kujira/v3-mini
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for f in $M/SmolLM2-135M-Instruct.Q4_1.gguf $M/SmolLM2-135M-Instruct.q8_0.gguf $M/SmolLM2-135M-Instruct.q4_k_m.gguf \
           $M/SmolLM2-135M-Instruct.q5_k_m.gguf $V/v3-mini-q8_0.gguf $V/v3-mini-q4_k.gguf $V/v3-mini-q5_k_m.gguf; do [ -f "$f" ] && files+=("$f"); done
fi
swift build -c release --product kujira >/dev/null 2>&1
ROUNDS=${ROUNDS:-2}
P=${P:-128}
for round in $(seq 1 "$ROUNDS"); do
  for f in "${files[@]}"; do
    echo "== round $round $(basename "$f") t=$T $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    ref=$("$PY" "$REF_BENCH" "$f" -p "$P" -n 64 -t "$T" 2>/dev/null | tail -1)
    ours=$(.build/release/kujira bench --model "$f" -p "$P" -n 64 --threads "$T" --json 2>/dev/null | tail -1)
    echo "$ref"; echo "$ours"
    # One summary line per pair: both engines' tok/s and Kujira / llama.cpp.
    python3 -c 'import json,sys; r,o=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print("ratio %s: pp%s %.1f / %.1f = %.2fx, tg %.1f / %.1f = %.2fx" % (sys.argv[3], sys.argv[4], o["pp_tok_s"], r["pp_tok_s"], o["pp_tok_s"]/r["pp_tok_s"], o["tg_tok_s"], r["tg_tok_s"], o["tg_tok_s"]/r["tg_tok_s"]))' "$ref" "$ours" "$(basename "$f")" "$P" || true
  done
done
