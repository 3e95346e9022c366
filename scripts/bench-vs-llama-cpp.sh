#!/usr/bin/env bash
# Kujira vs llama.cpp on the same files, same threads, same run: for each file one llama_cpp_bench.py run immediately
# followed by one `kujira bench` run (pp128 / tg64, warm-up + median of 3), two rounds.
# usage: scripts/bench-vs-llama-cpp.sh [THREADS] [FILE.gguf ...]
#   default files: SmolLM2 Q4_1 (scripts/fetch-smollm2.sh), its Q8_0 / Q4_K_M requantizations
#   (scripts/requantize-with-llama-cpp.py) and the V3-mini Q8_0 / Q4_K files of scripts/bench-v3-mini.sh, where present.
# env: PY (python with llama_cpp; default the setup-reference-env.sh venv), REF_BENCH (llama_cpp_bench.py)
set -uo pipefail
cd "$(dirname "$0")/.."
T=${1:-2}; shift || true
PY=${PY:-$HOME/.cache/kujira-ref/venv/bin/python}
REF_BENCH=${REF_BENCH:-../shared/tools/llama_cpp_bench.py}
M=$HOME/.cache/kujira/models; V=$HOME/.cache/kujira/v3-mini
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  for f in $M/SmolLM2-135M-Instruct.Q4_1.gguf $M/SmolLM2-135M-Instruct.q8_0.gguf $M/SmolLM2-135M-Instruct.q4_k_m.gguf \
           $V/v3-mini-q8_0.gguf $V/v3-mini-q4_k.gguf; do [ -f "$f" ] && files+=("$f"); done
fi
swift build -c release --product kujira >/dev/null 2>&1
for round in 1 2; do
  for f in "${files[@]}"; do
    echo "== round $round $(basename "$f") t=$T $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
    "$PY" "$REF_BENCH" "$f" -p 128 -n 64 -t "$T" 2>/dev/null | tail -1
    .build/release/kujira bench --model "$f" -p 128 -n 64 --threads "$T" --json 2>/dev/null | tail -1
  done
done
