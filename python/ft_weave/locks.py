"""Python classes over ft_weave's locks (ft_weave.h, section 4).

Each object holds its C struct in ctypes memory, which never moves, or wraps
memory that C code owns (``from_address``), and calls the library through
function pointers prepared once per process (``_native.calls()``).

Waiting: the blocking calls release the GIL (ctypes' CFUNCTYPE), so a
blocked wait never stalls other Python threads, and they pass
WEAVE_LOCK_DONT_DETACH: the calling thread's state is not attached while
ctypes runs the call, so there is nothing for the library to detach. The
first attempt of every acquire is a non-blocking call that keeps the GIL,
which is what an uncontended acquire costs.

Ctrl-C (any Python signal handler on the main thread): ``Mutex.acquire`` and
the ``RWMutex`` acquires wait with WEAVE_LOCK_FAIL_IF_INTERRUPTED, so a
signal that interrupts the sleep returns to Python, which runs the handler
(raising KeyboardInterrupt there) or resumes the wait with the remaining
timeout, as ``threading.Lock`` does. ``Event.wait`` waits in slices of at
most 100 ms and checks for signals between them. ``Once.call`` has no timed
C API: a caller waiting for another thread's ``fn`` is not interruptible.

Timeouts follow ``threading.Lock.acquire``: ``blocking=True, timeout=-1``
(-1: forever), the same errors and messages for bad values.
"""

import ctypes
import operator
import threading
import time

from . import _native

__all__ = ["Mutex", "Event", "RWMutex", "Once"]

_EVENT_SLICE_NS = 100_000_000
_INT64_MAX = _native.INT64_MAX
_TIMEOUT_MAX = threading.TIMEOUT_MAX
_get_ident = threading.get_ident
_monotonic = time.monotonic
_c_int64 = ctypes.c_int64

# ctypes arguments made once (the prepared calls take no argtypes).
_FOREVER = ctypes.c_int64(-1)
_ZERO = ctypes.c_int64(0)
_INTERRUPTIBLE = ctypes.c_int(_native.WEAVE_LOCK_FAIL_IF_INTERRUPTED)
_DONT_DETACH = ctypes.c_int(_native.WEAVE_LOCK_DONT_DETACH)
_ACQUIRED = _native.WEAVE_LOCK_ACQUIRED
_FAILURE = _native.WEAVE_LOCK_FAILURE
_INTR = _native.WEAVE_LOCK_INTR
_NOT_OWNER = _native.WEAVE_E_NOT_OWNER

_c = None  # _native.calls(), set by _bind() before the first object exists


# True while the library's debug mode is on (ft_weave.debug): Mutex then
# makes its first attempt with a zero-timeout weave_mutex_lock_timed instead
# of weave_mutex_trylock, since a trylock records no lock order (it cannot
# wait) but Mutex.acquire is a blocking acquisition.
_checked = False


def _bind():
    global _c, _checked
    if _c is None:
        from . import debug

        _checked = debug.flags() != 0
        _c = _native.calls()


def _mutex_try(ref):
    if _checked:
        return _c.try_weave_mutex_lock_timed(ref, _ZERO, _DONT_DETACH) == _ACQUIRED
    return _c.weave_mutex_trylock(ref)


# --- threading-style argument rules ------------------------------------------


def _seconds(timeout):
    """A timeout as a number, with the errors threading.Lock.acquire gives
    (TypeError "'str' object cannot be interpreted as an integer", ValueError
    for NaN)."""
    if type(timeout) is not float and type(timeout) is not int:
        if isinstance(timeout, float):
            timeout = float(timeout)
        else:
            timeout = operator.index(timeout)
    if timeout != timeout:
        raise ValueError("Invalid value NaN (not a number)")
    return timeout


def _lock_timeout(blocking, timeout):
    """threading.Lock.acquire's rules: -1 (forever), 0 (one attempt) or a
    positive number of seconds."""
    if timeout == -1:
        return -1 if blocking else 0
    timeout = _seconds(timeout)
    if not blocking:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0:
        raise ValueError("timeout value must be a non-negative number")
    if timeout > _TIMEOUT_MAX:
        raise OverflowError("timeout value is too large")
    return timeout


def _ns(seconds):
    ns = int(seconds * 1e9)
    return _INT64_MAX if ns > _INT64_MAX else (ns if ns > 0 else 0)


