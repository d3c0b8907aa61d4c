"""``python -m ft_weave --include | --libdir | --cmakedir``: where the files
for building against ft_weave are, as pybind11's ``python -m pybind11``:

    cc -I"$(python -m ft_weave --include)" ...
    cmake -Dft_weave_DIR="$(python -m ft_weave --cmakedir)" ...

Several options print their directories on one line, separated by spaces, in
the order given. Exit status 1 (and the reason on stderr) when this
installation does not have what was asked (a source checkout has no
``--cmakedir`` of its own).
"""

import argparse
import sys

from . import __version__
from ._paths import get_cmake_dir, get_include, get_library_dir


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m ft_weave", description=__doc__.split("\n\n")[0])
    parser.add_argument("--include", dest="what", action="append_const", const=get_include,
                        help="the directory with ft_weave.h and ft_weave_python.h")
    parser.add_argument("--libdir", dest="what", action="append_const", const=get_library_dir,
                        help="the directory with libft_weave.so.1")
    parser.add_argument("--cmakedir", dest="what", action="append_const", const=get_cmake_dir,
                        help="the directory with ft_weaveConfig.cmake (for ft_weave_DIR)")
    parser.add_argument("--version", action="version", version="ft_weave " + __version__)
    args = parser.parse_args(argv)
    if not args.what:
        parser.print_help()
        return 0
    try:
        print(" ".join(fn() for fn in args.what))
    except (FileNotFoundError, ImportError) as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
