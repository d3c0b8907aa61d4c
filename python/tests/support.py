"""Shared helpers of the ft_weave unittest suite."""

import ctypes
import os
import threading
import time

WAIT_LIMIT = 10.0  # seconds: every wait in the suite is bounded


def helper_library():
    """The C helper (weave_test_helper.c), built by CMake; CTest passes its path."""
    path = os.environ.get("FT_WEAVE_TEST_HELPER")
    if not path:
        raise RuntimeError(
            "FT_WEAVE_TEST_HELPER is not set: run the suite through CTest "
            "(ctest -R python_unittest), which builds and passes the helper library"
        )
    lib = ctypes.CDLL(path)
    for name in ("get_destructor_called_1", "get_destructor_called_2"):
        getattr(lib, name).restype = ctypes.c_int
        getattr(lib, name).argtypes = []
    lib.reset.restype = None
    lib.reset.argtypes = []
    return lib


def function_address(lib, name):
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def variable_address(lib, name):
    return ctypes.addressof(ctypes.c_void_p.in_dll(lib, name))


def wait_for_native_exit(native_id, limit=WAIT_LIMIT):
    """Before Python 3.13, Thread.join() returns before the native thread has
    finished (and so before its thread-exit destructors ran): wait until the
    thread's id leaves /proc/self/task. Returns False after `limit` seconds."""
    deadline = time.monotonic() + limit
    path = "/proc/self/task/%d" % native_id
    while os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def run_thread(target):
    """Runs `target` on a new thread, joins it and waits for its native exit."""
    ids = []
    errors = []

    def body():
        ids.append(threading.get_native_id())
        try:
            target()
        except BaseException as e:  # reported by the caller
            errors.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join(WAIT_LIMIT)
    if t.is_alive():
        raise AssertionError("thread did not finish within %s s" % WAIT_LIMIT)
    if errors:
        raise errors[0]
    if not wait_for_native_exit(ids[0]):
        raise AssertionError("native thread %d did not exit within %s s" % (ids[0], WAIT_LIMIT))
