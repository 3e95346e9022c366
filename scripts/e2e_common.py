"""What the end-to-end scripts share (scripts/e2e_openai.py, scripts/e2e_structured.py): the arguments (--base, --key),
the openai clients, and `check`, which runs a test function at once and prints PASS/FAIL."""
import argparse, sys, traceback
from openai import OpenAI

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--key", required=True)
args = parser.parse_args()

client = OpenAI(base_url=args.base + "/v1", api_key=args.key, max_retries=0, timeout=300)
deepseek = OpenAI(base_url=args.base, api_key=args.key, max_retries=0, timeout=300)  # DeepSeek's base_url has no /v1
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append(True)
            print(f"PASS {name}")
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            results.append(False)
            print(f"FAIL {name}: {e!r}")
            traceback.print_exc(limit=2)
        return fn
    return wrap


def finish(label):
    """Prints '<label>: N passed, N failed' and exits 1 on any failure."""
    passed = sum(results)
    failed = len(results) - passed
    print(f"{label}: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
