#!/usr/bin/env python3
"""Soak test of `kujira serve` (Python 3 standard library only).

Starts `BIN serve` on 127.0.0.1 (the embedded model unless --model is given), then for --duration seconds keeps
--clients streaming chat clients busy (each on one keep-alive connection); --disconnect-rate of the requests hang up
after their first generated token. Meanwhile /health is polled every second and the server's RSS is sampled from
/proc/PID/status. At the end it checks, and exits non-zero unless all hold:
  - no 5xx response, no transport error, no stream that ended without [DONE] (client disconnects aside);
  - /health answered 200 every time;
  - every slot is free: kujira_active_sequences and kujira_queue_depth back to 0 on /metrics, and
    kujira_open_connections back to 1 (the /metrics request itself);
  - RSS flat: the median of the last window is at most --rss-tolerance above the median of the first window
    after warm-up (windows of 60 s after a 60 s warm-up on long runs, shorter on short runs);
  - SIGTERM stops the server with exit status 0.

  scripts/soak-server.py --bin .build/release/kujira                 # 10 minutes
  scripts/soak-server.py --bin .build/release/kujira --duration 30   # CI-sized
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


class Stats:
    """Counters shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = self.completed = self.tokens = self.disconnects = 0
        self.status = {}
        self.stream_errors = self.transport_errors = 0
        self.examples = []

    def add(self, **counts):
        with self.lock:
            for key, value in counts.items():
                setattr(self, key, getattr(self, key) + value)

    def count_status(self, code):
        with self.lock:
            self.status[code] = self.status.get(code, 0) + 1

    def note(self, text):
        with self.lock:
            if len(self.examples) < 10:
                self.examples.append(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def get(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def gauge(metrics_text, name):
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.eE+-]+)$", metrics_text, re.M)
    return float(match.group(1)) if match else None


