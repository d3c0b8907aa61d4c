"""Python classes over ft_weave's locks (ft_weave.h, section 4).

Each object holds its C struct in ctypes memory, which never moves, and
calls the exported functions. ctypes releases the GIL around every foreign
call, so a blocked wait never stalls other Python threads. For the same
reason the waits pass WEAVE_LOCK_DONT_DETACH: the calling thread has already
given up the GIL (its thread state is not attached while ctypes runs the
call), so there is nothing for the library to detach.

Ctrl-C (any Python signal handler on the main thread): ``Mutex.acquire``
waits with WEAVE_LOCK_FAIL_IF_INTERRUPTED, so a signal that interrupts the
sleep returns to Python, which runs the handler (raising KeyboardInterrupt
there) or resumes the wait with the remaining timeout, as ``threading.Lock``
does. ``Event.wait`` waits in slices of at most 100 ms and checks for
signals between them. ``RWMutex`` and ``Once`` have no timed C API: their
waits are not interruptible.
"""

import ctypes
import threading
import time

from . import _native

__all__ = ["Mutex", "Event", "RWMutex", "Once"]

_EVENT_SLICE_NS = 100_000_000


def _deadline(blocking, timeout):
    """threading.Lock's argument rules; returns None (forever) or a
    time.monotonic() deadline."""
    if not blocking:
        if timeout != -1:
            raise ValueError("can't specify a timeout for a non-blocking call")
        return time.monotonic()
    if timeout == -1:
        return None
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")
    return time.monotonic() + timeout


class Mutex:
    """A one-byte ``weave_mutex_t``: like ``threading.Lock`` (not reentrant,
    no owner: any thread may release it), fair after 1 ms of waiting."""

    __slots__ = ("_m", "_ref", "__weakref__")

    def __init__(self):
        self._m = _native.weave_mutex_t()
        self._ref = ctypes.byref(self._m)
        _native.lib()

    def acquire(self, blocking=True, timeout=-1):
        """Returns True when acquired, False on timeout (or busy when not blocking)."""
        lib = _native.lib()
        deadline = _deadline(blocking, timeout)
        if not blocking:
            return lib.weave_mutex_trylock(self._ref) == 1
        while True:
            if deadline is None:
                ns = -1
            else:
                ns = max(0, _native.timeout_ns(deadline - time.monotonic()))
            status = lib.weave_mutex_lock_timed(self._ref, ns, _native.WEAVE_LOCK_FAIL_IF_INTERRUPTED)
            if status == _native.WEAVE_LOCK_ACQUIRED:
                return True
            if status == _native.WEAVE_LOCK_FAILURE:
                return False
            if status != _native.WEAVE_LOCK_INTR:
                _native.raise_for(status, "Mutex.acquire")
            # Interrupted by a signal: the loop's next iteration lets Python
            # run its handlers (which may raise), then waits again.

    def release(self):
        code = _native.lib().weave_mutex_unlock(self._ref)
        if code == _native.WEAVE_E_NOT_OWNER:
            raise RuntimeError("release unlocked lock")
        if code != 0:
            _native.raise_for(code, "Mutex.release")

    def locked(self):
        return _native.lib().weave_mutex_is_locked(self._ref) == 1

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        return "<%s.%s object at %#x %s>" % (
            __package__,
            type(self).__name__,
            id(self),
            "locked" if self.locked() else "unlocked",
        )


class Event:
    """A one-byte one-shot ``weave_event_t``: once set it stays set (there is
    no ``clear``, unlike ``threading.Event``)."""

    __slots__ = ("_e", "_ref", "__weakref__")

    def __init__(self):
        self._e = _native.weave_event_t()
        self._ref = ctypes.byref(self._e)
        _native.lib()

    def set(self):
        _native.lib().weave_event_notify(self._ref)

    def is_set(self):
        return _native.lib().weave_event_is_set(self._ref) == 1

    def wait(self, timeout=None):
        """Waits until set, at most ``timeout`` seconds (None: forever).
        Returns True if the event is set, False on timeout."""
        lib = _native.lib()
        if timeout is not None and timeout < 0:
            timeout = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                ns = _EVENT_SLICE_NS
            else:
                ns = min(_EVENT_SLICE_NS, max(0, _native.timeout_ns(deadline - time.monotonic())))
            result = lib.weave_event_wait_timed(self._ref, ns, _native.WEAVE_LOCK_DONT_DETACH)
            if result == 1:
                return True
            if result < 0:
                _native.raise_for(result, "Event.wait")
            if deadline is not None and time.monotonic() >= deadline:
                return lib.weave_event_is_set(self._ref) == 1


