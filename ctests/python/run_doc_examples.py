"""Runs every ```python block of the given Markdown files, each in a fresh
interpreter (this one), so that the documentation's examples cannot rot.

    run_doc_examples.py --cwd DIR FILE.md...

A block runs with DIR as its working directory (where the examples' helper
library, libmyhelper.so, is built), and fails on a non-zero exit (an
exception, a failed assert) or after 60 s. A block whose first line is

    # docs-example: skip (reason)

is not run, and is listed as skipped with its reason: for fragments (a
setup.py that needs an extension's sources). Exit status 1 if any block
failed, or if a file has no block and was named explicitly.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

SKIP = re.compile(r"^#\s*docs-example:\s*skip\b\s*(.*)$")


def blocks(path):
    """[(line number, code)] of the ```python blocks in `path`."""
    found = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        if re.match(r"^```python\s*$", lines[i]):
            start = i + 1
            j = start
            while j < len(lines) and not re.match(r"^```\s*$", lines[j]):
                j += 1
            found.append((start + 1, "\n".join(lines[start:j]) + "\n"))
            i = j + 1
        else:
            i += 1
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cwd", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    ran = failed = skipped = 0
    for path in args.files:
        name = os.path.relpath(path)
        for line, code in blocks(path):
            where = "%s:%d" % (name, line)
            first = code.lstrip().splitlines()[0] if code.strip() else ""
            skip = SKIP.match(first)
            if skip:
                skipped += 1
                print("SKIPPED %s: %s" % (where, skip.group(1) or "(no reason given)"))
                continue
            with tempfile.NamedTemporaryFile("w", suffix="_%s_%d.py" % (os.path.basename(path), line),
                                             delete=False) as f:
                f.write(code)
                script = f.name
            try:
                done = subprocess.run([sys.executable, script], cwd=args.cwd, capture_output=True,
                                      text=True, timeout=60)
                ok = done.returncode == 0
                output = done.stdout + done.stderr
            except subprocess.TimeoutExpired as e:
                ok = False
                output = "timed out after 60 s\n%s" % (e.stdout or "")
            finally:
                os.unlink(script)
            ran += 1
            if ok:
                print("ok      %s" % where)
            else:
                failed += 1
                print("FAILED  %s\n%s" % (where, output))
    print("%d blocks ran, %d failed, %d skipped" % (ran, failed, skipped))
    if ran == 0:
        print("no example ran: the files have no ```python block")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
