"""Imports an installed ft_weave (pip) and checks where the
package and its library came from, then uses it.

    check_package.py --package-dir DIR --library bundled|PATH

bundled: the wheel's own copy, DIR/lib/libft_weave.so.1, with the headers and CMake files
the package reports (get_include, get_library_dir, get_cmake_dir and
python -m ft_weave) inside DIR too.
"""

import argparse
import os
import subprocess
import sys
import threading
import warnings


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--package-dir", required=True)
    parser.add_argument("--library", required=True)
    args = parser.parse_args()

    import ft_weave

    package_dir = os.path.realpath(args.package_dir)
    loaded_from = os.path.realpath(os.path.dirname(ft_weave.__file__))
    if loaded_from != package_dir:
        sys.exit("ft_weave imported from %s, expected %s" % (loaded_from, package_dir))

    path = ft_weave.library_path()
    if args.library == "bundled":
        check_bundled(package_dir, path)
    elif os.path.realpath(path) != os.path.realpath(args.library):
        sys.exit("library %s, expected %s" % (path, args.library))

    # The package works: a contended mutex and the weave gate.
    m = ft_weave.Mutex()
    count = [0]

    def work():
        for _ in range(1000):
            with m:
                count[0] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if count[0] != 4000:
        sys.exit("mutex counter %d, expected 4000" % count[0])
    try:
        ft_weave.weave.unregister_native_destructor(1)
    except RuntimeError:
        pass
    else:
        sys.exit("ENABLE_EXPERIMENTAL gate did not raise")
    ft_weave.ENABLE_EXPERIMENTAL = True
    if ft_weave.weave.unregister_native_destructor(1) is not False:
        sys.exit("unregister_native_destructor(1) should be False")
    print("ft_weave %s from %s, library %s (-> %s): ok"
          % (ft_weave.library_version(), loaded_from, path, os.path.realpath(path)))


def check_bundled(package_dir, path):
    import ft_weave

    if "FT_WEAVE_LIBRARY" in os.environ:
        sys.exit("FT_WEAVE_LIBRARY must not be set for this check")
    expected = {
        "library_path": os.path.join(package_dir, "lib", "libft_weave.so.1"),
        "get_include": os.path.join(package_dir, "include"),
        "get_library_dir": os.path.join(package_dir, "lib"),
        "get_cmake_dir": os.path.join(package_dir, "cmake"),
    }
    got = {
        "library_path": path,
        "get_include": ft_weave.get_include(),
        "get_library_dir": ft_weave.get_library_dir(),
        "get_cmake_dir": ft_weave.get_cmake_dir(),
    }
    for name, want in expected.items():
        if os.path.realpath(got[name]) != want:
            sys.exit("%s() = %s, expected %s" % (name, got[name], want))
    for name in ("ft_weave.h", "ft_weave.hpp", "ft_weave_python.h"):
        if not os.path.isfile(os.path.join(package_dir, "include", name)):
            sys.exit("no %s in %s" % (name, expected["get_include"]))
    for name in ("ft_weaveConfig.cmake", "ft_weaveConfigVersion.cmake"):
        if not os.path.isfile(os.path.join(package_dir, "cmake", name)):
            sys.exit("no %s in %s" % (name, expected["get_cmake_dir"]))
    # python -m ft_weave prints the same directories.
    out = subprocess.run(
        [sys.executable, "-m", "ft_weave", "--include", "--libdir", "--cmakedir"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    want = [expected["get_include"], expected["get_library_dir"], expected["get_cmake_dir"]]
    if [os.path.realpath(p) for p in out] != want:
        sys.exit("python -m ft_weave --include --libdir --cmakedir printed %s, expected %s" % (out, want))
    # One copy, and no warning about another.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copies = ft_weave.check_library_copies()
    if [os.path.realpath(p) for p in copies] != [expected["library_path"]]:
        sys.exit("check_library_copies() = %s" % copies)


if __name__ == "__main__":
    main()
