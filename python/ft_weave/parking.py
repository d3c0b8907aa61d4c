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

__all__ = ["park", "unpark", "unpark_all", "PARK_OK", "PARK_AGAIN", "PARK_TIMEOUT", "PARK_INTR"]

PARK_OK = 0
PARK_AGAIN = -1
PARK_TIMEOUT = -2
PARK_INTR = -3

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
    return ctypes.addressof(word)


def park(word, expected, timeout=None):
    """Sleeps while ``word.value == expected``, at most ``timeout`` seconds
    (None: forever; 0: check only). Returns PARK_OK (woken), PARK_AGAIN (the
    value differed: did not sleep), PARK_TIMEOUT or PARK_INTR (a signal
    interrupted the sleep; the caller re-checks and parks again)."""
    address = _word(word)
    expected_value = type(word)(expected)
    if timeout is None:
        ns = -1
    else:
        ns = max(0, _native.timeout_ns(timeout))
    result = _native.lib().weave_park(address, ctypes.addressof(expected_value), ctypes.sizeof(word), ns, None, 0)
    if result < PARK_INTR:
        _native.raise_for(result, "park")
    return result


def unpark(word):
    """Wakes the first thread parked on ``word``; True if one was woken."""
    result = _native.lib().weave_unpark(_word(word), None, None)
    if result < 0:
        _native.raise_for(result, "unpark")
    return result == 1


def unpark_all(word):
    """Wakes every thread parked on ``word``; returns how many."""
    result = _native.lib().weave_unpark_all(_word(word))
    if result < 0:
        _native.raise_for(result, "unpark_all")
    return result
