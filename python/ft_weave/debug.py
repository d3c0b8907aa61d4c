"""Debug mode (deadlock detection) of the library, for Python programs.

``ft_weave.Mutex``, ``RWMutex`` and the C code of extensions built with
``-DFT_WEAVE_DEBUG`` are checked; see docs/diagnostics.md, "Deadlock
detection"::

    import ft_weave.debug as debug
    debug.set(debug.ALL, print)     # each report is one str
    ...
    n = debug.check_deadlocks()      # threads blocked on each other now
    debug.set(0)

``FT_WEAVE_DEBUG=all`` (or a comma list) in the environment turns it on too.
"""

import ctypes
import threading

from . import _native

LOCK_ORDER = 1
OWNER = 2
LIVE_DEADLOCK = 4
FAIL_ON_CYCLE = 8
WATCHDOG = 16
ALL = LOCK_ORDER | OWNER | LIVE_DEADLOCK

_REPORT_FN = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
_state = threading.Lock()
_installed = None  # the ctypes callback in use: kept alive while installed


def _lib():
    lib = _native.lib()
    if not getattr(lib, "_ftw_debug_prototypes", False):
        lib.weave_debug_set.restype = ctypes.c_int
        lib.weave_debug_set.argtypes = [ctypes.c_int, _REPORT_FN, ctypes.c_void_p]
        lib.weave_debug_flags.restype = ctypes.c_int
        lib.weave_debug_flags.argtypes = []
        lib.weave_debug_check_deadlocks.restype = ctypes.c_int
        lib.weave_debug_check_deadlocks.argtypes = []
        lib._ftw_debug_prototypes = True
    return lib


def set(flags, callback=None):  # noqa: A001 - the C name is weave_debug_set
    """Sets the debug flags (0: off) and the report callback: called with
    each report as a ``str``, on the thread that found it (None: one line on
    stderr). Raises ``ValueError`` for flags the library refuses."""
    global _installed
    if callback is None:
        fn = _REPORT_FN()
    else:

        def report(text, _arg):
            callback(text.decode("utf-8", "replace"))

        fn = _REPORT_FN(report)
    with _state:
        code = _lib().weave_debug_set(int(flags), fn, None)
        if code != 0:
            raise ValueError(_native.last_error())
        # The previous callback may still be running on another thread: keep
        # it alive too (a few bytes per call to set()).
        _installed = (fn, _installed)
        from . import locks

        locks._checked = int(flags) != 0


def flags():
    """The flags in force (FT_WEAVE_DEBUG is read on first use)."""
    return _lib().weave_debug_flags()


def check_deadlocks():
    """Reports the sets of threads blocked right now on locks held by each
    other, and returns how many there are (0 when debug mode is off)."""
    return _lib().weave_debug_check_deadlocks()
