"""Builds the ft_weave wheel: the ctypes package plus the library it binds,
for building extensions against (see README.md and docs/python.md):

    ft_weave/lib/libft_weave.so.1
    ft_weave/include/ft_weave.h, ft_weave.hpp, ft_weave_python.h
    ft_weave/cmake/ft_weaveConfig.cmake, ft_weaveConfigVersion.cmake

Build the library with CMake first, then, offline, with the machine's own
setuptools (>= 61; below 70.1 also the `wheel` package):

    pip install --no-build-isolation python/

The library comes from FT_WEAVE_LIBRARY (its path) or else the newest of the
checkout's build trees (build/default/lib, build/test/lib); the headers from
the checkout's include/. Without a library the build stops and names what it
searched: a wheel without the library would install, import, and then fail
on first use.

The wheel is tagged py3-none-<platform>: the library does not use Python's
ABI (it finds CPython at run time), so one wheel serves every Python 3.
Everything setuptools writes goes to build/ and ft_weave.egg-info/ here
(ignored by git); nothing is written into ft_weave/.
"""

import os
import re
import shutil
import types

from setuptools import setup
from setuptools.dist import Distribution
from setuptools.command.build_py import build_py as _build_py

try:
    from setuptools.errors import SetupError
except ImportError:  # setuptools < 59
    from distutils.errors import DistutilsSetupError as SetupError

try:  # setuptools >= 70.1
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:
    try:
        from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
    except ImportError:
        _bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
HEADERS = ("ft_weave.h", "ft_weave.hpp", "ft_weave_python.h")


def _native():
    """ft_weave/_native.py (standard library only), without importing the
    package or writing its bytecode into the source tree: its SONAME,
    ABI_VERSION and ELF soname reader."""
    path = os.path.join(HERE, "ft_weave", "_native.py")
    module = types.ModuleType("_ft_weave_native_for_build")
    module.__file__ = path
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), module.__dict__)
    return module


def _checkout_root():
    """The source checkout's root when this is <root>/python, else None."""
    root = os.path.dirname(HERE)
    if os.path.basename(HERE) == "python" and os.path.isfile(os.path.join(root, "include", "ft_weave.h")):
        return root
    return None


def find_library(native, environ=os.environ):
    """The library file to bundle (symbolic links resolved). Raises SetupError
    naming every place searched when there is none."""
    soname = native.SONAME
    root = _checkout_root()
    explicit = environ.get("FT_WEAVE_LIBRARY", "")
    if explicit:
        path = os.path.join(explicit, soname) if os.path.isdir(explicit) else explicit
        if not os.path.isfile(path):
            raise SetupError("ft_weave: FT_WEAVE_LIBRARY=%s: no such file (the library to bundle in the wheel)" % explicit)
        searched = ["FT_WEAVE_LIBRARY=%s" % explicit]
        found = [os.path.realpath(path)]
    else:
        searched = ["FT_WEAVE_LIBRARY (not set)"]
        found = []
        if root is None:
            searched.append("no source checkout around %s (the build trees are looked for in <checkout>/build/{default,test}/lib)" % HERE)
        for preset in ("default", "test"):
            if root is None:
                break
            path = os.path.join(root, "build", preset, "lib", soname)
            searched.append(path)
            if os.path.isfile(path):
                found.append(os.path.realpath(path))
    if not found:
        raise SetupError(
            "ft_weave: no %s to bundle in the wheel. Searched:\n  - %s\n"
            "Build it first (cmake --preset default && cmake --build build/default), "
            "or set FT_WEAVE_LIBRARY to its path." % (soname, "\n  - ".join(searched))
        )
    library = max(found, key=lambda p: os.stat(p).st_mtime)  # the newest build
    actual = native._read_soname(library)
    if actual != soname:
        raise SetupError("ft_weave: %s is not %s (its ELF soname is %s)" % (library, soname, actual))
    return library


def find_headers():
    root = _checkout_root()
    where = os.path.join(root, "include") if root else None
    if where is None or not all(os.path.isfile(os.path.join(where, h)) for h in HEADERS):
        raise SetupError(
            "ft_weave: the headers (%s) are taken from the source checkout's include/, and %s has none; "
            "build the wheel from python/ inside an ft_weave checkout" % (", ".join(HEADERS), os.path.dirname(HERE))
        )
    return [os.path.join(where, h) for h in HEADERS]


def _check_version(version):
    """The wheel's version must be the library's (Directory.Build.props)."""
    root = _checkout_root()
    props = os.path.join(root, "Directory.Build.props") if root else None
    if props and os.path.isfile(props):
        with open(props) as f:
            match = re.search(r"<FtWeaveVersion>([0-9.]+)</FtWeaveVersion>", f.read())
        if match and match.group(1) != version:
            raise SetupError(
                "ft_weave: python/pyproject.toml has version %s, Directory.Build.props %s: keep them equal" % (version, match.group(1))
            )


def _configure(template, destination, values):
    with open(os.path.join(HERE, "cmake", template)) as f:
        text = f.read()
    for key, value in values.items():
        text = text.replace("@%s@" % key, value)
    with open(destination, "w") as f:
        f.write(text)


class build_py(_build_py):
    """Copies the library, the headers and the CMake package files into the
    build directory's ft_weave/ (never into the source tree)."""

    def run(self):
        native = _native()
        version = self.distribution.get_version()
        _check_version(version)
        library = find_library(native)
        headers = find_headers()
        package = os.path.join(self.build_lib, "ft_weave")
        if os.path.isdir(package):  # no stale files from an earlier build
            shutil.rmtree(package)
        super().run()
        for sub in ("lib", "include", "cmake"):
            os.makedirs(os.path.join(package, sub), exist_ok=True)
        # A copy under the soname (wheels hold no symbolic links); executable,
        # as the dynamic loader's files are.
        target = os.path.join(package, "lib", native.SONAME)
        shutil.copyfile(library, target)
        os.chmod(target, 0o755)
        for header in headers:
            shutil.copyfile(header, os.path.join(package, "include", os.path.basename(header)))
        values = {"ABI": str(native.ABI_VERSION), "VERSION": version}
        _configure("ft_weaveConfig.cmake.in", os.path.join(package, "cmake", "ft_weaveConfig.cmake"), values)
        _configure("ft_weaveConfigVersion.cmake.in", os.path.join(package, "cmake", "ft_weaveConfigVersion.cmake"), values)
        print("ft_weave: bundled %s, %s" % (library, ", ".join(headers)))


cmdclass = {"build_py": build_py}

if _bdist_wheel is not None:

    class bdist_wheel(_bdist_wheel):
        """Platform wheel (it carries a native library), for any Python 3:
        py3-none-<platform>."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            return ("py3", "none", super().get_tag()[2])

    cmdclass["bdist_wheel"] = bdist_wheel



class BinaryDistribution(Distribution):
    """A distribution with native content, although setuptools compiles
    nothing: the files go to platlib (the wheel's root) instead of
    .data/purelib, and the build directory is per platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass=cmdclass, distclass=BinaryDistribution)
