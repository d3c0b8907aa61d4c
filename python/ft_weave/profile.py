"""The contention profile (ft_weave.h, "Diagnostics: contention profile").

``profile_start()``, ``profile_stop()``, ``profile_write(path)`` and
``set_profile_rate(n)`` call the weave_profile_* functions; ``contention()``
returns what was recorded as rows, the hottest (longest total wait) first.
Addresses are return addresses in the process; ``describe(address)`` names
one ("symbol+0xoff" or "file+0xoff") with dladdr.
"""

import collections
import ctypes
import os

from . import _native

__all__ = ["ContentionRow", "contention", "describe", "profile_start", "profile_stop", "profile_write",
           "set_profile_rate"]

ContentionRow = collections.namedtuple(
    "ContentionRow", ["lock", "wait_site", "release_site", "count", "total_ns", "max_ns"])
ContentionRow.__doc__ = """One row: waits for `lock` at `wait_site` ended by the unlock at
`release_site` (return addresses, 0 when unknown); `count` waits, `total_ns`
in all (both scaled by the sampling rate), the longest `max_ns`."""


class weave_profile_row_t(ctypes.Structure):
    _fields_ = [
        ("lock_address", ctypes.c_size_t),
        ("wait_site", ctypes.c_size_t),
        ("release_site", ctypes.c_size_t),
        ("count", ctypes.c_uint64),
        ("total_ns", ctypes.c_uint64),
        ("max_ns", ctypes.c_uint64),
    ]


_WEAVE_E_INVALID = -101
_bound = None


def _lib():
    global _bound
    lib = _native.lib()
    if _bound is not lib:
        for name, restype, argtypes in (
            ("weave_profile_start", ctypes.c_int, []),
            ("weave_profile_stop", ctypes.c_int, []),
            ("weave_profile_write", ctypes.c_int, [ctypes.c_char_p]),
            ("weave_profile_set_rate", ctypes.c_int, [ctypes.c_int]),
            ("weave_profile_rows", ctypes.c_int, [ctypes.POINTER(weave_profile_row_t), ctypes.c_size_t]),
        ):
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _bound = lib
    return lib


def _check(lib, rc, what):
    if rc >= 0:
        return rc
    message = "%s: %s" % (what, lib.weave_last_error().decode("utf-8", "replace"))
    if rc == _WEAVE_E_INVALID:
        raise ValueError(message)
    raise RuntimeError(message)


def profile_start():
    """Starts recording into an empty profile (RuntimeError if already running)."""
    lib = _lib()
    _check(lib, lib.weave_profile_start(), "profile_start")


def profile_stop():
    """Stops recording; what was recorded stays readable (RuntimeError if not running)."""
    lib = _lib()
    _check(lib, lib.weave_profile_stop(), "profile_stop")


def profile_write(path):
    """Writes the profile to `path` (pprof format: ``go tool pprof -top PATH``)."""
    lib = _lib()
    _check(lib, lib.weave_profile_write(os.fsencode(path)), "profile_write")


def set_profile_rate(n):
    """Records 1 in `n` waits from now on; returns the previous rate."""
    lib = _lib()
    return _check(lib, lib.weave_profile_set_rate(int(n)), "set_profile_rate")


def contention():
    """The recorded rows (list of ContentionRow), longest total wait first."""
    lib = _lib()
    while True:
        n = _check(lib, lib.weave_profile_rows(None, 0), "contention")
        if n == 0:
            return []
        buffer = (weave_profile_row_t * (n + 16))()
        got = _check(lib, lib.weave_profile_rows(buffer, len(buffer)), "contention")
        if got <= len(buffer):
            break
    rows = [ContentionRow(r.lock_address, r.wait_site, r.release_site, r.count, r.total_ns, r.max_ns)
            for r in buffer[:got]]
    rows.sort(key=lambda r: r.total_ns, reverse=True)
    return rows


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def describe(address):
    """"symbol+0xoff" or "file+0xoff" for a return address (of the call before it)."""
    if not address:
        return "(unknown)"
    libc = ctypes.CDLL(None)
    dladdr = libc.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    pc = address - 1
    if not dladdr(pc, ctypes.byref(info)):
        return "%#x" % pc
    if info.dli_sname:
        return "%s+%#x" % (info.dli_sname.decode("utf-8", "replace"), pc - (info.dli_saddr or 0))
    name = os.path.basename(info.dli_fname.decode("utf-8", "replace")) if info.dli_fname else "?"
    return "%s+%#x" % (name, pc - (info.dli_fbase or 0))
