"""Finding, loading and describing libft_weave.so (ctypes).

The library is loaded on first use, not at import, so ``import ft_weave``
always works and the error comes with the call that needed the library.

One copy per process. Before any other place, the loader reuses a
``libft_weave.so.<abi>`` that is already loaded in the process (an extension
module linked it): ``dlopen`` by soname with ``RTLD_NOLOAD``, which finds a
loaded library by its soname whatever its path. Otherwise, in order:

1. ``FT_WEAVE_LIBRARY``: when set (non-empty), the only place tried, so that
   a wrong setting is an error instead of a silent fallback to another copy.
2. Next to the package: ``ft_weave/lib/libft_weave.so.<abi>`` (the copy the
   wheel bundles).
3. A source checkout's build trees, when the package is ``<root>/python/ft_weave``:
   ``<root>/build/default/lib`` and ``<root>/build/test/lib`` (the presets').
4. ``libft_weave.so.<abi>`` through the dynamic loader (``LD_LIBRARY_PATH``,
   ``ld.so.cache``, the system directories).

A candidate that loads but reports another ABI version is skipped. When
nothing loads, :class:`LibraryNotFoundError` lists every candidate and why it
failed.

After loading, and whenever :func:`check_library_copies` is called, the files
mapped into the process (``/proc/self/maps``) are compared by device and
inode: two different files whose ELF soname is ``libft_weave.so.*`` are two
copies of the library, each with its own parking lot, storage registry and
.NET runtime. That is a :class:`DuplicateLibraryWarning`, or a
:class:`DuplicateLibraryError` when ``FT_WEAVE_DUPLICATE=error``.
"""

import ctypes
import os
import struct
import sys
import threading
import warnings

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
WEAVE_ONCE_DONE = 4

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
                "Install the ft_weave wheel (pip install, which bundles the library), "
                "or set FT_WEAVE_LIBRARY to the library's path."
            )
        super().__init__("\n".join(lines))


LibraryNotFoundError.__module__ = "ft_weave"  # shown as ft_weave.LibraryNotFoundError


class DuplicateLibraryWarning(RuntimeWarning):
    """Two copies of libft_weave (different files) are loaded in this process.

    Each copy has its own parking lot, storage registry and .NET runtime:
    locks, ``weave_static_get`` values and thread-exit destructors are not
    shared between code that uses one copy and code that uses the other.
    ``paths``: the copies' files, the one this package uses first."""

    def __init__(self, message, paths=()):
        super().__init__(message)
        self.paths = list(paths)


class DuplicateLibraryError(ImportError):
    """As :class:`DuplicateLibraryWarning`, raised instead of the warning when
    the environment variable ``FT_WEAVE_DUPLICATE`` is ``error``."""

    def __init__(self, message, paths=()):
        super().__init__(message)
        self.paths = list(paths)


DuplicateLibraryWarning.__module__ = "ft_weave"
DuplicateLibraryError.__module__ = "ft_weave"


# --- C types (ft_weave.h) ---------------------------------------------------


class weave_mutex_t(ctypes.Structure):
    # _bytes[0] is _locked, _bytes[1] _parked (ft_weave.h); users rely only
    # on zero-initialisation and the size.
    _fields_ = [("_bytes", ctypes.c_uint8 * 2)]


class weave_event_t(ctypes.Structure):
    _fields_ = [("v", ctypes.c_uint8)]


class weave_once_t(ctypes.Structure):
    _fields_ = [("v", ctypes.c_uint8)]


class weave_rwmutex_t(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_size_t)]  # uintptr_t


# ft_weave.h's RW mutex word and reader-bias table (internal layout, same
# ABI version as the header): the top bit is the bias, readers holding the
# lock through the table are in their slot {lock address, owner id}.
RWMUTEX_READER_BIAS = 1 << (ctypes.sizeof(ctypes.c_size_t) * 8 - 1)
RWMUTEX_STRIPE_SLOTS = 64


