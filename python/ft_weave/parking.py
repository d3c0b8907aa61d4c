"""The parking lot (ft_weave.h, section 3) on ctypes integers.

``park(word, expected)`` sleeps while ``word.value == expected``, keyed by the
ctypes object's address; ``unpark(word)`` wakes one waiter, ``unpark_all``
every one. ``word`` is an instance of a ctypes integer type of 1, 2, 4 or 8
bytes (``ctypes.c_uint8``, ``c_int32``, ``c_uint64``, ...), kept alive and
in place by the caller:

    flag = ctypes.c_uint32(1)
    # waiter                               # waker
    while flag.value == 1:                 flag.value = 0
        ft_weave.park(flag, 1)             ft_weave.unpark_all(flag)

The value check and the enqueue happen under the lot's bucket lock, as does
unpark, so a wake that follows a change of the value is never lost. The GIL
is released while parked (ctypes releases it around the call).
"""

import ctypes

from . import _native
from ._native import calls as _calls
from .locks import _FOREVER, _lock_timeout, _ns

__all__ = ["park", "unpark", "unpark_all", "PARK_OK", "PARK_AGAIN", "PARK_TIMEOUT", "PARK_INTR"]

PARK_OK = 0
PARK_AGAIN = -1
PARK_TIMEOUT = -2
PARK_INTR = -3

_NO_DETACH = ctypes.c_int(0)

_INTEGER_TYPES = tuple(
    t
    for t in (
        ctypes.c_int8, ctypes.c_uint8, ctypes.c_int16, ctypes.c_uint16,
        ctypes.c_int32, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64,
        ctypes.c_byte, ctypes.c_ubyte, ctypes.c_short, ctypes.c_ushort,
        ctypes.c_int, ctypes.c_uint, ctypes.c_long, ctypes.c_ulong,
        ctypes.c_longlong, ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_ssize_t,
    )
)


def _word(word):
    if not isinstance(word, _INTEGER_TYPES):
        raise TypeError("expected a ctypes integer instance (c_uint8, c_int32, ...), got %s" % type(word).__name__)
    return ctypes.byref(word)


def park(word, expected, timeout=-1, blocking=True):
    """Sleeps while ``word.value == expected``, with ``threading.Lock.acquire``'s
    rules for ``timeout`` and ``blocking``: -1 (the default) forever, 0 or
    ``blocking=False`` only checks, a positive number at most that many
    seconds; other negative values are ValueError. Returns PARK_OK (woken),
    PARK_AGAIN (the value differed: did not sleep), PARK_TIMEOUT or PARK_INTR
    (a signal interrupted the sleep; the caller re-checks and parks again)."""
    ref = _word(word)
    if timeout == -1 and blocking is True:
        ns = _FOREVER
    else:
        timeout = _lock_timeout(blocking, timeout)
        ns = _FOREVER if timeout == -1 else ctypes.c_int64(_ns(timeout))
    expected_value = type(word)(expected)
    result = _calls().weave_park(ref, ctypes.byref(expected_value), ctypes.c_size_t(ctypes.sizeof(word)), ns, None, _NO_DETACH)
    if result < PARK_INTR:
        _native.raise_for(result, "park")
    return result


def unpark(word):
    """Wakes the first thread parked on ``word``; True if one was woken."""
    result = _calls().weave_unpark(_word(word), None, None)
    if result < 0:
        _native.raise_for(result, "unpark")
    return result == 1


def unpark_all(word):
    """Wakes every thread parked on ``word``; returns how many."""
    result = _calls().weave_unpark_all(_word(word))
    if result < 0:
        _native.raise_for(result, "unpark_all")
    return result
