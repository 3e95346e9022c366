"""PASS/FAIL bookkeeping for the end-to-end scripts (e2e_openai.py, e2e_structured.py, web_chat_check.py): `check` runs a
test function at once and prints PASS or FAIL with the error; `finish` prints '<label>: N passed, N failed' and exits."""
import sys, traceback

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