class weave__rwmutex_slot_t(ctypes.Structure):
    _fields_ = [("lock", ctypes.c_size_t), ("owner", ctypes.c_uint64)]


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


class weave_python_errors_t(ctypes.Structure):
    # PyErr_SetString's address and the exception type objects.
    _fields_ = [
        ("set_string", ctypes.c_void_p),
        ("value_error", ctypes.c_void_p),
        ("memory_error", ctypes.c_void_p),
        ("runtime_error", ctypes.c_void_p),
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
    "weave_rwmutex_rlock_timed": (_c_int, [_P(weave_rwmutex_t), ctypes.c_int64, _c_int]),
    "weave_rwmutex_lock_timed": (_c_int, [_P(weave_rwmutex_t), ctypes.c_int64, _c_int]),
    "unregister_wvls_destructor": (_c_int, [_c_void_p]),
    "weave__rwmutex_readers": (_P(weave__rwmutex_slot_t), []),
}


# --- finding and loading ----------------------------------------------------

_lock = threading.Lock()
_lib = None
_path = None


def _package_dir():
    return os.path.dirname(os.path.abspath(__file__))


def candidates(environ=None, package_dir=None):
    """The places tried, in order, as (description, path or soname) pairs
    (after a copy already loaded in the process, which is always reused)."""
    environ = os.environ if environ is None else environ
    package_dir = _package_dir() if package_dir is None else package_dir
    explicit = environ.get("FT_WEAVE_LIBRARY", "")
    if explicit:
        return [("FT_WEAVE_LIBRARY=%s" % explicit, explicit)]
    found = []
    path = os.path.join(package_dir, "lib", SONAME)
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


def _abi_problem(lib):
    """None when `lib` is libft_weave of this ABI, else why not."""
    try:
        lib.weave_abi_version.restype = ctypes.c_int
        lib.weave_abi_version.argtypes = []
        abi = lib.weave_abi_version()
    except AttributeError:
        return "loaded, but it is not libft_weave (no weave_abi_version)"
    if abi != ABI_VERSION:
        return "loaded, but its ABI version is %d, not %d" % (abi, ABI_VERSION)
    return None


def _try(target):
    """(CDLL, None) or (None, reason)."""
    if os.sep in target and not os.path.exists(target):
        return None, "no such file"
    try:
        lib = ctypes.CDLL(target)
    except OSError as e:
        return None, str(e)
    why = _abi_problem(lib)
    return (None, why) if why else (lib, None)


def _bind(lib):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load_from(places, env_set=False):
    """Loads the first place that works; raises LibraryNotFoundError otherwise."""
    attempts = []
    for where, target in places:
        lib, why = _try(target)
        if lib is not None:
            _bind(lib)
            return lib, target
        attempts.append((where, why))
    raise LibraryNotFoundError(attempts, env_set)


def loaded_copy():
    """The ``libft_weave.so.<abi>`` already loaded in this process (by an
    extension module that links it, or any earlier dlopen), or None: dlopen
    by soname with RTLD_NOLOAD, which matches a loaded library's soname
    whatever file it came from, and never loads anything."""
    noload = getattr(os, "RTLD_NOLOAD", None)
    if noload is None:
        return None
    try:
        lib = ctypes.CDLL(SONAME, mode=noload)
    except OSError:
        return None
    return None if _abi_problem(lib) else lib


# --- what is mapped into the process ---------------------------------------


