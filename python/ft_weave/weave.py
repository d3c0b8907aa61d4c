"""Thread-exit destructors for native thread-local variables.

Drop-in for ``ft_utils.weave``: register a C function to run with a native
``void *`` variable's value when the *calling* thread exits. Both functions
take addresses as Python ints (``ctypes.addressof``, ``ctypes.cast(fn,
ctypes.c_void_p).value``) and are gated by ``ft_weave.ENABLE_EXPERIMENTAL``.

Differences from ft_utils (docs/python.md lists each): the gate is checked
on every call (ft_utils stops checking after the first success); registering
refuses what ft_utils stored and then crashed on or skipped at thread exit:
bools (TypeError), 0 and negative addresses (ValueError); keywords are
accepted; no Python version requirement (ft_utils needs 3.13). Unregistering
takes what ft_utils takes (0, negative values and bools included: False).
The destructor runs at native thread exit and must not call into Python:
pass a C function, never a ctypes callback.
"""

import ctypes
import sys

from . import _native

# The package: ENABLE_EXPERIMENTAL is read from it on every call. It is in
# sys.modules already while its __init__ imports this module.
_package = sys.modules[__name__.rpartition(".")[0]]

_POINTER_BITS = 8 * ctypes.sizeof(ctypes.c_void_p)
_POINTER_MAX = (1 << _POINTER_BITS) - 1
_SIGNED_MIN = -(1 << (_POINTER_BITS - 1))

_register = None
_unregister = None


def _bind():
    global _register, _unregister
    calls = _native.calls()
    _register = calls.weave_register_destructor
    _unregister = calls.unregister_wvls_destructor


def _disabled():
    return RuntimeError("Experimental support not enabled for ft_weave")


def _not_int(value):
    return TypeError("an integer is required, not %s" % type(value).__name__)


def _register_slow(var, destructor):
    """The checks of register_native_destructor when the fast path's do not
    hold: which argument is wrong, and how."""
    for value in (var, destructor):
        if type(value) is bool or not isinstance(value, int):
            # bool: ft_utils takes True as address 1 and crashes at thread exit.
            raise _not_int(value)
    for name, value in (("var", var), ("destructor", destructor)):
        if value <= 0:
            raise ValueError("%s must be a positive address, got %d" % (name, value))
        if value > _POINTER_MAX:
            raise OverflowError("%s does not fit in a pointer: %d" % (name, value))
    return int(var), int(destructor)


def register_native_destructor(var: int, destructor: int) -> None:
    """Register a native C ABI destructor for native thread local storage.

    ``destructor(*var)`` runs when the calling thread exits, with ``*var`` read
    at that moment. Registering twice runs twice.
    """
    if not _package.ENABLE_EXPERIMENTAL:
        raise _disabled()
    # The common case costs two type checks and two comparisons each; the
    # library validates again (NULL -> WEAVE_E_INVALID).
    if not (type(var) is int and type(destructor) is int
            and 0 < var <= _POINTER_MAX and 0 < destructor <= _POINTER_MAX):
        var, destructor = _register_slow(var, destructor)
    if _register is None:
        _bind()
    code = _register(var, destructor)
    if code:
        _native.raise_for(code, "register_native_destructor")


def unregister_native_destructor(var: int) -> bool:
    """Unregister every destructor registered for ``var`` on the calling thread;
    True if any was removed. As ft_utils: any int that fits a pointer (signed
    or unsigned), 0 and negative values included, which were never registered
    (False)."""
    if not _package.ENABLE_EXPERIMENTAL:
        raise _disabled()
    if type(var) is not int:
        if not isinstance(var, int):
            raise _not_int(var)
        var = int(var)
    if var <= 0:
        if var < _SIGNED_MIN:
            raise OverflowError("var does not fit in a pointer: %d" % var)
        return False  # never registered: register refuses 0 and negative values
    if var > _POINTER_MAX:
        raise OverflowError("var does not fit in a pointer: %d" % var)
    if _unregister is None:
        _bind()
    # unregister_wvls_destructor (the ft_utils name) returns 1 or 0, never an error.
    return _unregister(var) == 1
