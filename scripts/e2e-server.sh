#!/usr/bin/env bash
# End-to-end test of `kujira serve`: starts it on loopback on a model (default: the tiny test model
# Tests/Fixtures/server/tiny-chat; pass a model dir or .gguf as $1), waits for /health, drives it with the official
# `openai` Python package (scripts/e2e_openai.py) and with curl -N for raw SSE, then stops it. A second server then
# gets SIGTERM with streams open (scripts/e2e_shutdown.py): they must end with an error event and the process exit 0.
# Structured outputs (json_schema, pydantic parse()) run against SmolLM2 Q4_1 (scripts/e2e_structured.py).
# Set KUJIRA_BIN to use an already built binary. Ends with 'N passed, N failed'; exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-Tests/Fixtures/server/tiny-chat}
if [ -z "${KUJIRA_BIN:-}" ]; then
  swift build --product kujira >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
  KUJIRA_BIN="$(swift build --show-bin-path)/kujira"
fi
python3 -m pip install -q --disable-pip-version-check openai jsonschema >/dev/null 2>&1 || python3 -m pip install -q openai jsonschema
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY="sk-e2e-$RANDOM$RANDOM"
BASE="http://127.0.0.1:$PORT"
LOG=$(mktemp)
"$KUJIRA_BIN" serve --model "$MODEL" --port "$PORT" --api-key "$KEY" --max-concurrent 2 --max-queue 8 >"$LOG" 2>&1 &
PID=$!
PID2=""
cleanup() {
  kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null
  [ -n "$PID2" ] && { kill "$PID2" 2>/dev/null; wait "$PID2" 2>/dev/null; }
  rm -f "$LOG" "${LOG2:-}"
}
trap cleanup EXIT

passed=0; failed=0
ok() { echo "PASS $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }

ready=0
for _ in $(seq 1 240); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/health" || true)
  [ "$code" = "200" ] && { ready=1; break; }
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.25
done
if [ "$ready" = 1 ]; then ok "server up, /health 200 without a key"; else bad "server did not become healthy"; cat "$LOG"; echo "$passed passed, $failed failed"; exit 1; fi

# Raw SSE with curl -N: every event is one 'data: ' line, the stream ends with 'data: [DONE]'.
sse=$(curl -sN "$BASE/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}')
events=$(printf '%s\n' "$sse" | grep -c '^data: ' || true)
others=$(printf '%s\n' "$sse" | grep -v '^data: ' | grep -vc '^$' || true)
last=$(printf '%s\n' "$sse" | grep '^data: ' | tail -n 1)
if [ "$events" -ge 3 ] && [ "$others" = 0 ] && [ "$last" = "data: [DONE]" ] && printf '%s' "$sse" | grep -q '"usage":{"prompt_tokens"'; then
  ok "curl -N raw SSE framing ($events events)"
else
  bad "curl -N raw SSE framing: $sse"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/chat/completions" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -d '{"model": "m", "messages": [')
[ "$code" = 400 ] && ok "curl: unparseable JSON is 400" || bad "curl: unparseable JSON gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/models")
[ "$code" = 401 ] && ok "curl: missing key is 401" || bad "curl: missing key gave $code"
metrics=$(curl -s "$BASE/metrics" -H "Authorization: Bearer $KEY")
printf '%s' "$metrics" | grep -q '^kujira_requests_total' && ok "curl: /metrics has kujira_requests_total" || bad "curl: /metrics"

py_out=$(cd scripts && python3 e2e_openai.py --base "$BASE" --key "$KEY" 2>&1)
echo "$py_out"
py_passed=$(printf '%s\n' "$py_out" | sed -nE 's/^openai: ([0-9]+) passed, ([0-9]+) failed$/\1/p')
py_failed=$(printf '%s\n' "$py_out" | sed -nE 's/^openai: ([0-9]+) passed, ([0-9]+) failed$/\2/p')
if [ -z "$py_passed" ]; then bad "openai script did not finish"; else passed=$((passed + py_passed)); failed=$((failed + py_failed)); fi
kill -0 "$PID" 2>/dev/null && ok "server still running after all requests" || { bad "server died"; cat "$LOG"; }

# Structured outputs on a real model (SmolLM2 Q4_1, fetched by scripts/fetch-smollm2.sh): json_schema and pydantic parse().
SMOL=${SMOLLM2_GGUF:-$HOME/.cache/kujira/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ -f "$SMOL" ]; then
  PORT3=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  LOG3=$(mktemp)
  "$KUJIRA_BIN" serve --model "$SMOL" --port "$PORT3" --api-key "$KEY" --ctx 2048 >"$LOG3" 2>&1 &
  PID3=$!
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT3/health" || true)" = 200 ] && break
    sleep 0.25
  done
  st_out=$(cd scripts && python3 e2e_structured.py --base "http://127.0.0.1:$PORT3" --key "$KEY" 2>&1)
  echo "$st_out"
  st_passed=$(printf '%s\n' "$st_out" | sed -nE 's/^structured: ([0-9]+) passed, ([0-9]+) failed$/\1/p')
  st_failed=$(printf '%s\n' "$st_out" | sed -nE 's/^structured: ([0-9]+) passed, ([0-9]+) failed$/\2/p')
  if [ -z "$st_passed" ]; then bad "structured-output script did not finish"; cat "$LOG3"; else passed=$((passed + st_passed)); failed=$((failed + st_failed)); fi
  kill "$PID3" 2>/dev/null; wait "$PID3" 2>/dev/null
  rm -f "$LOG3"