def _mapped_files():
    """[(start, end, key, path)] for every file mapping of this process, where
    key = (device, inode) as /proc/self/maps gives them; [] without procfs."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.readlines()
    except OSError:
        return []
    files = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[4] == "0" or not parts[5].startswith("/"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        files.append((start, end, (parts[3], int(parts[4])), parts[5].rstrip("\n")))
    return files


def _mapping_at(address, files):
    """(key, path) of the file mapped at `address`, or None."""
    for start, end, key, path in files:
        if start <= address < end:
            return key, path
    return None


def _read_soname(path):
    """DT_SONAME of the ELF shared object at `path`, or None (not ELF, no
    soname, unreadable)."""
    if path.endswith(" (deleted)"):
        path = path[: -len(" (deleted)")]
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if len(ident) < 52 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return None
            end = "<" if ident[5] == 1 else ">"
            if ident[4] == 2:
                e_type, phoff, phentsize, phnum = _unpack(end + "H14xQ14xHH", ident, 16)
                phdr, dyn = end + "IIQQQQ", end + "qQ"
            else:
                e_type, phoff, phentsize, phnum = _unpack(end + "H10xI10xHH", ident, 16)
                phdr, dyn = end + "IIIII", end + "iI"
            if e_type != 3 or phnum == 0:  # ET_DYN
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            loads, dynamic = [], None
            for i in range(phnum):
                if ident[4] == 2:
                    p_type, _flags, offset, vaddr, _paddr, filesz = _unpack(phdr, table, i * phentsize)
                else:
                    p_type, offset, vaddr, _paddr, filesz = _unpack(phdr, table, i * phentsize)
                if p_type == 1:  # PT_LOAD
                    loads.append((vaddr, offset, filesz))
                elif p_type == 2:  # PT_DYNAMIC
                    dynamic = (offset, filesz)
            if dynamic is None:
                return None
            f.seek(dynamic[0])
            data = f.read(min(dynamic[1], 1 << 16))
            size = struct.calcsize(dyn)
            strtab = soname = None
            for i in range(len(data) // size):
                tag, value = _unpack(dyn, data, i * size)
                if tag == 0:  # DT_NULL
                    break
                if tag == 5:  # DT_STRTAB (an address)
                    strtab = value
                elif tag == 14:  # DT_SONAME (an offset into the string table)
                    soname = value
            if strtab is None or soname is None:
                return None
            for vaddr, offset, filesz in loads:
                if vaddr <= strtab < vaddr + filesz:
                    f.seek(offset + (strtab - vaddr) + soname)
                    name = f.read(256).split(b"\0", 1)[0]
                    return name.decode("utf-8", "replace")
            return None
    except (OSError, struct.error):
        return None


def _unpack(fmt, data, offset):
    return struct.unpack_from(fmt, data, offset)


_soname_cache = {}  # (device, inode) -> soname or None


def _copies(files):
    """{key: path} of every mapped file whose soname is libft_weave.so.*, in
    mapping order (one entry per file, compared by device and inode)."""
    copies = {}
    for start, end, key, path in files:
        if key in copies:
            continue
        if key not in _soname_cache:
            _soname_cache[key] = _read_soname(path)
        soname = _soname_cache[key]
        if soname is not None and soname.startswith("libft_weave.so"):
            copies[key] = path
    return copies


def _caller_stacklevel():
    """The stacklevel, for a warnings.warn() in this function's caller, of
    the first frame outside this package (so the warning names user code)."""
    frame = sys._getframe(2)
    level = 2
    package = _package_dir()
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame = frame.f_back
        level += 1
    return level


def _duplicate_mode():
    return os.environ.get("FT_WEAVE_DUPLICATE", "").strip().lower()


def _check_copies(own_key, own_path, files):
    """Warns (DuplicateLibraryWarning) or raises (DuplicateLibraryError,
    FT_WEAVE_DUPLICATE=error) when another copy than ours is mapped; returns
    the paths of every copy, ours first."""
    copies = _copies(files)
    others = [path for key, path in copies.items() if key != own_key]
    paths = [own_path] + others
    if not others:
        return paths
    message = (
        "ft_weave: %d copies of libft_weave are loaded in this process: %s (used by the ft_weave "
        "package), and %s. Each copy has its own parking lot, storage registry and .NET runtime: "
        "locks, weave_static_get/weave_tls_get values and thread-exit destructors are not shared "
        "between code using different copies. Build extensions against the package's copy "
        "(ft_weave.setup_helpers, or find_package(ft_weave) with ft_weave_DIR=ft_weave.get_cmake_dir()) "
        "and import them in any order: ft_weave reuses a copy that is already loaded."
        % (len(paths), own_path, ", ".join(others))
    )
    if _duplicate_mode() == "error":
        raise DuplicateLibraryError(message + " (FT_WEAVE_DUPLICATE=error)", paths)
    warnings.warn(
        DuplicateLibraryWarning(message + " Set FT_WEAVE_DUPLICATE=error to make this an error.", paths),
        stacklevel=_caller_stacklevel(),
    )
    return paths


def _same_file(path, key, mapped_path):
    if os.path.realpath(path) == mapped_path:
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    major, minor = (int(x, 16) for x in key[0].split(":"))
    return st.st_ino == key[1] and st.st_dev == os.makedev(major, minor)


def lib():
    """The loaded library (loading it on the first call)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            explicit = os.environ.get("FT_WEAVE_LIBRARY", "")
            loaded = loaded_copy()
            reused = loaded is not None
            if reused:
                _bind(loaded)
                path = SONAME
            else:
                loaded, path = load_from(candidates(), bool(explicit))
                if os.sep in path:
                    path = os.path.abspath(path)
            files = _mapped_files()
            mapped = _mapping_at(ctypes.cast(loaded.weave_abi_version, ctypes.c_void_p).value, files)
            key = None
            if mapped is not None:
                key = mapped[0]
                if os.sep not in path:  # reused, or found by the dynamic loader: the real file
                    path = mapped[1]
            if reused and explicit and mapped is not None and not _same_file(explicit, key, mapped[1]):
                warnings.warn(
                    "ft_weave: FT_WEAVE_LIBRARY=%s is not loaded: this process already has %s loaded "
                    "from %s (an extension module linked it), and ft_weave uses that copy "
                    "(one copy per process)" % (explicit, SONAME, path),
                    RuntimeWarning,
                    stacklevel=_caller_stacklevel(),
                )
            if key is not None:
                _check_copies(key, path, files)
            _tell_python(loaded)
            _path = path
            _lib = loaded
    return _lib


