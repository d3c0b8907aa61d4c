"""CTest driver for the wheel built from python/ (run by the interpreter under
test, which must have pip and setuptools; the wheel may be built by another,
BUILDER, because a py3-none wheel serves every Python 3).

    wheel_test.py install  --work DIR --checkout ROOT --library LIB --builder PY
    wheel_test.py one-copy --work DIR --library LIB
    wheel_test.py duplicate --work DIR
    wheel_test.py cmake    --work DIR --generator GEN

install: copies python/, include/ and Directory.Build.props of the checkout
  ROOT into DIR/checkout (concurrent builds for several interpreters must not
  share python/build), then with BUILDER, offline:
  - no library anywhere: the build fails and names what it searched;
  - FT_WEAVE_LIBRARY unset: the newest of build/default/lib, build/test/lib;
  - FT_WEAVE_LIBRARY=LIB: that one, even when a build tree is newer;
  checks the wheel's name, listing and files, that nothing but build/ and
  ft_weave.egg-info/ (both ignored by git) appeared in python/, installs the
  wheel into DIR/target and imports it with FT_WEAVE_LIBRARY unset
  (check_package.py --library bundled).
one-copy: builds two extension modules (wheel_ext.c under two names, each in
  its own setuptools run) with ft_weave.setup_helpers.WeaveExtension against
  DIR/target, then in one interpreter both modules and the ctypes package
  share one weave_static_get() value, whatever the order of the imports and
  even when FT_WEAVE_LIBRARY names another copy (LIB).
duplicate: a second copy of the library loaded from another file is
  DuplicateLibraryWarning (error mode: DuplicateLibraryError), after the
  package loaded its own and at load time; a link to the same file is not.
cmake: find_package(ft_weave) with ft_weave_DIR=$(python -m ft_weave
  --cmakedir) builds and runs a program that loads the wheel's library; a
  request for another major version is refused.
"""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SONAME = "libft_weave.so.1"


def fail(message):
    sys.exit("FAIL: " + message)


