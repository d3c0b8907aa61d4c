"""Imports an installed ft_weave (cmake --install or pip) and checks where the
package and its library came from, then uses it.

    check_package.py --package-dir DIR --library next-to-package|PATH
"""

import argparse
import os
import sys
import threading


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
    if args.library == "next-to-package":
        if "FT_WEAVE_LIBRARY" in os.environ:
            sys.exit("FT_WEAVE_LIBRARY must not be set for this check")
        if os.path.dirname(path) != os.path.dirname(os.path.abspath(ft_weave.__file__)):
            sys.exit("library %s is not next to the package %s" % (path, package_dir))
        # A link to the installed library, not a second copy: one copy per process.
        if not os.path.islink(path):
            sys.exit("%s should be a symbolic link to the installed library" % path)
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


if __name__ == "__main__":
    main()
