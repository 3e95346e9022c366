#!/usr/bin/env bash
# Builds Examples/hello-kujira in release against Kujira *by version* — a bare clone of this checkout tagged 0.1.0,
# reached through a file:// URL with `from: "0.1.0"`, as an app would depend on a release — then runs it from / and
# checks the answer and that the manifest, evaluated as a dependency, gives no linked target `unsafeFlags`. Prints
# "version dependency: ok" and exits 0 when that holds and the app answers "5" to "What is 2+3?".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet --bare "$root" "$work/kujira.git"
git -C "$work/kujira.git" tag 0.1.0 HEAD
cp -R "$root/Examples/hello-kujira" "$work/app"
export KUJIRA_PACKAGE_URL="file://$work/kujira.git"
swift build -c release --package-path "$work/app" 2>&1 | grep -E "error|warning: .*unsafe|Build complete" || true
bin="$work/app/.build/release/hello-kujira"
test -x "$bin" || { echo "version dependency: the app did not build"; exit 1; }
grep -q '"version" : "0.1.0"' "$work/app/Package.resolved" || { echo "version dependency: not resolved to the 0.1.0 tag"; exit 1; }
# The manifest as the app's build evaluates it (in .build/checkouts): no target the app links may carry unsafeFlags.
checkout=$(ls -d "$work/app/.build/checkouts/"*/ | head -n 1)
swift package --package-path "$checkout" dump-package > "$work/manifest.json"
python3 - "$work/manifest.json" <<'PY' || { echo "version dependency: unsafeFlags in a linked target"; exit 1; }
import json, sys
manifest = json.load(open(sys.argv[1]))
unsafe = [t["name"] for t in manifest["targets"] if t["type"] != "test" and "unsafeFlags" in json.dumps(t.get("settings", []))]
print("targets with unsafeFlags the app links:", ", ".join(unsafe) or "none")
sys.exit(1 if unsafe else 0)
PY
answer=$(cd / && KUJIRA_CACHE="$work/cache" "$bin" "What is 2+3?")
echo "$answer"
if [ "$(echo "$answer" | grep -v '^\[' | tr -d '[:space:]')" = "5" ]; then echo "version dependency: ok"; else echo "version dependency: FAILED"; exit 1; fi