def _wait(call, ref, timeout, what):
    """Runs a WEAVE_LOCK_FAIL_IF_INTERRUPTED timed acquire until it succeeds
    or times out; between interrupted waits Python runs its signal handlers
    (which may raise). `timeout` is -1 or seconds > 0."""
    deadline = None if timeout == -1 else _monotonic() + timeout
    while True:
        ns = _FOREVER if deadline is None else _c_int64(_ns(deadline - _monotonic()))
        status = call(ref, ns, _INTERRUPTIBLE)
        if status == _ACQUIRED:
            return True
        if status == _FAILURE:
            return False
        if status != _INTR:
            _native.raise_for(status, what)
        # Interrupted by a signal: the loop's next iteration lets Python run
        # its handlers, then waits again with what is left of the timeout.


def _check_address(cls, address):
    if isinstance(address, bool):
        raise TypeError("address must be an int, not bool")
    address = operator.index(address)
    if address <= 0 or address >= 1 << (8 * ctypes.sizeof(ctypes.c_void_p)):
        raise ValueError("%s.from_address: not a valid address: %#x" % (cls.__name__, address))
    alignment = ctypes.alignment(cls._ctype)
    if address % alignment:
        raise ValueError(
            "%s.from_address: %#x is not aligned for %s (%d bytes)"
            % (cls.__name__, address, cls._ctype.__name__, alignment)
        )
    return address


class _Primitive:
    """What every lock-like class shares: the C struct, ``address``,
    ``from_address``, refusal of copies and pickling, the repr."""

    __slots__ = ("_s", "_ref", "_owner", "__weakref__")
    _ctype = None

    def __init__(self):
        if _c is None:
            _bind()
        self._s = self._ctype()
        self._ref = ctypes.byref(self._s)
        self._owner = None
        self._init_state()

    def _init_state(self):
        pass

    @classmethod
    def from_address(cls, address, owner=None):
        """Wraps a C struct that other code owns, at ``address`` (an int:
        ``ctypes.addressof(...)``, a pointer a C function returned).

        The memory must hold a zero-initialised or valid struct of the
        class's C type, suitably aligned, and stay valid and in place for as
        long as the returned object is used; the object never frees it. The
        object keeps a reference to ``owner`` (any object: the ctypes buffer,
        the ``CDLL`` whose global it is, a capsule) so that passing the owner
        of the memory ties its lifetime to the wrapper; without one, the
        memory's lifetime is the caller's responsibility."""
        if _c is None:
            _bind()
        address = _check_address(cls, address)
        self = cls.__new__(cls)
        self._s = cls._ctype.from_address(address)
        self._ref = ctypes.byref(self._s)
        self._owner = owner
        self._init_state()
        return self

    @property
    def address(self):
        """The address of the C struct (an int), to share the lock with C
        code. Valid while this object (or, for ``from_address``, the memory's
        owner) is alive."""
        return ctypes.addressof(self._s)

    def _refuse(self, what):
        raise TypeError(
            "cannot %s '%s.%s' object: a lock is its memory; share the object itself "
            "(or its .address with C code)" % (what, __package__, type(self).__name__)
        )

    def __copy__(self):
        self._refuse("copy")

    def __deepcopy__(self, memo):
        self._refuse("copy")

    def __reduce_ex__(self, protocol):
        self._refuse("pickle")

    def __reduce__(self):
        self._refuse("pickle")

    def _state(self):
        raise NotImplementedError

    def __repr__(self):
        return "<%s.%s object at %#x: %s, address %#x>" % (
            __package__,
            type(self).__name__,
            id(self),
            self._state(),
            ctypes.addressof(self._s),
        )