def client(index, port, stop_at, args, stats):
    rng = random.Random(index)
    conn = None
    while time.monotonic() < stop_at:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        prompt = f"{a}+{b}" if rng.random() < 0.5 else f"{max(a, b)}-{min(a, b)}"
        body = json.dumps({"model": "kujira", "messages": [{"role": "user", "content": prompt}],
                           "max_tokens": args.max_tokens, "stream": True, "stream_options": {"include_usage": True}})
        disconnect = rng.random() < args.disconnect_rate
        stats.add(requests=1)
        try:
            conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            stats.count_status(response.status)
            if response.status != 200:
                text = response.read().decode(errors="replace")
                stats.note(f"HTTP {response.status}: {text[:200]}")
                if response.status >= 500 or response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
                continue
            generated, done, errored = 0, False, False
            while True:
                line = response.readline()
                if not line:
                    break
                line = line.decode().strip()
                if not line.startswith("data: "):
                    continue
                payload = line[6:]
                if payload == "[DONE]":
                    done = True
                    response.read()  # the closing chunk, so the connection can carry the next request
                    break
                event = json.loads(payload)
                if "error" in event:
                    errored = True
                    stats.note(f"error event: {payload[:200]}")
                    continue
                if event.get("usage"):
                    generated = event["usage"]["completion_tokens"]
                elif disconnect and event.get("choices") and any(
                        v for k, v in event["choices"][0].get("delta", {}).items() if k != "role"):
                    generated = 1  # the first generated piece: hang up now
                    break
            if disconnect and not done:
                # Hang up mid-stream: the server must notice and free the slot.
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except (OSError, AttributeError):
                    pass
                conn.close()
                conn = None
                stats.add(disconnects=1, tokens=generated)
            elif done and not errored:
                stats.add(completed=1, tokens=generated)
            else:
                stats.add(stream_errors=1)
                if not done:
                    stats.note("stream ended without [DONE]")
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, ValueError) as error:
            stats.add(transport_errors=1)
            stats.note(f"transport: {error!r}")
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def monitor(port, pid, stop_event, health, rss_samples, started):
    while not stop_event.is_set():
        tick = time.monotonic()
        try:
            status, _ = get(port, "/health", timeout=5)
            ok = status == 200
        except (OSError, http.client.HTTPException):
            ok = False
        health.append((tick - started, ok))
        rss = rss_kib(pid)
        if rss is not None:
            rss_samples.append((tick - started, rss))
        stop_event.wait(max(0.0, 1.0 - (time.monotonic() - tick)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the kujira binary (a release build)")
    parser.add_argument("--model", help="model path (default: the embedded model)")
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--disconnect-rate", type=float, default=0.10)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--max-concurrent", type=int, default=4)
    parser.add_argument("--warmup", type=float, help="seconds before the first RSS window (default min(60, 20%% of the run))")
    parser.add_argument("--rss-tolerance", type=float, default=0.05)
    args = parser.parse_args()

    port = free_port()
    command = [args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--max-concurrent", str(args.max_concurrent),
               "--max-queue", str(args.clients * 2)]
    if args.model:
        command += ["--model", args.model]
    env = {k: v for k, v in os.environ.items() if k not in ("KUJIRA_MODEL", "KUJIRA_API_KEY")}
    log = open(f"/tmp/kujira-soak-{port}.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    failures = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(port, "/health", timeout=2)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"soak: the server did not become healthy (log: {log.name})")
                return 1
            time.sleep(0.25)

        stats, health, rss_samples = Stats(), [], []
        started = time.monotonic()
        stop_at = started + args.duration
        stop_event = threading.Event()
        watcher = threading.Thread(target=monitor, args=(port, server.pid, stop_event, health, rss_samples, started))
        watcher.start()
        clients = [threading.Thread(target=client, args=(i, port, stop_at, args, stats)) for i in range(args.clients)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
        elapsed = time.monotonic() - started
        stop_event.set()
        watcher.join()
        # Slots and queue must drain once the clients are gone (a hung-up request leaves within a round), and every
        # connection but this /metrics request must be closed.
        active = queue = connections = None
        for _ in range(30):
            text = get(port, "/metrics")[1]
            active, queue = gauge(text, "kujira_active_sequences"), gauge(text, "kujira_queue_depth")
            connections = gauge(text, "kujira_open_connections")
            if active == 0 and queue == 0 and connections is not None and connections <= 1:
                break
            time.sleep(0.5)
        server_alive = server.poll() is None

        warmup = args.warmup if args.warmup is not None else min(60.0, 0.2 * args.duration)
        window = min(60.0, (args.duration - warmup) / 3)
        first = [kib for t, kib in rss_samples if warmup <= t < warmup + window]
        last = [kib for t, kib in rss_samples if args.duration - window <= t <= args.duration]
        rss_first = statistics.median(first) if first else None
        rss_last = statistics.median(last) if last else None
        rss_max = max((kib for _, kib in rss_samples), default=None)
        growth = (rss_last - rss_first) / rss_first if rss_first and rss_last else None
        five_xx = sum(n for code, n in stats.status.items() if code >= 500)
        health_failures = sum(1 for _, ok in health if not ok)

        server.send_signal(signal.SIGTERM)
        try:
            exit_code = server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            exit_code = None

        if five_xx:
            failures.append(f"{five_xx} responses were 5xx")
        if stats.transport_errors:
            failures.append(f"{stats.transport_errors} transport errors")
        if stats.stream_errors:
            failures.append(f"{stats.stream_errors} streams ended without [DONE] or with an error event")
        if health_failures or not health:
            failures.append(f"/health failed {health_failures} of {len(health)} polls")
        if active != 0 or queue != 0:
            failures.append(f"slots not freed: kujira_active_sequences {active}, kujira_queue_depth {queue}")
        if connections is None or connections > 1:
            failures.append(f"connections left open: kujira_open_connections {connections} (1 = this request)")
        if growth is None:
            failures.append("not enough RSS samples to compare")
        elif growth > args.rss_tolerance:
            failures.append(f"RSS grew {growth * 100:.1f}% (limit {args.rss_tolerance * 100:.0f}%)")
        if not server_alive:
            failures.append("the server died during the run")
        if exit_code != 0:
            failures.append(f"SIGTERM: exit status {exit_code}")

        mib = lambda kib: f"{kib / 1024:.1f} MiB" if kib else "n/a"
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(stats.status.items()))
        print(f"soak-server: {args.clients} clients, {elapsed:.0f} s, max-concurrent {args.max_concurrent}, "
              f"max_tokens {args.max_tokens}, disconnect rate {args.disconnect_rate:.0%}")
        print(f"  requests {stats.requests} ({stats.requests / elapsed:.1f}/s): completed {stats.completed}, "
              f"disconnected mid-stream {stats.disconnects}; statuses {{{statuses}}}")
        print(f"  tokens {stats.tokens} ({stats.tokens / elapsed:.0f}/s); 5xx {five_xx}; stream errors "
              f"{stats.stream_errors}; transport errors {stats.transport_errors}")
        print(f"  /health: {len(health) - health_failures}/{len(health)} ok, {health_failures} failures")
        print(f"  RSS: first window (after {warmup:.0f} s warm-up, {window:.0f} s) median {mib(rss_first)}, last window "
              f"median {mib(rss_last)}, max {mib(rss_max)}, change "
              + (f"{growth * 100:+.2f}%" if growth is not None else "n/a"))
        minutes = {}
        for t, kib in rss_samples:
            minutes.setdefault(int(t // 60), []).append(kib)
        print("  RSS median per minute (MiB): " + " ".join(f"{statistics.median(v) / 1024:.1f}" for _, v in sorted(minutes.items())))
        print(f"  at the end: kujira_active_sequences {active}, kujira_queue_depth {queue}, kujira_open_connections "
              f"{connections}; SIGTERM exit status {exit_code}")
        for example in stats.examples:
            print(f"  e.g. {example}")
        if failures:
            print("soak-server: FAIL: " + "; ".join(failures) + f" (server log: {log.name})")
            return 1
        print("soak-server: PASS")
        return 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()


if __name__ == "__main__":
    sys.exit(main())