def clean_env(**changes):
    """The environment for a child: no inherited Python search path or home,
    no FT_WEAVE_LIBRARY unless given; `changes` (None removes)."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "FT_WEAVE_LIBRARY", "FT_WEAVE_DUPLICATE"):
        env.pop(key, None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run(cmd, env, cwd=None, expect_fail=False, timeout=240):
    shown = ["<script>" if "\n" in arg else arg for arg in cmd]
    print("$ " + " ".join(shown), flush=True)
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    if expect_fail:
        if proc.returncode == 0:
            fail("expected a failure:\n" + output)
    elif proc.returncode != 0:
        fail("exit status %d:\n%s" % (proc.returncode, output))
    else:
        print(textwrap.indent(output.strip()[-3000:], "  "), flush=True)
    return output


# --- install -------------------------------------------------------------------


def copy_checkout(root, dest):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", "libft_weave.so*")
    shutil.copytree(os.path.join(root, "python"), os.path.join(dest, "python"), ignore=ignore)
    shutil.copytree(os.path.join(root, "include"), os.path.join(dest, "include"))
    shutil.copy(os.path.join(root, "Directory.Build.props"), dest)


def listing(path):
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), path))
    return sorted(out)


def build_wheel(builder, source, dist, env):
    shutil.rmtree(dist, ignore_errors=True)
    output = run([builder, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", dist, source], env)
    wheels = [name for name in os.listdir(dist) if name.endswith(".whl")]
    if len(wheels) != 1:
        fail("expected one wheel in %s, found %s" % (dist, wheels))
    return os.path.join(dist, wheels[0]), output


def wheel_library(wheel):
    with zipfile.ZipFile(wheel) as z:
        return z.read("ft_weave/lib/" + SONAME)


def builder_env(builder, **changes):
    return clean_env(**changes)


def cmd_install(args):
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    checkout = os.path.join(work, "checkout")
    copy_checkout(args.checkout, checkout)
    source = os.path.join(checkout, "python")
    before = listing(source)
    library = os.path.realpath(args.library)
    with open(library, "rb") as f:
        library_bytes = f.read()
    dist = os.path.join(work, "dist")

    # 1. No library: no wheel, and the message names the places searched.
    output = run(
        [args.builder, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", dist, source],
        builder_env(args.builder),
        expect_fail=True,
    )
    for text in ("no %s to bundle in the wheel" % SONAME, "FT_WEAVE_LIBRARY (not set)",
                 os.path.join(checkout, "build", "default", "lib", SONAME),
                 os.path.join(checkout, "build", "test", "lib", SONAME)):
        if text not in output:
            fail("the failed build does not say %r:\n%s" % (text, output))
    print("no library: the build failed and named the places searched", flush=True)

    # 2. The checkout's build trees: the newest wins. build/default gets an
    # older file that differs from the library (same ELF, one byte more).
    for preset in ("default", "test"):
        os.makedirs(os.path.join(checkout, "build", preset, "lib"))
    decoy = os.path.join(checkout, "build", "default", "lib", SONAME)
    with open(decoy, "wb") as f:
        f.write(library_bytes + b"\0")
    newest = os.path.join(checkout, "build", "test", "lib", SONAME)
    shutil.copyfile(library, newest)
    now = time.time()
    os.utime(decoy, (now - 3600, now - 3600))
    wheel, _ = build_wheel(args.builder, source, dist, builder_env(args.builder))
    if wheel_library(wheel) != library_bytes:
        fail("without FT_WEAVE_LIBRARY the wheel did not bundle the newest build tree's library")
    print("FT_WEAVE_LIBRARY unset: bundled the newest build tree's library", flush=True)

    # 3. FT_WEAVE_LIBRARY wins over a newer build tree.
    os.utime(decoy, (now + 60, now + 60))
    wheel, _ = build_wheel(args.builder, source, dist, builder_env(args.builder, FT_WEAVE_LIBRARY=library))
    if wheel_library(wheel) != library_bytes:
        fail("FT_WEAVE_LIBRARY=%s was not the library bundled" % library)
    print("FT_WEAVE_LIBRARY=%s: bundled" % library, flush=True)

    # The wheel: name, tag, listing, files.
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    expected_name = "ft_weave-%s-py3-none-%s.whl" % (package_version(source), platform)
    if os.path.basename(wheel) != expected_name:
        fail("wheel %s, expected %s" % (os.path.basename(wheel), expected_name))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        print("wheel listing:\n" + "\n".join("  %10d  %s" % (i.file_size, i.filename) for i in z.infolist()), flush=True)
        required = [
            "ft_weave/__init__.py", "ft_weave/__main__.py", "ft_weave/_native.py", "ft_weave/_paths.py",
            "ft_weave/setup_helpers.py", "ft_weave/lib/" + SONAME, "ft_weave/include/ft_weave.h",
            "ft_weave/include/ft_weave_python.h", "ft_weave/cmake/ft_weaveConfig.cmake",
            "ft_weave/cmake/ft_weaveConfigVersion.cmake",
        ]
        missing = [name for name in required if name not in names]
        if missing:
            fail("the wheel lacks %s" % missing)
        libraries = [name for name in names if "libft_weave" in name or name.endswith(".so")]
        if libraries != ["ft_weave/lib/" + SONAME]:
            fail("the wheel must hold exactly one library, ft_weave/lib/%s: %s" % (SONAME, libraries))
        if any(".data/" in name for name in names):
            fail("files outside the wheel's root: %s" % [n for n in names if ".data/" in n])
        meta = z.read("ft_weave-%s.dist-info/WHEEL" % package_version(source)).decode()
        if "Root-Is-Purelib: false" not in meta or "Tag: py3-none-%s" % platform not in meta:
            fail("WHEEL metadata:\n" + meta)
        mode = z.getinfo("ft_weave/lib/" + SONAME).external_attr >> 16
        if not mode & 0o111:
            fail("the library is not executable in the wheel (mode %o)" % mode)
        for header in ("ft_weave.h", "ft_weave.hpp", "ft_weave_python.h"):
            with open(os.path.join(args.checkout, "include", header), "rb") as f:
                if z.read("ft_weave/include/" + header) != f.read():
                    fail("ft_weave/include/%s differs from the checkout's" % header)
        config = z.read("ft_weave/cmake/ft_weaveConfig.cmake").decode()
        if "@" in config or "lib/libft_weave.so.1" not in config or "ft_weave::ft_weave" not in config:
            fail("ft_weaveConfig.cmake:\n" + config)

    # Nothing but build/ and ft_weave.egg-info/ appeared in python/ (both
    # ignored by git), and nothing in the package's own directory.
    added = sorted(set(listing(source)) - set(before))
    stray = [p for p in added if not (p == "build" or p.startswith("build" + os.sep)
                                      or p.split(os.sep)[0].endswith(".egg-info"))]
    if stray:
        fail("the build wrote into the source tree: %s" % stray)
    with open(os.path.join(args.checkout, ".gitignore")) as f:
        ignored = f.read().split()
    for pattern in ("/python/build/", "/python/*.egg-info/"):
        if pattern not in ignored:
            fail(".gitignore lacks %s" % pattern)

    # Install it (pip of the interpreter under test) and import it.
    target = os.path.join(work, "target")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target, wheel], clean_env())
    run(
        [sys.executable, os.path.join(HERE, "check_package.py"), "--package-dir", os.path.join(target, "ft_weave"),
         "--library", "bundled"],
        clean_env(PYTHONPATH=target),
        cwd=work,
    )


def package_version(source):
    with open(os.path.join(source, "pyproject.toml")) as f:
        for line in f:
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    fail("no version in pyproject.toml")


def installed(work):
    target = os.path.join(os.path.abspath(work), "target")
    if not os.path.isfile(os.path.join(target, "ft_weave", "lib", SONAME)):
        fail("no installed wheel in %s (python_pip_install sets it up)" % target)
    return target


# --- one-copy ------------------------------------------------------------------


SETUP_PY = """
from setuptools import setup
from ft_weave.setup_helpers import WeaveExtension

