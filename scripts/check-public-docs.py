#!/usr/bin/env python3
"""Every public declaration of the given Swift source directories carries a doc comment (`///` on the line above,
past attributes). Prints each undocumented one as FILE:LINE: declaration, and exits 1 if there is any."""
import pathlib
import re
import sys

DECLARATION = re.compile(r"^\s*(@[\w()\".: ,]+\s+)*(public|open)\s+(?!import\b)")


def undocumented(path: pathlib.Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not DECLARATION.match(line):
            continue
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("@"):
            j -= 1
        if j < 0 or not lines[j].strip().startswith("///"):
            yield i + 1, line.strip()


def main() -> int:
    roots = [pathlib.Path(a) for a in sys.argv[1:]] or [pathlib.Path("Sources/Kujira")]
    missing = [(p, n, text) for root in roots for p in sorted(root.rglob("*.swift")) for n, text in undocumented(p)]
    for p, n, text in missing:
        print(f"{p}:{n}: undocumented: {text}")
    print(f"public declarations without a doc comment: {len(missing)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
