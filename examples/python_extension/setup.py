"""Builds the `ledger` example extension against ft_weave.

    python setup.py build_ext --inplace          # next to ledger.c
    python setup.py build_ext --build-lib DIR    # into DIR (what the tests do)

`ft_weave` must be importable while this runs: the wheel built from the
project's python/ directory, or a source checkout with
PYTHONPATH=<checkout>/python after the CMake build (then the checkout's
include/ and the library the package loads are used). WeaveExtension adds the
include directory, the link to libft_weave.so.1 and run paths that find it
when `ledger` is imported; see docs/python.md.
"""

from setuptools import setup

from ft_weave.setup_helpers import WeaveExtension

setup(
    name="ft-weave-ledger-example",
    version="0.1.0",
    description="ft_weave example: a free-threaded CPython extension with per-object locks",
    ext_modules=[
        WeaveExtension(
            "ledger",
            # setuptools wants paths relative to this directory (run setup.py
            # from here; pip does).
            ["ledger.c"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra"],
        )
    ],
    # The module is a top-level extension; there is no Python package.
    py_modules=[],
)