setup(
    name="{name}",
    version="0",
    ext_modules=[WeaveExtension("{name}", ["wheel_ext.c"], define_macros=[("FTW_EXT_NAME", "{name}")])],
)
"""

ONE_COPY = """
import ctypes, os, sys, warnings
warnings.simplefilter("error")              # no DuplicateLibraryWarning, no GIL re-enabled
order = sys.argv[1]
bundled = os.path.realpath(sys.argv[2])
key = b"ft_weave.test:wheel_one_copy"

def mapped():
    with open("/proc/self/maps") as f:
        return sorted({line.split(None, 5)[5].strip() for line in f
                       if len(line.split(None, 5)) == 6 and "libft_weave" in line})

def load_ft_weave():
    import ft_weave
    try:
        ft_weave.Mutex()                     # loads the library
    except RuntimeWarning as w:
        # FT_WEAVE_LIBRARY names another file than the copy already loaded.
        assert "FT_WEAVE_LIBRARY" in os.environ and "is not loaded" in str(w), w
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ft_weave.Mutex()
        print("warned:", w)
    return ft_weave

if order == "extensions-first":
    import ftw_ext_a, ftw_ext_b
    before = mapped()
    assert before == [bundled], before      # the extensions loaded the wheel's copy
    ft_weave = load_ft_weave()
    expected = bundled
else:
    ft_weave = load_ft_weave()
    expected = os.path.realpath(ft_weave.library_path())
    import ftw_ext_a, ftw_ext_b             # DT_NEEDED matches the loaded soname

from ft_weave import _native
lib = _native.lib()
lib.weave_static_get.restype = ctypes.c_void_p
lib.weave_static_get.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
address = lib.weave_static_get(key, 8, None, None)
assert address, _native.last_error()
value = ctypes.c_uint64.from_address(address)

a, b = ftw_ext_a.static_address(), ftw_ext_b.static_address()
print("weave_static_get: ctypes %#x, ftw_ext_a %#x, ftw_ext_b %#x" % (address, a, b))
assert a == b == address, (a, b, address)
ftw_ext_a.static_set(0x5eed0001)
assert ftw_ext_b.static_value() == value.value == 0x5eed0001, (ftw_ext_b.static_value(), value.value)
value.value = 0x5eed0002
assert ftw_ext_a.static_value() == ftw_ext_b.static_value() == 0x5eed0002

