"""CTest driver of examples/python_extension: builds the `ledger` extension
with its setup.py (offline, `build_ext` into a temporary directory, never
into the source tree) with the interpreter running this script, then runs

    test   its unittest suite (test_ledger.py)
    bench  bench.py --quick (a smoke test of the benchmark)

    python run_example_extension.py {test|bench} EXAMPLE_DIR PACKAGE_DIR WORK_DIR [--require]

PACKAGE_DIR is the checkout's python/ (ft_weave.setup_helpers comes from
there and uses the checkout's include/ and the built library named by
FT_WEAVE_LIBRARY). Without setuptools the test prints "SKIP:" and passes
(CTest reports it skipped), unless --require (free-threaded interpreters:
there the example must build). Fails if the build wrote into EXAMPLE_DIR.
"""

import os
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 240


def listing(root):
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def run(cmd, cwd, env):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=TIMEOUT).returncode


def main():
    args = [a for a in sys.argv[1:] if a != "--require"]
    require = "--require" in sys.argv[1:]
    if len(args) != 4 or args[0] not in ("test", "bench"):
        sys.exit(__doc__)
    mode, example_dir, package_dir, work_dir = args
    example_dir = os.path.abspath(example_dir)
    print("python: %s %s" % (sys.executable, sys.version.split()[0]), flush=True)
    try:
        import setuptools  # noqa: F401  (what setup.py needs; no index, no wheel)
    except ImportError as e:
        if require:
            sys.exit("FAIL: %s has no setuptools (%s); the example must build here" % (sys.executable, e))
        print("SKIP: %s has no setuptools (%s): the example cannot be built with it" % (sys.executable, e))
        return 0

    os.makedirs(work_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="ledger-%s-" % mode, dir=work_dir)
    try:
        env = dict(os.environ)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = package_dir
        before = listing(example_dir)
        lib = os.path.join(tmp, "lib")
        rc = run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", lib,
                  "--build-temp", os.path.join(tmp, "obj")], example_dir, env)
        if rc != 0:
            sys.exit("FAIL: setup.py build_ext exited with %d" % rc)
        added = sorted(listing(example_dir) - before)
        if added:
            sys.exit("FAIL: the build wrote into the source tree: %s" % added)

        # Only the built module and the example's sources on the path: the
        # tests import `ledger`, not ft_weave (the extension finds
        # libft_weave.so.1 through its run path).
        env["PYTHONPATH"] = os.pathsep.join([lib, example_dir])
        if mode == "test":
            rc = run([sys.executable, "-m", "unittest", "-v", "test_ledger"], tmp, env)
        else:
            rc = run([sys.executable, os.path.join(example_dir, "bench.py"), "--quick"], tmp, env)
        if rc != 0:
            sys.exit("FAIL: %s exited with %d" % (mode, rc))
        added = sorted(listing(example_dir) - before)
        if added:
            sys.exit("FAIL: the %s run wrote into the source tree: %s" % (mode, added))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