else
  bad "no SmolLM2 GGUF at $SMOL for the structured-output checks (run scripts/fetch-smollm2.sh)"
fi

# Shared prefix cache across a restart: a server with --cache-dir answers, is stopped, and a new process on the same
# directory reports prompt_cache_hit_tokens for another question after the same system prompt.
CACHE_DIR=$(mktemp -d)
SYSTEM="You are a careful assistant who answers briefly. You are a careful assistant who answers briefly. Be kind."
ask_cached() {
  curl -s "http://127.0.0.1:$1/v1/chat/completions" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"model\":\"m\",\"max_tokens\":4,\"temperature\":0,\"messages\":[{\"role\":\"system\",\"content\":\"$SYSTEM\"},{\"role\":\"user\",\"content\":\"$2\"}]}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["prompt_cache_hit_tokens"])'
}
hits=()
for question in "What is 2+2?" "Name a colour."; do
  PORT4=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$KUJIRA_BIN" serve --model "$MODEL" --port "$PORT4" --api-key "$KEY" --cache-dir "$CACHE_DIR" >/dev/null 2>&1 &
  PID4=$!
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT4/health" || true)" = 200 ] && break
    sleep 0.25
  done
  hits+=("$(ask_cached "$PORT4" "$question" 2>/dev/null || echo error)")
  kill "$PID4" 2>/dev/null; wait "$PID4" 2>/dev/null
done
files=$(ls "$CACHE_DIR" | grep -c '\.kvblock$' || true)
rm -rf "$CACHE_DIR"
if [ "${hits[0]}" = 0 ] && [ "${hits[1]}" != error ] && [ "${hits[1]}" -ge 64 ] 2>/dev/null; then
  ok "prefix cache survives a restart (hits ${hits[0]} then ${hits[1]} from $files block files)"
else
  bad "prefix cache across a restart: hits ${hits[*]}, $files block files"
fi

# Graceful shutdown: one slot, so of 24 streams most are queued or generating when SIGTERM arrives.
PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG2=$(mktemp)
"$KUJIRA_BIN" serve --model "$MODEL" --port "$PORT2" --max-concurrent 1 --max-queue 64 >"$LOG2" 2>&1 &
PID2=$!
for _ in $(seq 1 240); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT2/health" || true)" = 200 ] && break
  sleep 0.25
done
if python3 scripts/e2e_shutdown.py --base "http://127.0.0.1:$PORT2" --pid "$PID2" --streams 24; then
  ok "SIGTERM ends open streams with an error event"
else
  bad "SIGTERM with open streams"
fi
for _ in $(seq 1 60); do kill -0 "$PID2" 2>/dev/null || break; sleep 0.25; done
if kill -0 "$PID2" 2>/dev/null; then
  bad "server still running 15 s after SIGTERM"; cat "$LOG2"
else
  wait "$PID2"; code=$?
  [ "$code" = 0 ] && ok "server exited 0 after SIGTERM" || { bad "server exited $code after SIGTERM"; cat "$LOG2"; }
fi
PID2=""

echo "e2e-server: $passed passed, $failed failed"
[ "$failed" = 0 ]