paths = [os.path.realpath(p) for p in (ftw_ext_a.library_path(), ftw_ext_b.library_path(), ft_weave.library_path())]
print("library: ftw_ext_a %s, ftw_ext_b %s, ft_weave.library_path() %s" % tuple(paths))
assert paths == [expected] * 3, paths
assert ft_weave.check_library_copies() == [ft_weave.library_path()]
assert mapped() == [expected], mapped()
print("%s: one copy, %s" % (order, expected))
"""


def cmd_one_copy(args):
    target = installed(args.work)
    ext_root = os.path.join(os.path.abspath(args.work), "extensions")
    shutil.rmtree(ext_root, ignore_errors=True)
    dirs = []
    for name in ("ftw_ext_a", "ftw_ext_b"):
        d = os.path.join(ext_root, name)
        os.makedirs(d)
        shutil.copy(os.path.join(HERE, "wheel_ext.c"), d)
        with open(os.path.join(d, "setup.py"), "w") as f:
            f.write(SETUP_PY.format(name=name))
        run([sys.executable, "setup.py", "build_ext", "--inplace"], clean_env(PYTHONPATH=target), cwd=d)
        dirs.append(d)
    bundled = os.path.join(target, "ft_weave", "lib", SONAME)
    path = os.pathsep.join(dirs + [target])
    other = os.path.realpath(args.library)  # another file than the bundled copy
    # Extensions first, ft_weave afterwards: it reuses their copy, also when
    # FT_WEAVE_LIBRARY names another file.
    for env_library in (None, other):
        run([sys.executable, "-c", ONE_COPY, "extensions-first", bundled],
            clean_env(PYTHONPATH=path, FT_WEAVE_LIBRARY=env_library), cwd=ext_root)
    # ft_weave first (loading another copy than the extensions were linked
    # with): the extensions' DT_NEEDED resolves to the copy already loaded.
    out = run([sys.executable, "-c", ONE_COPY, "ft_weave-first", bundled],
              clean_env(PYTHONPATH=path, FT_WEAVE_LIBRARY=other), cwd=ext_root)
    if other not in out:
        fail("ft_weave-first did not use FT_WEAVE_LIBRARY's copy")


# --- duplicate -----------------------------------------------------------------


DUPLICATE = """
import ctypes, os, sys, warnings
import ft_weave
mode, bundled, copy_a, copy_b, link = sys.argv[1:]

def static(lib):
    fn = lib.weave_static_get
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    return fn(b"ft_weave.test:duplicate", 8, None, None)

def expect_duplicate(call, used, other):
    error_mode = os.environ.get("FT_WEAVE_DUPLICATE") == "error"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except ft_weave.DuplicateLibraryError as e:
            assert error_mode, e
            assert isinstance(e, ImportError)
            problem = e
        else:
            assert not error_mode, "no DuplicateLibraryError"
            found = [w for w in caught if issubclass(w.category, ft_weave.DuplicateLibraryWarning)]
            assert len(found) == 1, [str(w.message) for w in caught]
            assert issubclass(ft_weave.DuplicateLibraryWarning, RuntimeWarning)
            assert found[0].filename == "<string>", found[0].filename   # points at the caller
            problem = found[0].message
    text = str(problem)
    assert used in text and other in text, text
    assert [os.path.realpath(p) for p in problem.paths] == [used, other], problem.paths
    print("%s: %s" % (type(problem).__name__, text[:200]))

if mode == "after-load":
    # ft_weave loads its copy; a second file is loaded afterwards.
    ft_weave.Mutex()
    assert os.path.realpath(ft_weave.library_path()) == bundled
    # A link to the file already loaded is the same copy.
    same = ctypes.CDLL(link)
    assert static(same) == static(ft_weave._native.lib())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ft_weave.check_library_copies() == [ft_weave.library_path()]
    second = ctypes.CDLL(copy_a)
    assert static(second) != static(ft_weave._native.lib())   # really two registries
    expect_duplicate(ft_weave.check_library_copies, bundled, copy_a)
