"""Where the files for building against ft_weave are (the way numpy's
``get_include()`` and pybind11's ``get_cmake_dir()`` serve extension builds).

A wheel built from ``python/`` (``pip install python/`` after the CMake
build) carries them inside the package:

    ft_weave/include/ft_weave.h, ft_weave_python.h
    ft_weave/lib/libft_weave.so.1
    ft_weave/cmake/ft_weaveConfig.cmake   (find_package(ft_weave) for CMake)

A source checkout (``PYTHONPATH=python``) falls back to the checkout's
``include/`` and the library the package would load.
"""

import os

from . import _native


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def _checkout_root():
    """The source checkout's root when the package is <root>/python/ft_weave."""
    package_dir = _package_dir()
    root = os.path.dirname(os.path.dirname(package_dir))
    if os.path.basename(os.path.dirname(package_dir)) == "python" and os.path.isfile(
        os.path.join(root, "include", "ft_weave.h")
    ):
        return root
    return None


def get_include():
    """The directory holding ``ft_weave.h`` and ``ft_weave_python.h``."""
    bundled = os.path.join(_package_dir(), "include")
    if os.path.isfile(os.path.join(bundled, "ft_weave.h")):
        return bundled
    root = _checkout_root()
    if root is not None:
        return os.path.join(root, "include")
    raise FileNotFoundError(
        "ft_weave: this installation has no headers (install the wheel built from python/ "
        "after the CMake build, or use the CMake install's include directory)"
    )


def get_library_dir():
    """The directory holding ``libft_weave.so.1`` to link against: the copy
    bundled in the package, else the directory of the library this package
    loads (which loads it)."""
    bundled = os.path.join(_package_dir(), "lib")
    if os.path.isfile(os.path.join(bundled, _native.SONAME)):
        return bundled
    path = _native.library_path()
    if os.sep not in path:
        raise FileNotFoundError(
            "ft_weave: the library was found through the dynamic loader (%s), not in a directory "
            "this package knows; link with -lft_weave from its installed prefix" % path
        )
    return os.path.dirname(os.path.realpath(path))


def get_cmake_dir():
    """The directory with ``ft_weaveConfig.cmake`` for the bundled library:
    ``cmake -Dft_weave_DIR=$(python -m ft_weave --cmakedir)``."""
    bundled = os.path.join(_package_dir(), "cmake")
    if os.path.isfile(os.path.join(bundled, "ft_weaveConfig.cmake")):
        return bundled
    raise FileNotFoundError(
        "ft_weave: this installation has no CMake package files (they come with the wheel "
        "built from python/; a CMake install has them under <prefix>/lib/cmake/ft_weave)"
    )
