#!/usr/bin/env python3
"""SIGTERM check for scripts/e2e-server.sh: opens --streams streaming chat requests on a running `kujira serve`
(started with --max-concurrent 1 so most of them are still queued or generating), waits until every one has its
first event, sends SIGTERM to --pid, then reads every stream to its end. Passes when every stream ends within
--timeout seconds, each one's last event before [DONE] is a finish chunk or an error event, at least one ends with
the `server_shutting_down` error event, and nothing is sent after it but [DONE]. Prints one PASS/FAIL line per
check and exits non-zero on failure (the exit status of the server itself is checked by the shell script)."""
import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time


def open_stream(host, port, key, index):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": f"Tell me a story {index}"}],
                       "max_tokens": 200, "stream": True})
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = conn.getresponse()
    return conn, response


def read_event(response):
    """The next `data:` payload, or None at the end of the stream."""
    while True:
        line = response.readline()
        if not line:
            return None
        line = line.decode().rstrip("\r\n")
        if line.startswith("data: "):
            return line[6:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--key", default="")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--streams", type=int, default=24)
    parser.add_argument("--timeout", type=float, default=15)
    args = parser.parse_args()
    host, port = args.base.split("//", 1)[1].split(":")
    port = int(port)

    streams = []
    for index in range(args.streams):
        conn, response = open_stream(host, port, args.key, index)
        if response.status != 200:
            print(f"FAIL shutdown: stream {index} got HTTP {response.status}: {response.read()[:200]!r}")
            return 1
        first = read_event(response)  # the role chunk, written as soon as the request is queued
        streams.append({"conn": conn, "response": response, "events": [first] if first else []})

    os.kill(args.pid, signal.SIGTERM)
    sent = time.monotonic()
    results = {}

    def drain(index, stream):
        events = stream["events"]
        try:
            while True:
                event = read_event(stream["response"])
                if event is None:
                    break
                events.append(event)
            results[index] = ("ended", time.monotonic() - sent)
        except Exception as error:  # a reset also ends the stream, but not cleanly
            results[index] = (f"error {error!r}", time.monotonic() - sent)

    threads = [threading.Thread(target=drain, args=(i, s), daemon=True) for i, s in enumerate(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, args.timeout - (time.monotonic() - sent)))

    failures = 0
    shut_down = finished = 0
    for index, stream in enumerate(streams):
        result = results.get(index)
        events = stream["events"]
        if result is None:
            print(f"FAIL shutdown: stream {index} still open {args.timeout:.0f} s after SIGTERM")
            failures += 1
            continue
        if result[0] != "ended":
            print(f"FAIL shutdown: stream {index} {result[0]}")
            failures += 1
            continue
        payloads = events[:-1] if events and events[-1] == "[DONE]" else events
        last = json.loads(payloads[-1]) if payloads else {}
        if "error" in last:
            if last["error"].get("code") == "server_shutting_down":
                shut_down += 1
            else:
                print(f"FAIL shutdown: stream {index} ended with another error: {last}")
                failures += 1
        elif last.get("choices") and last["choices"][0].get("finish_reason"):
            finished += 1
        else:
            print(f"FAIL shutdown: stream {index} ended without a finish chunk or error event: {events[-3:]}")
            failures += 1
    slowest = max((r[1] for r in results.values()), default=0)
    if shut_down == 0:
        print(f"FAIL shutdown: no stream ended with the server_shutting_down error event ({finished} finished first)")
        failures += 1
    if failures == 0:
        print(f"PASS SIGTERM: {shut_down} open streams ended with a server_shutting_down error event, {finished} had "
              f"finished, all closed within {slowest:.2f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
