"""Finding, loading and describing libft_weave.so (ctypes).

The library is loaded on first use, not at import, so ``import ft_weave``
always works and the error comes with the call that needed the library.
Places, in order:

1. ``FT_WEAVE_LIBRARY``: when set (non-empty), the only place tried, so that
   a wrong setting is an error instead of a silent fallback to another copy.
2. Next to the package: ``ft_weave/libft_weave.so.<abi>`` and
   ``ft_weave/libft_weave.so`` (where ``cmake --install`` puts a link).
3. A source checkout's build trees, when the package is ``<root>/python/ft_weave``:
   ``<root>/build/default/lib`` and ``<root>/build/test/lib`` (the presets').
4. ``libft_weave.so.<abi>`` through the dynamic loader (``LD_LIBRARY_PATH``,
   ``ld.so.cache``, the system directories).

A candidate that loads but reports another ABI version is skipped. When
nothing loads, :class:`LibraryNotFoundError` lists every candidate and why it
failed.
"""

import ctypes
import os
import threading

ABI_VERSION = 1
SONAME = "libft_weave.so.%d" % ABI_VERSION

# Error codes (ft_weave.h, section 1).
WEAVE_E_INVALID = -101
WEAVE_E_NOT_OWNER = -102
WEAVE_E_NOMEM = -103
WEAVE_E_DISABLED = -104
WEAVE_E_MISMATCH = -105
WEAVE_E_STATE = -106
WEAVE_E_DEADLOCK = -107

# Lock statuses and flags (section 4).
WEAVE_LOCK_FAILURE = 0
WEAVE_LOCK_ACQUIRED = 1
WEAVE_LOCK_INTR = 2
WEAVE_LOCK_DONT_DETACH = 0
WEAVE_LOCK_FAIL_IF_INTERRUPTED = 4

INT64_MAX = 2**63 - 1


class LibraryNotFoundError(ImportError):
    """libft_weave.so could not be loaded; the message lists every place tried
    (``attempts``: (place, reason) pairs)."""

    def __init__(self, attempts, env_set):
        self.attempts = list(attempts)
        lines = ["ft_weave: could not load libft_weave.so (ABI %d). Looked in:" % ABI_VERSION]
        for where, why in self.attempts:
            lines.append("  - %s: %s" % (where, why))
        if env_set:
            lines.append("FT_WEAVE_LIBRARY is set, so no other place was searched.")
        else:
            lines.append(
                "Set FT_WEAVE_LIBRARY to the library's path, or install with CMake "
                "(which places the library next to the package)."
            )
        super().__init__("\n".join(lines))


LibraryNotFoundError.__module__ = "ft_weave"  # shown as ft_weave.LibraryNotFoundError


# --- C types (ft_weave.h) ---------------------------------------------------


class weave_mutex_t(ctypes.Structure):
    _fields_ = [("_bits", ctypes.c_uint8)]


class weave_event_t(ctypes.Structure):
    _fields_ = [("v", ctypes.c_uint8)]


class weave_once_t(ctypes.Structure):
    _fields_ = [("v", ctypes.c_uint8)]


class weave_rwmutex_t(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_size_t)]  # uintptr_t


weave_once_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class weave_python_api_t(ctypes.Structure):
    # Function pointers, passed as plain addresses.
    _fields_ = [
        ("thread_state_get", ctypes.c_void_p),
        ("gil_state_check", ctypes.c_void_p),
        ("save_thread", ctypes.c_void_p),
        ("restore_thread", ctypes.c_void_p),
        ("make_pending_calls", ctypes.c_void_p),
    ]

_c_int = ctypes.c_int
_c_void_p = ctypes.c_void_p
_P = ctypes.POINTER

# name: (restype, argtypes)
_PROTOTYPES = {
    "weave_version": (ctypes.c_char_p, []),
    "weave_abi_version": (_c_int, []),
    "weave_strerror": (ctypes.c_char_p, [_c_int]),
    "weave_last_error": (ctypes.c_char_p, []),
    "weave_thread_id": (ctypes.c_uint64, []),
    "weave_register_destructor": (_c_int, [_c_void_p, _c_void_p]),
    "weave_unregister_destructor": (_c_int, [_c_void_p]),
    "weave_run_thread_destructors": (_c_int, []),
    "weave_park": (_c_int, [_c_void_p, _c_void_p, ctypes.c_size_t, ctypes.c_int64, _c_void_p, _c_int]),
    "weave_unpark": (_c_int, [_c_void_p, _c_void_p, _c_void_p]),
    "weave_unpark_all": (_c_int, [_c_void_p]),
    "weave_mutex_lock_timed": (_c_int, [_P(weave_mutex_t), ctypes.c_int64, _c_int]),
    "weave_mutex_unlock": (_c_int, [_P(weave_mutex_t)]),
    "weave_mutex_trylock": (_c_int, [_P(weave_mutex_t)]),
    "weave_mutex_is_locked": (_c_int, [_P(weave_mutex_t)]),
    "weave_event_notify": (None, [_P(weave_event_t)]),
    "weave_event_is_set": (_c_int, [_P(weave_event_t)]),
    "weave_event_wait_timed": (_c_int, [_P(weave_event_t), ctypes.c_int64, _c_int]),
    "weave_once_call": (_c_int, [_P(weave_once_t), weave_once_fn, _c_void_p]),
    "weave_rwmutex_rlock": (None, [_P(weave_rwmutex_t)]),
    "weave_rwmutex_runlock": (_c_int, [_P(weave_rwmutex_t)]),
    "weave_rwmutex_lock": (None, [_P(weave_rwmutex_t)]),
    "weave_rwmutex_unlock": (_c_int, [_P(weave_rwmutex_t)]),
}


