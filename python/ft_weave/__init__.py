"""ft_weave for Python: libft_weave.so through ctypes (standard library only).

- ``ft_weave.weave``: ft_utils-compatible thread-exit destructors
  (``register_native_destructor``, ``unregister_native_destructor``), gated by
  ``ft_weave.ENABLE_EXPERIMENTAL`` as in ft_utils.
- ``Mutex``, ``Event``, ``RWMutex``, ``Once``: the library's locks, each
  holding its C struct in ctypes memory.
- ``park``, ``unpark``, ``unpark_all``: the parking lot on ctypes integers.
- ``contention()``, ``profile_start()``, ``profile_stop()``,
  ``profile_write(path)``: the contention profile (``ft_weave.profile``).
- ``get_include()``, ``get_library_dir()``, ``get_cmake_dir()`` and
  ``ft_weave.setup_helpers``: building C extensions against the library
  (``python -m ft_weave --include | --libdir | --cmakedir`` prints them).

The library is loaded on first use. A ``libft_weave.so.1`` already loaded in
the process (an extension module linked it) is reused first, so that the
process has one copy; otherwise from ``FT_WEAVE_LIBRARY``, next to this
package (``ft_weave/lib/``, where a wheel bundles it), a source checkout's
build tree, or the dynamic loader (``LibraryNotFoundError`` lists what was
tried). ``library_path()`` names the file in use.

One copy per process: when another file with the library's soname is mapped
into the process (compared by device and inode, at load and on
``check_library_copies()``), ``DuplicateLibraryWarning`` (a
``RuntimeWarning``) names both paths; with ``FT_WEAVE_DUPLICATE=error`` it is
``DuplicateLibraryError`` (an ``ImportError``) instead. See docs/python.md.
"""

from . import weave
from ._native import (
    DuplicateLibraryError,
    DuplicateLibraryWarning,
    LibraryNotFoundError,
    check_library_copies,
    library_path,
)
from ._paths import get_cmake_dir, get_include, get_library_dir
from .locks import Event, Mutex, Once, RWMutex
from .parking import PARK_AGAIN, PARK_INTR, PARK_OK, PARK_TIMEOUT, park, unpark, unpark_all
from .profile import contention, profile_start, profile_stop, profile_write, set_profile_rate

__version__ = "0.1.0"

# As ft_utils.ENABLE_EXPERIMENTAL: ft_weave.weave refuses to work until set.
ENABLE_EXPERIMENTAL = False


def library_version():
    """The loaded library's weave_version() string."""
    from . import _native

    return _native.lib().weave_version().decode("ascii")


__all__ = [
    "DuplicateLibraryError",
    "DuplicateLibraryWarning",
    "ENABLE_EXPERIMENTAL",
    "check_library_copies",
    "contention",
    "profile_start",
    "profile_stop",
    "profile_write",
    "set_profile_rate",
    "get_cmake_dir",
    "get_include",
    "get_library_dir",
    "Event",
    "LibraryNotFoundError",
    "Mutex",
    "Once",
    "PARK_AGAIN",
    "PARK_INTR",
    "PARK_OK",
    "PARK_TIMEOUT",
    "RWMutex",
    "library_path",
    "library_version",
    "park",
    "unpark",
    "unpark_all",
    "weave",
]
