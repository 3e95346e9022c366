#!/usr/bin/env bash
# Encode throughput of a release `kujira tokenize` against HF `tokenizers` (pip install tokenizers), one
# thread each, on the same inputs and the same DeepSeek-V3 tokenizer.json:
#   ja   — the Japanese paragraphs of the DeepSeek-V3 golden texts, repeated to ~1 MB
#   code — the project's own Swift sources concatenated, repeated to ~1 MB
#   words — ~1 MB of seeded random lowercase words (almost no repeats: the word caches of both sides miss)
#   line-1mb / line-2mb — single lines with no spaces (one huge pre-token): checks BPE is not quadratic
# Usage: scripts/bench-tokenizer.sh [repeats]   (needs python3 with `tokenizers`)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEAT=${1:-5}
TOK=Tests/Fixtures/tokenizers/deepseek-v3/tokenizer.json
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
swift build -c release --product kujira >/dev/null
BIN=$(swift build -c release --show-bin-path)/kujira

python3 - "$WORK" <<'PY'
import json, glob, sys, os
work = sys.argv[1]
cases = json.load(open("Tests/Fixtures/tokenizers/deepseek-v3/golden.json"))["cases"]
ja = "\n".join(c["text"] for c in cases if sum(0x3040 <= ord(ch) <= 0x30ff for ch in c["text"]) > 10) + "\n"
code = "".join(open(p, encoding="utf-8").read() for p in sorted(glob.glob("Sources/**/*.swift", recursive=True)))
def fill(s, n=1_000_000):
    b = s.encode()
    return (s * (n // len(b) + 1)).encode()[:n].decode("utf-8", "ignore")
import random
rng = random.Random(1)
words = " ".join("".join(rng.choice("etaoinshrdlucmfwypvbgkqjxz") for _ in range(rng.randint(2, 12))) + rng.choice(["", "", "", ",", "."])
                 for _ in range(160_000))
for name, text in [("ja", fill(ja)), ("code", fill(code)), ("words", fill(words)),
                   ("line-1mb", "abcdefghij" * 100_000), ("line-2mb", "abcdefghij" * 200_000)]:
    open(os.path.join(work, name + ".txt"), "w", encoding="utf-8").write(text)
PY

printf "%-9s %10s %12s %12s %8s %s\n" input bytes "kujira MB/s" "HF MB/s" ratio "tokens equal"
for name in ja code words line-1mb line-2mb; do
  f="$WORK/$name.txt"
  k=$("$BIN" tokenize --tokenizer "$TOK" --bench-file "$f" --bench-repeat "$REPEAT")
  h=$(RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false python3 - "$TOK" "$f" "$REPEAT" <<'PY'
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1]); text = open(sys.argv[2], encoding="utf-8").read(); n = int(sys.argv[3])
ids = tok.encode(text, add_special_tokens=False).ids
best = min((lambda t0: (tok.encode(text, add_special_tokens=False), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(n))
print(json.dumps({"bytes": len(text.encode()), "tokens": len(ids), "mb_per_s": len(text.encode()) / 1e6 / best}))
PY
)
  # Exact id equality on the whole input (not only the count).
  "$BIN" tokenize --tokenizer "$TOK" --jsonl < <(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1],encoding="utf-8").read()))' "$f") > "$WORK/k.ids"
  python3 - "$TOK" "$f" "$WORK/k.ids" "$k" "$h" "$name" <<'PY'
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1]); text = open(sys.argv[2], encoding="utf-8").read()
same = json.load(open(sys.argv[3])) == tok.encode(text, add_special_tokens=False).ids
k, h = json.loads(sys.argv[4]), json.loads(sys.argv[5])
print(f"{sys.argv[6]:<9} {k['bytes']:>10} {k['mb_per_s']:>12.2f} {h['mb_per_s']:>12.2f} {k['mb_per_s'] / h['mb_per_s']:>7.2f}x {same}")
PY
done