elif mode == "at-load":
    # Two other files are loaded before ft_weave: it reuses the first (by
    # soname), and sees the second.
    ctypes.CDLL(copy_a)
    ctypes.CDLL(copy_b)
    expect_duplicate(ft_weave.Mutex, copy_a, copy_b)
    if os.environ.get("FT_WEAVE_DUPLICATE") != "error":
        assert os.path.realpath(ft_weave.library_path()) == copy_a
elif mode == "reuse":
    # One other file loaded first: reused, no warning.
    ctypes.CDLL(copy_a)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ft_weave.Mutex()
        assert ft_weave.check_library_copies() == [copy_a], ft_weave.check_library_copies()
    assert ft_weave.library_path() == copy_a, ft_weave.library_path()
print(mode, "ok")
"""


def cmd_duplicate(args):
    target = installed(args.work)
    work = os.path.join(os.path.abspath(args.work), "duplicate")
    shutil.rmtree(work, ignore_errors=True)
    bundled = os.path.join(target, "ft_weave", "lib", SONAME)
    copies = []
    for name in ("a", "b"):
        os.makedirs(os.path.join(work, name))
        copies.append(os.path.join(work, name, SONAME))
        shutil.copyfile(bundled, copies[-1])
    link = os.path.join(work, "link-to-bundled.so")
    os.symlink(bundled, link)
    runs = [("after-load", None), ("after-load", "error"), ("at-load", None), ("at-load", "error"), ("reuse", None)]
    for mode, setting in runs:
        run([sys.executable, "-c", DUPLICATE, mode, os.path.realpath(bundled), copies[0], copies[1], link],
            clean_env(PYTHONPATH=target, FT_WEAVE_DUPLICATE=setting), cwd=work)


# --- cmake ---------------------------------------------------------------------


def cmd_cmake(args):
    target = installed(args.work)
    work = os.path.join(os.path.abspath(args.work), "cmake")
    shutil.rmtree(work, ignore_errors=True)
    env = clean_env(PYTHONPATH=target)
    cmakedir = run([sys.executable, "-m", "ft_weave", "--cmakedir"], env).strip().splitlines()[-1]
    if os.path.realpath(cmakedir) != os.path.join(target, "ft_weave", "cmake"):
        fail("python -m ft_weave --cmakedir printed %s" % cmakedir)
    cmake = args.cmake
    source = os.path.join(HERE, "wheel_cmake")
    build = os.path.join(work, "build")
    run([cmake, "-S", source, "-B", build, "-G", args.generator, "-DCMAKE_BUILD_TYPE=Release", "-Dft_weave_DIR=" + cmakedir], env)
    run([cmake, "--build", build], env)
    out = run([os.path.join(build, "consumer")], env)
    library = [line.split("=", 1)[1] for line in out.splitlines() if line.startswith("library=")]
    bundled = os.path.join(target, "ft_weave", "lib", SONAME)
    if [os.path.realpath(p) for p in library] != [bundled]:
        fail("the consumer loaded %s, expected the wheel's %s" % (library, bundled))
    # Another major version is refused by the version file.
    out = run([cmake, "-S", source, "-B", os.path.join(work, "build-v99"), "-G", args.generator,
               "-DFTW_REQUIRE_VERSION=99", "-Dft_weave_DIR=" + cmakedir], env, expect_fail=True)
    if "requested version" not in out:
        fail("find_package(ft_weave 99) failed for another reason:\n" + out)
    print("find_package(ft_weave 99) refused: ok", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["install", "one-copy", "duplicate", "cmake"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--checkout")
    parser.add_argument("--library")
    parser.add_argument("--builder")
    parser.add_argument("--generator", default="Ninja")
    parser.add_argument("--cmake", default="cmake")
    args = parser.parse_args()
    print("interpreter: %s (%s)" % (sys.executable, sys.version.split()[0]), flush=True)
    {"install": cmd_install, "one-copy": cmd_one_copy, "duplicate": cmd_duplicate, "cmake": cmd_cmake}[args.command](args)
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
