#!/usr/bin/env bash
# The R1 recipe at tiny scale (docs/recipe.md): pretrain → GRPO on a harder split → distillation, fixed seeds.
# Runs from the repository root after `swift build -c release`; outputs go to runs/. About 25 minutes on 2 idle cores.
set -euo pipefail
K=${KUJIRA:-.build/release/kujira}
export KUJIRA_THREADS=2
mkdir -p runs

# 0. The embedded default model (Models/kujira-arith) and the first model (equal-length operands, the distillation teacher).
$K train --config docs/configs/arithmetic-1m.json --task arithmetic --ops +- --digits 1-3 --natural-questions --mixed-lengths \
  --steps 1200 --batch 32 --seq 64 --lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-every 300 --eval-problems 200 --seed 1 --out runs/arith-mixed
$K export --model runs/arith-mixed --out runs/kujira-arith-mixed --dtype bf16
$K eval --model runs/kujira-arith-mixed --ops +- --digits 1-3 --mixed-lengths --problems 200 --k 8 --speculative | tee runs/kujira-arith-mixed-eval.json
$K train --config docs/configs/arithmetic-1m.json --task arithmetic --ops +- --digits 1-3 --natural-questions --steps 1200 \
  --batch 32 --seq 64 --lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-every 300 --eval-problems 200 --seed 1 --out runs/arith
$K export --model runs/arith --out runs/kujira-arith --dtype bf16
$K eval --model runs/kujira-arith --split heldout --ops +- --digits 1-3 --problems 200 --k 8 --speculative | tee runs/kujira-arith-eval.json

# The measured runs below used 1 thread each (two ran side by side); results are bit-reproducible per thread count.
export KUJIRA_THREADS=1

# 1. A shorter pretraining run as the RL starting point.
$K train --config docs/configs/arithmetic-1m.json --task arithmetic --ops +- --digits 1-3 --steps 450 --batch 32 --seq 64 \
  --lr 3e-3 --min-lr 3e-4 --warmup 50 --eval-every 150 --eval-problems 200 --seed 2 --out runs/base450

# 2. GRPO and Dr. GRPO on 3-digit problems; pass@1 / pass@8 before and after.
$K eval --model runs/base450 --digits 3 --problems 200 --k 8 | tee runs/base450-eval3.json
for run in grpo3:grpo drgrpo3:dr_grpo; do
  out=${run%%:*}; loss=${run##*:}
  $K grpo --model runs/base450 --digits 3 --steps 150 --prompts 8 --group 8 --lr 2e-5 --iterations 2 --beta 0.04 \
    --loss $loss --seed 1 --out runs/$out --checkpoint-every 25
  $K eval --model runs/$out --digits 3 --problems 200 --k 8 | tee runs/$out-eval3.json
done

# 3. Distillation into a 4x smaller student vs the same student on answers only.
$K distill --teacher runs/kujira-arith --student-config docs/configs/arithmetic-300k.json --out runs/student-traces \
  --ops +- --digits 1-3 --prompts 1000 --samples 2 --temperature 0.7 --steps 600 --batch 32 --seq 64 --seed 1
$K distill --teacher runs/kujira-arith --student-config docs/configs/arithmetic-300k.json --out runs/student-answers --answers-only \
  --ops +- --digits 1-3 --prompts 1000 --samples 2 --temperature 0.7 --steps 600 --batch 32 --seq 64 --seed 1
for s in student-traces student-answers; do $K eval --model runs/$s --digits 1-3 --problems 200 --k 8 | tee runs/$s-eval.json; done