def check_library_copies():
    """Loads the library if needed, then compares every file mapped into the
    process: another copy of libft_weave than the one this package uses is a
    DuplicateLibraryWarning (DuplicateLibraryError when
    FT_WEAVE_DUPLICATE=error). Returns the copies' paths, this package's first.
    Call it after loading extension modules (or code that dlopens the library)
    to check that they share the package's copy."""
    lib()
    files = _mapped_files()
    mapped = _mapping_at(ctypes.cast(_lib.weave_abi_version, ctypes.c_void_p).value, files)
    if mapped is None:  # no /proc: nothing to compare
        return [_path]
    return _check_copies(mapped[0], _path, files)


def _tell_python(loaded):
    """Hands this interpreter's thread-state functions (weave_set_python_api)
    and its PyErr_SetString and exception types (weave_set_python_errors) to
    the library, so that waits detach from it and the ft_utils helpers
    (_py_register_wvls_destructor) set exceptions even when the library
    could not find CPython by itself when it was loaded (a libpython loaded
    privately). The library never looks CPython up from a waiting path. Best
    effort: an older library, or a Python whose functions ctypes cannot see,
    just keeps what the library found at load time."""
    api = ctypes.pythonapi

    def address(name):
        return ctypes.cast(getattr(api, name), ctypes.c_void_p).value

    def thread_state_functions():
        if hasattr(api, "PyThreadState_GetUnchecked"):  # 3.13+
            get, check = address("PyThreadState_GetUnchecked"), None
        else:
            get, check = address("_PyThreadState_UncheckedGet"), address("PyGILState_Check")
        return weave_python_api_t(
            get, check, address("PyEval_SaveThread"), address("PyEval_RestoreThread"), address("Py_MakePendingCalls")
        )

    def error_functions():
        # CPython: id() is the object's address.
        return weave_python_errors_t(address("PyErr_SetString"), id(ValueError), id(MemoryError), id(RuntimeError))

    for name, make_table in (
        ("weave_set_python_api", thread_state_functions),
        ("weave_set_python_errors", error_functions),
    ):
        fn = getattr(loaded, name, None)
        if fn is None:
            continue
        try:
            table = make_table()
        except AttributeError:
            continue
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.POINTER(type(table))]
        fn(ctypes.byref(table))


