#!/usr/bin/env bash
# Builds the Kujira product's DocC documentation with warnings as errors (broken symbol links, bad articles) and checks
# that every public declaration of the product has a doc comment. Prints "docs: ok" and exits 0 when both hold.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 scripts/check-public-docs.py Sources/Kujira
swift package --allow-writing-to-directory "$out" generate-documentation --target Kujira --warnings-as-errors \
  --output-path "$out/Kujira.doccarchive" 2>&1 | grep -vE "^\[[0-9]+/[0-9]+\]" | tail -20
test -d "$out/Kujira.doccarchive/data/documentation/kujira" || { echo "docs: no archive written"; exit 1; }
echo "docs: ok ($(find "$out/Kujira.doccarchive/data/documentation/kujira" -name '*.json' | wc -l) pages)"
