"""Prints what CMake needs to know about the interpreter running this script,
one `key=value` line each (cmake/FtWeavePython.cmake reads them).

    tag          3.11, 3.13t (a trailing t: free-threaded build)
    executable   the interpreter's real path
    include      the directory with Python.h
    libpython    the shared libpython to embed, or "" when there is none
    ext_suffix   the file suffix of extension modules (.cpython-313t-x86_64-linux-gnu.so)
    free_threaded  1 or 0
    home         sys.base_prefix: PYTHONHOME for programs that embed it (a
                 relocated interpreter's libpython does not find its
                 standard library otherwise)

A relocated interpreter (a tarball extracted elsewhere) still reports the
prefix it was configured with in some sysconfig variables, so each path is
checked and, when missing, looked for under sys.base_prefix instead.
"""

import os
import sys
import sysconfig


def first_existing(*paths):
    for path in paths:
        if path and os.path.exists(path):
            return os.path.realpath(path)
    return ""


def main():
    cfg = sysconfig.get_config_var
    free = bool(cfg("Py_GIL_DISABLED"))
    tag = "%d.%d%s" % (sys.version_info[0], sys.version_info[1], "t" if free else "")
    base = sys.base_prefix
    incdir = sysconfig.get_paths().get("include") or ""
    include = first_existing(
        os.path.join(incdir, "Python.h") if incdir else "",
        os.path.join(base, "include", os.path.basename(incdir) if incdir else "", "Python.h"),
    )
    include = os.path.dirname(include) if include else ""
    ldlibrary = cfg("LDLIBRARY") or ""
    libpython = ""
    if ldlibrary.endswith(".so") or ".so." in ldlibrary:
        libpython = first_existing(
            os.path.join(cfg("LIBDIR") or "", ldlibrary),
            os.path.join(base, "lib", ldlibrary),
            os.path.join(cfg("LIBDIR") or "", cfg("MULTIARCH") or "", ldlibrary),
        )
    if not libpython:
        # A static interpreter (Debian's python3) embeds with the shared
        # libpython of the -dev package when there is one.
        name = "libpython%s%s.so" % (cfg("VERSION") or "", cfg("ABIFLAGS") or "")
        libpython = first_existing(
            os.path.join(cfg("LIBDIR") or "", name),
            os.path.join(cfg("LIBDIR") or "", cfg("MULTIARCH") or "", name),
            os.path.join(base, "lib", name),
        )
    print("tag=%s" % tag)
    print("executable=%s" % os.path.realpath(sys.executable))
    print("include=%s" % include)
    print("libpython=%s" % libpython)
    print("ext_suffix=%s" % (cfg("EXT_SUFFIX") or ".so"))
    print("free_threaded=%d" % free)
    print("home=%s" % base)


if __name__ == "__main__":
    main()
