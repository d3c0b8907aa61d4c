"""Building a C or C++ extension module against ft_weave with setuptools.

    from setuptools import setup
    from ft_weave.setup_helpers import WeaveExtension

    setup(ext_modules=[WeaveExtension("mypkg._native", ["src/native.c"])])

``WeaveExtension`` is a ``setuptools.Extension`` with ft_weave's include
directory, a link to ``libft_weave.so.1`` and run paths that find the library
at import time (``extension_kwargs`` gives the same as a dict, to merge into
your own arguments):

- ``$ORIGIN``-relative: the extension and the ``ft_weave`` package installed
  side by side in one site-packages (the wheel case): ``mypkg/_native.so``
  finds ``ft_weave/lib/libft_weave.so.1`` through ``$ORIGIN/../ft_weave/lib``.
- absolute, the directory used at build time (``absolute_rpath=True``, the
  default), for in-place builds and tests; set it to False for wheels you
  distribute.

Whatever loads first, one copy of the library serves the process: the
dynamic loader matches ``libft_weave.so.1`` by soname against the copy
already loaded, and ``import ft_weave`` reuses a copy an extension loaded.
Declare ``ft_weave`` as a build and run dependency of your package.
"""

import os

from . import _native
from ._paths import get_include, get_library_dir


def _origin_rpath(name):
    """$ORIGIN-relative path from extension module `name` (dotted) to
    site-packages/ft_weave/lib."""
    depth = name.count(".")
    return "$ORIGIN/" + "../" * depth + "ft_weave/lib"


def extension_kwargs(name, absolute_rpath=True):
    """``include_dirs``, ``extra_link_args`` for extension module ``name``
    (its full dotted name, which decides the relative run path)."""
    libdir = get_library_dir()
    rpaths = [_origin_rpath(name)]
    if absolute_rpath:
        rpaths.append(libdir)
    return {
        "include_dirs": [get_include()],
        "extra_link_args": ["-L" + libdir, "-l:" + _native.SONAME]
        + ["-Wl,-rpath," + path for path in rpaths],
    }


def _merge(kwargs, extra):
    for key, value in extra.items():
        kwargs[key] = list(kwargs.get(key) or []) + list(value)
    return kwargs


try:
    from setuptools import Extension as _Extension
except ImportError:  # setuptools is only needed to build, never to import ft_weave
    _Extension = None


if _Extension is not None:

    class WeaveExtension(_Extension):
        """A setuptools ``Extension`` that builds and links against ft_weave."""

        def __init__(self, name, sources, *args, absolute_rpath=True, **kwargs):
            _merge(kwargs, extension_kwargs(name, absolute_rpath=absolute_rpath))
            super().__init__(name, sources, *args, **kwargs)

    __all__ = ["WeaveExtension", "extension_kwargs", "get_include", "get_library_dir"]
else:
    __all__ = ["extension_kwargs", "get_include", "get_library_dir"]