# --- finding and loading ----------------------------------------------------

_lock = threading.Lock()
_lib = None
_path = None


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def candidates(environ=None, package_dir=None):
    """The places tried, in order, as (description, path or soname) pairs."""
    environ = os.environ if environ is None else environ
    package_dir = _package_dir() if package_dir is None else package_dir
    explicit = environ.get("FT_WEAVE_LIBRARY", "")
    if explicit:
        return [("FT_WEAVE_LIBRARY=%s" % explicit, explicit)]
    found = []
    for name in (SONAME, "libft_weave.so"):
        path = os.path.join(package_dir, name)
        found.append((path, path))
    root = os.path.dirname(os.path.dirname(package_dir))
    if os.path.basename(os.path.dirname(package_dir)) == "python" and os.path.isfile(
        os.path.join(root, "include", "ft_weave.h")
    ):
        for preset in ("default", "test"):
            path = os.path.join(root, "build", preset, "lib", SONAME)
            found.append((path, path))
    found.append(("%s through the dynamic loader (LD_LIBRARY_PATH, ld.so.cache, system directories)" % SONAME, SONAME))
    return found


def _try(target):
    """(CDLL, None) or (None, reason)."""
    if os.sep in target and not os.path.exists(target):
        return None, "no such file"
    try:
        lib = ctypes.CDLL(target)
    except OSError as e:
        return None, str(e)
    try:
        lib.weave_abi_version.restype = ctypes.c_int
        lib.weave_abi_version.argtypes = []
        abi = lib.weave_abi_version()
    except AttributeError:
        return None, "loaded, but it is not libft_weave (no weave_abi_version)"
    if abi != ABI_VERSION:
        return None, "loaded, but its ABI version is %d, not %d" % (abi, ABI_VERSION)
    return lib, None


def load_from(places, env_set=False):
    """Loads the first place that works; raises LibraryNotFoundError otherwise."""
    attempts = []
    for where, target in places:
        lib, why = _try(target)
        if lib is not None:
            for name, (restype, argtypes) in _PROTOTYPES.items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            return lib, target
        attempts.append((where, why))
    raise LibraryNotFoundError(attempts, env_set)


def lib():
    """The loaded library (loading it on the first call)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            loaded, path = load_from(candidates(), bool(os.environ.get("FT_WEAVE_LIBRARY")))
            if os.sep in path:
                path = os.path.abspath(path)
            _path = path
            _tell_python_api(loaded)
            _tell_python_errors(loaded)
            _lib = loaded
    return _lib


def _tell_python_api(loaded):
    """Hands this interpreter's thread-state functions to the library
    (weave_set_python_api), so that waits detach from it even when the
    library could not find CPython by itself when it was loaded (a libpython
    loaded privately). The library never looks CPython up from a waiting
    path. Best effort: an older library, or a Python whose functions ctypes
    cannot see, just keeps what the library found at load time."""
    fn = getattr(loaded, "weave_set_python_api", None)
    if fn is None:
        return
    api = ctypes.pythonapi

    def address(name):
        return ctypes.cast(getattr(api, name), ctypes.c_void_p).value

    try:
        if hasattr(api, "PyThreadState_GetUnchecked"):  # 3.13+
            get, check = address("PyThreadState_GetUnchecked"), None
        else:
            get, check = address("_PyThreadState_UncheckedGet"), address("PyGILState_Check")
        table = weave_python_api_t(
            get, check, address("PyEval_SaveThread"), address("PyEval_RestoreThread"), address("Py_MakePendingCalls")
        )
    except AttributeError:
        return
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.POINTER(weave_python_api_t)]
    fn(ctypes.byref(table))


class weave_python_errors_t(ctypes.Structure):
    # PyErr_SetString's address and the exception type objects.
    _fields_ = [
        ("set_string", ctypes.c_void_p),
        ("value_error", ctypes.c_void_p),
        ("memory_error", ctypes.c_void_p),
        ("runtime_error", ctypes.c_void_p),
    ]


def _tell_python_errors(loaded):
    """Hands this interpreter's PyErr_SetString and exception types to the
    library (weave_set_python_errors), with which the ft_utils helpers
    (_py_register_wvls_destructor) set exceptions when CPython was not found
    at load time. Best effort, as _tell_python_api."""
    fn = getattr(loaded, "weave_set_python_errors", None)
    if fn is None:
        return
    api = ctypes.pythonapi
    try:
        table = weave_python_errors_t(
            ctypes.cast(api.PyErr_SetString, ctypes.c_void_p).value,
            id(ValueError),  # CPython: id() is the object's address
            id(MemoryError),
            id(RuntimeError),
        )
    except AttributeError:
        return
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.POINTER(weave_python_errors_t)]
    fn(ctypes.byref(table))


def library_path():
    """The path (or soname, when the dynamic loader found it) of the loaded library."""
    lib()
    return _path


def last_error():
    return lib().weave_last_error().decode("utf-8", "replace")


def raise_for(code, what):
    """Raises the Python exception for a negative WEAVE_E_* code, with the
    calling thread's weave_last_error() text."""
    detail = last_error()
    name = lib().weave_strerror(code).decode("utf-8", "replace")
    message = "%s: %s" % (what, detail or name)
    if code == WEAVE_E_INVALID:
        raise ValueError(message)
    if code == WEAVE_E_NOMEM:
        raise MemoryError(message)
    raise RuntimeError(message)


def timeout_ns(timeout):
    """Seconds (int or float, >= 0) to int64 nanoseconds, capped at INT64_MAX."""
    ns = int(timeout * 1e9)
    return INT64_MAX if ns > INT64_MAX else ns
