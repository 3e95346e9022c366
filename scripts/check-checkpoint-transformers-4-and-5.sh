#!/usr/bin/env bash
# Checks that a Kujira DeepSeek-V3 training checkpoint loads in both Hugging Face transformers 4.x and 5.x and gives
# Kujira's logits: runs scripts/check-checkpoint-transformers.py (DeepseekV3ForCausalLM in float32 vs `kujira
# logits`, tolerance 1e-4; no missing keys, no unexpected keys outside the MTP layer, routed experts loaded equal to
# the checkpoint's) once with the reference venv's transformers 5.x and once with transformers 4.57.x. The two keep
# routed experts differently (4.x: one module per expert, 5.x: stacked gate_up_proj/down_proj converted at load), so
# this covers both readers of deepseek-ai's per-expert layout.
# transformers 4.x (+ the tokenizers and huggingface_hub < 1.0 it needs) is installed with --no-deps into a side
# directory put first on PYTHONPATH, so torch, numpy, safetensors … still come from the venv and the venv's
# transformers 5 is left untouched. Installed on first run from PyPI if absent.
# Needs the reference venv with torch + transformers 5:  PY=$(../shared/tools/setup-reference-env.sh --torch)
# usage: scripts/check-checkpoint-transformers-4-and-5.sh CHECKPOINT_DIR [KUJIRA_BIN]
#   (KUJIRA_BIN defaults to .build/release/kujira; KUJIRA_REF_PYTHON overrides the venv's python,
#    KUJIRA_TRANSFORMERS4_DIR the side directory, default ~/.cache/kujira-ref/transformers4)
# Exits non-zero if either version fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
CKPT=$1
KUJIRA=${2:-$ROOT/.build/release/kujira}
PY=${KUJIRA_REF_PYTHON:-$HOME/.cache/kujira-ref/venv/bin/python}
T4=${KUJIRA_TRANSFORMERS4_DIR:-$HOME/.cache/kujira-ref/transformers4}
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1

major() { PYTHONPATH=$1 "$PY" -c 'import transformers; print(transformers.__version__.split(".")[0])' 2>/dev/null || true; }
[ "$(major "")" = 5 ] || { echo "$PY: needs transformers 5.x (see ../shared/tools/setup-reference-env.sh --torch)" >&2; exit 2; }
if [ "$(major "$T4")" != 4 ]; then
  echo "installing transformers 4.57.x into $T4 ..." >&2
  "$PY" -m pip install -q --no-deps --upgrade --target "$T4" \
    'transformers==4.57.*' 'huggingface_hub>=0.34,<1.0' 'tokenizers>=0.22,<=0.23.0'
fi
PYTHONPATH=$T4 "$PY" -c '
import sys, torch, transformers
from transformers import DeepseekV3ForCausalLM
assert transformers.__version__.startswith("4."), transformers.__version__
assert "'"$T4"'" not in torch.__file__, "torch must come from the venv, not " + torch.__file__
' || { echo "transformers 4.x in $T4 does not import cleanly with $PY" >&2; exit 2; }

status=0
for v in 5 4; do
  echo "=== transformers $v.x ==="
  if [ $v = 4 ]; then pp=$T4; else pp=""; fi
  if ! PYTHONPATH=$pp "$PY" "$ROOT/scripts/check-checkpoint-transformers.py" "$CKPT" --kujira "$KUJIRA"; then
    echo "=== transformers $v.x: FAILED ===" >&2; status=1
  fi
done
[ $status = 0 ] && echo "=== both transformers 4.x and 5.x: PASS ==="
exit $status
