#!/usr/bin/env bash
# The web chat of `kujira serve` in headless Chromium (Debian's chromium + chromium-driver, installed if missing, and
# selenium from PyPI): two servers on loopback — the embedded reasoning model (it thinks, then answers) and SmolLM2 Q4_1
# (scripts/fetch-smollm2.sh; its long replies stream slowly enough to press Stop) — then scripts/web_chat_check.py loads the page, sends a message,
# sees the streamed answer and the thinking block, reloads, regenerates, renders Markdown and stops a reply.
# Saves a screenshot (argument 1, default /tmp/kujira-web-chat.png). Set KUJIRA_BIN to use a built binary.
# Ends with 'web-chat: N passed, N failed'; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
SCREENSHOT=$(realpath -m "${1:-/tmp/kujira-web-chat.png}")
if [ -z "${KUJIRA_BIN:-}" ]; then
  swift build --product kujira >/dev/null || { echo "build failed"; echo "web-chat: 0 passed, 1 failed"; exit 1; }
  KUJIRA_BIN="$(swift build --show-bin-path)/kujira"
fi
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check selenium >/dev/null 2>&1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
KEY="sk-web-$RANDOM$RANDOM"
PORT=$(free_port); SLOW_PORT=$(free_port)
LOG=$(mktemp); SLOW_LOG=$(mktemp)
HOME_DIR=$(mktemp -d)
HOME="$HOME_DIR" "$KUJIRA_BIN" serve --port "$PORT" --api-key "$KEY" >"$LOG" 2>&1 &
PID=$!
SMOL=${SMOLLM2_GGUF:-$HOME/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -f "$SMOL" ] || { echo "no SmolLM2 GGUF at $SMOL (run scripts/fetch-smollm2.sh)"; echo "web-chat: 0 passed, 1 failed"; exit 1; }
"$KUJIRA_BIN" serve --model "$SMOL" --port "$SLOW_PORT" --api-key "$KEY" --ctx 2048 >"$SLOW_LOG" 2>&1 &
SLOW_PID=$!
cleanup() {
  kill "$PID" "$SLOW_PID" 2>/dev/null; wait "$PID" "$SLOW_PID" 2>/dev/null
  rm -rf "$LOG" "$SLOW_LOG" "$HOME_DIR"
}
trap cleanup EXIT
for port in "$PORT" "$SLOW_PORT"; do
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health" || true)" = 200 ] && break
    sleep 0.25
  done
done
(cd scripts && python3 web_chat_check.py --base "http://127.0.0.1:$PORT" --slow-base "http://127.0.0.1:$SLOW_PORT" --key "$KEY" \
  --screenshot "$SCREENSHOT")
status=$?
[ "$status" = 0 ] || { echo "--- server log"; tail -n 20 "$LOG"; tail -n 20 "$SLOW_LOG"; }
exit "$status"
