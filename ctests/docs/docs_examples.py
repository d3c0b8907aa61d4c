#!/usr/bin/env python3
"""Compile and run the C and C++ code blocks of README.md and docs/*.md, so
that the examples cannot rot (CTest tests docs_example:<file>:<line>).

    docs_examples.py list <source-dir>
    docs_examples.py run <source-dir> <file>:<line> --work DIR --include DIR
                     --libdir DIR [--cc CC] [--cxx CXX] [--python-include DIR]

A block is a fenced ```c or ```cpp block. An HTML comment on the line just
before its fence says what it is (unmarked blocks are `unit`):

    <!-- example: KIND [python] [compile-only]
    hidden code put before the block
    === after
    hidden code put after the block
    -->

KIND is
  program  a complete program with main(): compiled, linked and run (exit 0);
  unit     file-scope code: the hidden code and the block are compiled and
           linked; an empty main() is added when there is none; it runs;
  body     statements: put inside main() (after the hidden "before" code);
  skip     not compiled; the rest of the first line says why (reported as a
           skipped test, never silently).
`python` adds CPython's include directory (blocks using ft_weave_python.h),
and implies compile-only: such blocks are compiled (-c), not linked or run.
`compile-only` compiles without linking or running.

C blocks get <ft_weave.h> and the usual C headers included first; C++ blocks
<ft_weave.hpp> and the standard headers they use. Warnings are errors
(-Wall -Wextra, except unused functions and parameters, which fragments
have by nature).
"""
import argparse
import os
import re
import subprocess
import sys

SKIP = 77  # CTest SKIP_RETURN_CODE
FENCE = re.compile(r"^```(c|cpp)\s*$")
MARK = re.compile(r"^<!--\s*example:\s*(program|unit|body|skip)\b(.*)$")

C_PRELUDE = """#define _GNU_SOURCE
#include <ft_weave.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
"""
CXX_PRELUDE = """#include <ft_weave.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <vector>
"""


def documents(root):
    docs = os.path.join(root, "docs")
    names = ["README.md"] + (sorted(
        os.path.join("docs", n) for n in os.listdir(docs) if n.endswith(".md")) if os.path.isdir(docs) else [])
    return [n for n in names if os.path.isfile(os.path.join(root, n))]


def blocks(root, name):
    """Yields dicts: line, lang, kind, options, reason, before, after, code."""
    with open(os.path.join(root, name), encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    mark = None  # (kind, options, reason, before, after) of the comment just read
    while i < len(lines):
        line = lines[i]
        m = MARK.match(line)
        if m:
            kind, rest = m.group(1), m.group(2)
            closed = rest.rstrip().endswith("-->")
            if closed:
                rest = rest.rstrip()[:-3]
            words = rest.split()
            reason = rest.strip() if kind == "skip" else ""
            options = set() if kind == "skip" else set(words)
            hidden = {"before": [], "after": []}
            part = "before"
            i += 1  # the line after the comment's first line
            if not closed:
                while i < len(lines) and lines[i].strip() != "-->":
                    if lines[i].strip() == "=== after":
                        part = "after"
                    else:
                        hidden[part].append(lines[i])
                    i += 1
                i += 1  # past "-->"
            mark = (kind, options, reason, hidden["before"], hidden["after"])
            continue
        f = FENCE.match(line)
        if f:
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            kind, options, reason, before, after = mark or ("unit", set(), "", [], [])
            yield {"line": start, "lang": f.group(1), "kind": kind, "options": options, "reason": reason,
                   "before": "\n".join(before), "after": "\n".join(after), "code": "\n".join(lines[start:j])}
            mark = None
            i = j + 1
            continue
        if line.strip():
            mark = None  # a comment applies only to the fence right after it
        i += 1


def source_of(block):
    prelude = C_PRELUDE if block["lang"] == "c" else CXX_PRELUDE
    if "python" in block["options"]:
        # Python.h first, as CPython asks (it defines _GNU_SOURCE itself).
        prelude = "#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n" + prelude.replace("#define _GNU_SOURCE\n", "")
    if block["kind"] == "body":
        text = "%s\n%s\nint main(void) {\n%s\nreturn 0;\n}\n%s\n" % (
            prelude, "", block["before"] + "\n" + block["code"], block["after"])
    else:
        text = "%s\n%s\n#line %d\n%s\n%s\n" % (prelude, block["before"], block["line"], block["code"], block["after"])
        if not re.search(r"\bmain\s*\(", block["code"] + block["after"] + block["before"]):
            text += "int main(void) { return 0; }\n"
    return text


def run(args):
    name, _, line = args.id.rpartition(":")
    found = [b for b in blocks(args.source, name) if str(b["line"]) == line]
    if not found:
        print("no ```c/```cpp block starts at %s (re-run cmake after editing the docs)" % args.id)
        return 1
    block = found[0]
    if block["kind"] == "skip":
        print("SKIP %s: %s" % (args.id, block["reason"] or "(no reason given)"))
        return SKIP
    os.makedirs(args.work, exist_ok=True)
    stem = os.path.join(args.work, re.sub(r"[^A-Za-z0-9]+", "_", args.id))
    src = stem + (".c" if block["lang"] == "c" else ".cpp")
    with open(src, "w") as f:
        f.write(source_of(block))
    if block["lang"] == "c":
        cmd = [args.cc, "-std=c11"]
    else:
        cmd = [args.cxx, "-std=c++17"]
    cmd += ["-Wall", "-Wextra", "-Werror", "-Wno-unused-function", "-Wno-unused-parameter",
            "-Wno-unused-variable", "-I", args.include]
    compile_only = "compile-only" in block["options"] or "python" in block["options"]
    if "python" in block["options"]:
        if not args.python_include:
            print("SKIP %s: no CPython headers configured" % args.id)
            return SKIP
        cmd += ["-I", args.python_include]
    if compile_only:
        cmd += ["-c", src, "-o", stem + ".o"]
    else:
        cmd += [src, "-o", stem, "-L", args.libdir, "-lft_weave", "-pthread", "-Wl,-rpath," + args.libdir]
    print("$ " + " ".join(cmd), flush=True)
    if subprocess.call(cmd) != 0:
        print("%s: the example does not compile (source: %s)" % (args.id, src))
        return 1
    if compile_only:
        return 0
    try:
        rc = subprocess.call([stem], timeout=60)
    except subprocess.TimeoutExpired:
        print("%s: the example did not finish within 60 s" % args.id)
        return 1
    if rc != 0:
        print("%s: the example exited with %d" % (args.id, rc))
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["list", "run"])
    parser.add_argument("source")
    parser.add_argument("id", nargs="?")
    parser.add_argument("--work")
    parser.add_argument("--include")
    parser.add_argument("--libdir")
    parser.add_argument("--cc", default="cc")
    parser.add_argument("--cxx", default="c++")
    parser.add_argument("--python-include", default="")
    args = parser.parse_args()
    if args.mode == "list":
        for name in documents(args.source):
            for b in blocks(args.source, name):
                print("%s:%d" % (name, b["line"]))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