class Mutex(_Primitive):
    """A two-byte ``weave_mutex_t``: like ``threading.Lock`` (not reentrant,
    no owner: any thread may release it), fair after 1 ms of waiting."""

    __slots__ = ()
    _ctype = _native.weave_mutex_t

    def acquire(self, blocking=True, timeout=-1):
        """``threading.Lock.acquire``: True when acquired, False on timeout
        (or busy when not blocking)."""
        if timeout == -1 and blocking is True:
            if (_mutex_try(self._ref) if _checked else _c.weave_mutex_trylock(self._ref)):
                return True
            return _wait(_c.weave_mutex_lock_timed, self._ref, -1, "Mutex.acquire")
        timeout = _lock_timeout(blocking, timeout)
        if (_mutex_try(self._ref) if _checked else _c.weave_mutex_trylock(self._ref)):
            return True
        if timeout == 0:
            return False
        return _wait(_c.weave_mutex_lock_timed, self._ref, timeout, "Mutex.acquire")

    def __enter__(self):
        if (_mutex_try(self._ref) if _checked else _c.weave_mutex_trylock(self._ref)):
            return True
        return _wait(_c.weave_mutex_lock_timed, self._ref, -1, "Mutex.acquire")

    def release(self):
        code = _c.weave_mutex_unlock(self._ref)
        if code:
            self._release_failed(code)

    def __exit__(self, t, v, tb):
        code = _c.weave_mutex_unlock(self._ref)
        if code:
            self._release_failed(code)

    def _release_failed(self, code):
        if code == _NOT_OWNER:
            raise RuntimeError("release unlocked lock")
        _native.raise_for(code, "Mutex.release")

    def locked(self):
        return _c.weave_mutex_is_locked(self._ref) == 1

    def _state(self):
        return "locked" if self.locked() else "unlocked"


class Event(_Primitive):
    """A one-byte one-shot ``weave_event_t``: once set it stays set (there is
    no ``clear``, unlike ``threading.Event``)."""

    __slots__ = ()
    _ctype = _native.weave_event_t

    def set(self):
        _c.weave_event_notify(self._ref)

    def is_set(self):
        return _c.weave_event_is_set(self._ref) == 1

    def wait(self, timeout=None):
        """Waits until set, at most ``timeout`` seconds (None: forever; a
        negative timeout, as in ``threading.Event``, only checks). Returns
        True if the event is set, False on timeout."""
        if _c.weave_event_is_set(self._ref):
            return True
        if timeout is None:
            deadline = None
        else:
            timeout = _seconds(timeout)
            if timeout > _TIMEOUT_MAX:
                raise OverflowError("timeout value is too large")
            deadline = _monotonic() + (timeout if timeout > 0 else 0)
        wait_timed = _c.weave_event_wait_timed
        ref = self._ref
        while True:
            if deadline is None:
                ns = _EVENT_SLICE_NS
            else:
                ns = min(_EVENT_SLICE_NS, _ns(deadline - _monotonic()))
            result = wait_timed(ref, _c_int64(ns), _DONT_DETACH)
            if result == 1:
                return True
            if result < 0:
                _native.raise_for(result, "Event.wait")
            if deadline is not None and _monotonic() >= deadline:
                return _c.weave_event_is_set(ref) == 1

    def _state(self):
        return "set" if self.is_set() else "unset"


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


