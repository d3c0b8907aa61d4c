"""Thread-exit destructors for native thread-local variables.

Drop-in for ``ft_utils.weave``: register a C function to run with a native
``void *`` variable's value when the *calling* thread exits. Both functions
take addresses as Python ints (``ctypes.addressof``, ``ctypes.cast(fn,
ctypes.c_void_p).value``) and are gated by ``ft_weave.ENABLE_EXPERIMENTAL``.

Differences from ft_utils: the gate is checked on every call (ft_utils
stops checking after the first success); 0 and negative addresses raise
``ValueError`` (ft_utils stored them and crashed at thread exit); no
Python version requirement (ft_utils needs 3.13). The destructor runs at
native thread exit and must not call into Python: pass a C function, never
a ctypes callback.
"""

import operator
import sys

from . import _native

_POINTER_MAX = 2 ** (8 * _native.ctypes.sizeof(_native.ctypes.c_void_p)) - 1


def _check_enabled():
    package = sys.modules[__name__.rpartition(".")[0]]
    if not getattr(package, "ENABLE_EXPERIMENTAL", False):
        raise RuntimeError("Experimental support not enabled for ft_weave")


def _address(value, what):
    if isinstance(value, bool):
        raise TypeError("%s must be an int address, not bool" % what)
    try:
        address = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an int address, not %s" % (what, type(value).__name__)) from None
    if address <= 0:
        raise ValueError("%s must be a positive address, got %d" % (what, address))
    if address > _POINTER_MAX:
        raise OverflowError("%s does not fit in a pointer: %d" % (what, address))
    return address


def register_native_destructor(var: int, destructor: int) -> None:
    """Register a native C ABI destructor for native thread local storage.

    ``destructor(*var)`` runs when the calling thread exits, with ``*var`` read
    at that moment. Registering twice runs twice.
    """
    _check_enabled()
    var = _address(var, "var")
    destructor = _address(destructor, "destructor")
    lib = _native.lib()
    code = lib.weave_register_destructor(var, destructor)
    if code != 0:
        _native.raise_for(code, "register_native_destructor")


def unregister_native_destructor(var: int) -> bool:
    """Unregister every destructor registered for ``var`` on the calling thread;
    True if any was removed."""
    _check_enabled()
    var = _address(var, "var")
    code = _native.lib().weave_unregister_destructor(var)
    if code < 0:
        _native.raise_for(code, "unregister_native_destructor")
    return code == 1