class _Guard:
    __slots__ = ("_acquire", "_release")

    def __init__(self, acquire, release):
        self._acquire = acquire
        self._release = release

    def __enter__(self):
        self._acquire()
        return self

    def __exit__(self, *exc):
        self._release()


class RWMutex:
    """A one-word writer-preferring ``weave_rwmutex_t``: many readers or one
    writer. Use ``with rw.read():`` / ``with rw.write():``."""

    __slots__ = ("_rw", "_ref", "__weakref__")

    def __init__(self):
        self._rw = _native.weave_rwmutex_t()
        self._ref = ctypes.byref(self._rw)
        _native.lib()

    def acquire_read(self):
        _native.lib().weave_rwmutex_rlock(self._ref)

    def release_read(self):
        code = _native.lib().weave_rwmutex_runlock(self._ref)
        if code == _native.WEAVE_E_NOT_OWNER:
            raise RuntimeError("release of a read lock that is not held")
        if code != 0:
            _native.raise_for(code, "RWMutex.release_read")

    def acquire_write(self):
        _native.lib().weave_rwmutex_lock(self._ref)

    def release_write(self):
        code = _native.lib().weave_rwmutex_unlock(self._ref)
        if code == _native.WEAVE_E_NOT_OWNER:
            raise RuntimeError("release of a write lock that is not held")
        if code != 0:
            _native.raise_for(code, "RWMutex.release_write")

    def read(self):
        return _Guard(self.acquire_read, self.release_read)

    def write(self):
        return _Guard(self.acquire_write, self.release_write)

    @property
    def readers(self):
        """Readers holding the lock now (a snapshot): those counted in the
        word plus those holding it through the reader-bias table (committed
        slots of the lock's stripe: they name the lock and an owner)."""
        counted = (self._rw.bits & ~_native.RWMUTEX_READER_BIAS) >> 2
        address = ctypes.addressof(self._rw)
        stripe = ((address * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 58
        table = _native.lib().weave__rwmutex_readers()
        first = stripe * _native.RWMUTEX_STRIPE_SLOTS
        biased = 0
        for i in range(first, first + _native.RWMUTEX_STRIPE_SLOTS):
            slot = table[i]
            if slot.lock == address and slot.owner != 0:
                biased += 1
        return counted + biased

    @property
    def write_locked(self):
        return bool(self._rw.bits & 1)


class Once:
    """A one-byte ``weave_once_t``: ``call(fn)`` runs ``fn`` once per object.
    While one thread runs it, other callers wait; if it raises, the flag
    resets, the exception propagates to that caller, and the next (or a
    waiting) caller runs its own ``fn``."""

    __slots__ = ("_o", "_ref", "__weakref__")

    def __init__(self):
        self._o = _native.weave_once_t()
        self._ref = ctypes.byref(self._o)
        _native.lib()

    @property
    def done(self):
        return self._o.v == 4  # WEAVE_ONCE_DONE

    def call(self, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` unless a call already succeeded.
        Returns True if this call ran it, False if it was already done."""
        if self.done:
            return False
        ran = []
        failure = []

        def trampoline(_arg):
            ran.append(True)
            try:
                fn(*args, **kwargs)
            except BaseException as e:  # noqa: B902 - re-raised below
                failure.append(e)
                return -1
            return 0

        callback = _native.weave_once_fn(trampoline)
        result = _native.lib().weave_once_call(self._ref, callback, None)
        if failure:
            raise failure[0]
        if result != 0:
            _native.raise_for(result, "Once.call")
        return bool(ran)