class RWMutex(_Primitive):
    """A one-word writer-preferring ``weave_rwmutex_t``: many readers or one
    writer. Use ``with rw.read():`` / ``with rw.write():``, or the
    ``acquire_*`` methods with ``threading.Lock``'s ``blocking`` and
    ``timeout``. Not reentrant: a thread that already reads must not take
    the read lock again (a waiting writer would block it, and the writer
    waits for it).

    Ownership is tracked per thread on the Python side: ``release_read``
    and ``release_write`` raise ``RuntimeError`` in a thread that did not
    acquire through this object. (The C lock only counts readers; it cannot
    tell which thread holds a read lock.)"""

    __slots__ = ("_readers", "_writer")
    _ctype = _native.weave_rwmutex_t

    def _init_state(self):
        self._readers = {}  # thread ident -> read locks it holds through this object
        self._writer = None  # thread ident of the writer, through this object

    def acquire_read(self, blocking=True, timeout=-1):
        """Takes a read lock: True when acquired, False on timeout."""
        if not (timeout == -1 and blocking is True):
            timeout = _lock_timeout(blocking, timeout)
        if _c.try_weave_rwmutex_rlock_timed(self._ref, _ZERO, _DONT_DETACH) != _ACQUIRED:
            if timeout == 0 or not _wait(_c.weave_rwmutex_rlock_timed, self._ref, timeout, "RWMutex.acquire_read"):
                return False
        readers = self._readers
        ident = _get_ident()
        readers[ident] = readers.get(ident, 0) + 1
        return True

    def release_read(self):
        readers = self._readers
        ident = _get_ident()
        held = readers.get(ident, 0)
        if not held:
            raise RuntimeError("release_read: this thread holds no read lock of this RWMutex")
        code = _c.weave_rwmutex_runlock(self._ref)
        if code:
            if code == _NOT_OWNER:
                raise RuntimeError("release_read: the RWMutex is not read-locked")
            _native.raise_for(code, "RWMutex.release_read")
        if held == 1:
            del readers[ident]
        else:
            readers[ident] = held - 1

    def acquire_write(self, blocking=True, timeout=-1):
        """Takes the write lock: True when acquired, False on timeout."""
        if not (timeout == -1 and blocking is True):
            timeout = _lock_timeout(blocking, timeout)
        if _c.try_weave_rwmutex_lock_timed(self._ref, _ZERO, _DONT_DETACH) != _ACQUIRED:
            if timeout == 0 or not _wait(_c.weave_rwmutex_lock_timed, self._ref, timeout, "RWMutex.acquire_write"):
                return False
        self._writer = _get_ident()
        return True

    def release_write(self):
        if self._writer != _get_ident():
            raise RuntimeError("release_write: this thread does not hold the write lock of this RWMutex")
        # Cleared before the unlock: once unlocked, another writer may set it.
        self._writer = None
        code = _c.weave_rwmutex_unlock(self._ref)
        if code:
            if code == _NOT_OWNER:
                raise RuntimeError("release_write: the RWMutex is not write-locked")
            _native.raise_for(code, "RWMutex.release_write")

    def read(self):
        """A context manager: ``acquire_read()`` on entry, ``release_read()`` on exit."""
        return _Guard(self.acquire_read, self.release_read)

    def write(self):
        """A context manager: ``acquire_write()`` on entry, ``release_write()`` on exit."""
        return _Guard(self.acquire_write, self.release_write)

    @property
    def readers(self):
        """Readers holding the lock now (a snapshot): those counted in the
        word plus those holding it through the reader-bias table (committed
        slots of the lock's stripe: they name the lock and an owner)."""
        counted = (self._s.bits & ~_native.RWMUTEX_READER_BIAS) >> 2
        address = ctypes.addressof(self._s)
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
        return bool(self._s.bits & 1)

    def _state(self):
        bits = self._s.bits
        if bits & 1:
            state = "write-locked"
        elif bits >> 2:
            state = "read-locked by %d" % (bits >> 2)
        else:
            state = "unlocked"
        return state + (", waiters" if bits & 2 else "")


_UNSET = object()


class Once(_Primitive):
    """A one-byte ``weave_once_t``: ``call(fn)`` runs ``fn`` once per object
    and returns its result to every caller. While one thread runs it, other
    callers wait; if it raises, the flag resets, the exception propagates to
    that caller, and the next (or a waiting) caller runs its own ``fn``."""

    __slots__ = ("_result",)
    _ctype = _native.weave_once_t

    def _init_state(self):
        self._result = _UNSET

    @property
    def done(self):
        return self._s.v == _native.WEAVE_ONCE_DONE

    def call(self, fn, *args, **kwargs):
        """Runs ``fn(*args, **kwargs)`` unless a call already succeeded, and
        returns the result of the call that succeeded (this one or an earlier
        one; the object keeps it). A flag completed by other code (C, another
        wrapper of the same address) has no result here: None.

        A call from inside ``fn`` on the same object raises RuntimeError
        instead of waiting for itself forever."""
        result = self._result
        if result is not _UNSET:
            return result
        failure = []

        def trampoline(_arg):
            try:
                value = fn(*args, **kwargs)
            except BaseException as e:  # noqa: B902 - re-raised below
                failure.append(e)
                return -1
            # Stored before the flag is marked done (which follows the
            # return), so a caller that sees the flag done finds the result.
            self._result = value
            return 0

        callback = _native.weave_once_fn(trampoline)
        code = _c.weave_once_call(self._ref, callback, None)
        if failure:
            raise failure[0]
        if code == _native.WEAVE_E_DEADLOCK:
            raise RuntimeError(
                "Once.call: called from inside fn on the same Once (it would wait for itself forever)"
            )
        if code != 0:
            _native.raise_for(code, "Once.call")
        result = self._result
        return None if result is _UNSET else result

    def _state(self):
        v = self._s.v
        if v == _native.WEAVE_ONCE_DONE:
            return "done"
        return "running" if v & 1 else "not done"
