#!/usr/bin/env bash
# A "dynamic"-style mixed-type, split DeepSeek-V3-architecture GGUF, made the way the 1.58–2.7-bit DeepSeek-R1/V3 quants
# are: llama.cpp's own llama-imatrix and llama-quantize with per-tensor-pattern type overrides (routed experts IQ1_S /
# IQ2_XXS, shared experts and attention Q4_K / Q6_K, embeddings Q8_0), then llama-gguf-split into shards (issue 15, item 4).
# needs: the V3-mini BF16 model of scripts/bench-v3-mini.sh, and llama.cpp's tools built from the llama-cpp-python source:
#   LCPP=~/.cache/kujira-ref/llama.cpp-src (cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF; cmake --build build --target
#   llama-quantize llama-imatrix llama-gguf-split)
# usage: scripts/make-dynamic-quant-deepseek.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
LCPP=${LCPP:-$HOME/.cache/kujira-ref/llama.cpp-src}
V=${V:-$HOME/.cache/kujira/v3-mini}
OUT=${1:-$V/dynamic}
K=.build/release/kujira
mkdir -p "$OUT"
[ -f "$V/v3-mini-bf16.gguf" ] || $K convert --model "$V/hf" --to gguf --type bf16 --out "$V/v3-mini-bf16.gguf" --quiet
# Calibration text for the importance matrix: the project's own docs (any text works for a random-weight model).
cat README.md docs/*.md > "$OUT/calibration.txt"
[ -f "$OUT/imatrix.gguf" ] || "$LCPP/build/bin/llama-imatrix" -m "$V/v3-mini-bf16.gguf" -f "$OUT/calibration.txt" -o "$OUT/imatrix.gguf" \
  -c 128 --chunks 8 -t 2 > "$OUT/imatrix.log" 2>&1
"$LCPP/build/bin/llama-quantize" --imatrix "$OUT/imatrix.gguf" \
  --tensor-type "ffn_gate_exps=iq1_s" --tensor-type "ffn_up_exps=iq1_s" --tensor-type "ffn_down_exps=iq2_xxs" \
  --tensor-type "ffn_.*_shexp=q4_k" --tensor-type "attn_.*=q4_k" --tensor-type "ffn_(gate|up|down)=q4_k" \
  --token-embedding-type q8_0 --output-tensor-type q6_k \
  "$V/v3-mini-bf16.gguf" "$OUT/v3-mini-dynamic.gguf" IQ2_XXS 2 > "$OUT/quantize.log" 2>&1
rm -f "$OUT"/v3-mini-dynamic-0000*-of-*.gguf
"$LCPP/build/bin/llama-gguf-split" --split --split-max-size 150M "$OUT/v3-mini-dynamic.gguf" "$OUT/v3-mini-dynamic" > "$OUT/split.log" 2>&1
ls -la "$OUT"/v3-mini-dynamic-*.gguf