def library_path():
    """The loaded library's path: the file this package loaded (FT_WEAVE_LIBRARY,
    a place next to the package or in a checkout, as named there), or the
    real file of a copy that was already loaded in the process or that the
    dynamic loader found."""
    lib()
    return _path


# --- prepared calls for the hot paths ----------------------------------------
#
# The classes in locks.py, parking.py and weave.py call the library through
# function pointers made once per process, not through the CDLL's attributes
# with argtypes: without argtypes ctypes does no per-argument conversion (the
# callers pass ctypes objects made once: byref() of the struct, c_int64
# constants), which halves the cost of a call. (weave.py passes ints, which
# c_void_p argtypes convert cheaply.)
#
# Calls that cannot wait for anything keep the GIL (PYFUNCTYPE): a trylock,
# a state read, a zero-timeout attempt, the destructor registry (the calling
# thread's own list). Releasing and re-taking the GIL would cost more than
# the call. Every call that may wait releases it (CFUNCTYPE, as ctypes does
# for every CDLL call), and so do the unlocks, notify and unpark: they may
# take a parking-lot bucket lock, which a thread can hold while it runs
# Python (an unpark callback made with ctypes), and that thread would then
# wait for the GIL (or, free-threaded, for this attached thread to pause)
# held by the one waiting for its bucket lock.

_KEEP_GIL = {
    # name: restype
    "weave_mutex_trylock": ctypes.c_int,
    "weave_mutex_is_locked": ctypes.c_int,
    "weave_event_is_set": ctypes.c_int,
    # Addresses arrive as Python ints: c_void_p argtypes convert them
    # faster than building c_void_p objects per call.
    "weave_register_destructor": (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p),
    "unregister_wvls_destructor": (ctypes.c_int, ctypes.c_void_p),
}
_RELEASE_GIL = {
    "weave_mutex_lock_timed": ctypes.c_int,
    "weave_mutex_unlock": ctypes.c_int,
    "weave_event_notify": None,
    "weave_event_wait_timed": ctypes.c_int,
    "weave_once_call": ctypes.c_int,
    "weave_park": ctypes.c_int,
    "weave_unpark": ctypes.c_int,
    "weave_unpark_all": ctypes.c_int,
    "weave_rwmutex_rlock_timed": ctypes.c_int,
    "weave_rwmutex_lock_timed": ctypes.c_int,
    "weave_rwmutex_runlock": ctypes.c_int,
    "weave_rwmutex_unlock": ctypes.c_int,
}
# Zero-timeout attempts of calls that may wait, keeping the GIL: with a
# timeout of 0 they neither wait nor wake anybody.
_TRY = {
    "weave_mutex_lock_timed": ctypes.c_int,  # debug mode: an attempt that records lock orders
    "weave_rwmutex_rlock_timed": ctypes.c_int,
    "weave_rwmutex_lock_timed": ctypes.c_int,
}

_calls = None


class _Calls:
    """Attribute per prepared call: ``calls().weave_mutex_trylock(ref)``;
    ``try_<name>`` for the GIL-keeping copies in _TRY."""


def calls():
    """The prepared function pointers (made on the first call)."""
    global _calls
    if _calls is not None:
        return _calls
    loaded = lib()
    made = _Calls()
    for table, factory, prefix in (
        (_KEEP_GIL, ctypes.PYFUNCTYPE, ""),
        (_RELEASE_GIL, ctypes.CFUNCTYPE, ""),
        (_TRY, ctypes.PYFUNCTYPE, "try_"),
    ):
        for name, types in table.items():
            if not isinstance(types, tuple):
                types = (types,)  # restype only: no argtypes
            address = ctypes.cast(getattr(loaded, name), ctypes.c_void_p).value
            setattr(made, prefix + name, factory(*types)(address))
    _calls = made
    return made


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
