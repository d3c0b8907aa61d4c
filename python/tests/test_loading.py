"""Finding libft_weave.so: FT_WEAVE_LIBRARY, next to the package, a source
checkout's build tree, the dynamic loader; and one clear error naming every
place tried."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import ft_weave
from ft_weave import _native

PACKAGE_DIR = os.path.dirname(os.path.abspath(ft_weave.__file__))


def run_python(code, env_changes, pythonpath=None):
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


FAIL_ON_USE = """
    import ft_weave
    from ft_weave import weave
    try:
        ft_weave.Mutex()
    except ImportError as e:
        assert isinstance(e, ft_weave.LibraryNotFoundError), type(e)
        print(e)
    else:
        print("loaded", ft_weave.library_path())
"""


class TestLoadedLibrary(unittest.TestCase):
    def test_loaded_from_environment(self):
        expected = os.path.abspath(os.environ["FT_WEAVE_LIBRARY"])
        self.assertEqual(ft_weave.library_path(), expected)
        self.assertEqual(ft_weave.library_version(), ft_weave.__version__)
        self.assertEqual(_native.lib().weave_abi_version(), _native.ABI_VERSION)


class TestLoadingFailures(unittest.TestCase):
    def test_missing_file_named_in_error(self):
        missing = os.path.join(tempfile.gettempdir(), "no-such-dir", "libft_weave.so.1")
        proc = run_python(FAIL_ON_USE, {"FT_WEAVE_LIBRARY": missing})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("could not load libft_weave.so", proc.stdout)
        self.assertIn("FT_WEAVE_LIBRARY=%s: no such file" % missing, proc.stdout)
        self.assertIn("FT_WEAVE_LIBRARY is set, so no other place was searched", proc.stdout)

    def test_not_a_shared_library(self):
        with tempfile.TemporaryDirectory() as tmp:
            bogus = os.path.join(tmp, "libft_weave.so.1")
            with open(bogus, "w") as f:
                f.write("not an ELF file\n")
            proc = run_python(FAIL_ON_USE, {"FT_WEAVE_LIBRARY": bogus})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("FT_WEAVE_LIBRARY=%s: " % bogus, proc.stdout)
        self.assertNotIn("no such file", proc.stdout)
        self.assertRegex(proc.stdout, "invalid ELF header|file too short")

    def test_a_library_that_is_not_ft_weave(self):
        helper = os.environ["FT_WEAVE_TEST_HELPER"]
        proc = run_python(FAIL_ON_USE, {"FT_WEAVE_LIBRARY": helper})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("it is not libft_weave (no weave_abi_version)", proc.stdout)

    def test_import_and_gate_need_no_library(self):
        proc = run_python(
            """
            import ft_weave
            from ft_weave import weave
            try:
                weave.register_native_destructor(1, 2)
            except RuntimeError as e:
                print("gate:", e)
            """,
            {"FT_WEAVE_LIBRARY": "/nonexistent/libft_weave.so.1"},
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("gate: Experimental support not enabled for ft_weave", proc.stdout)

    def test_every_place_listed(self):
        # A fake checkout: <root>/python/ft_weave with <root>/include/ft_weave.h.
        with tempfile.TemporaryDirectory() as root:
            package_dir = os.path.join(root, "python", "ft_weave")
            os.makedirs(package_dir)
            os.makedirs(os.path.join(root, "include"))
            open(os.path.join(root, "include", "ft_weave.h"), "w").close()
            places = _native.candidates(environ={}, package_dir=package_dir)
            targets = [target for _, target in places]
            self.assertEqual(
                targets,
                [
                    os.path.join(package_dir, "lib", "libft_weave.so.1"),
                    os.path.join(root, "build", "default", "lib", "libft_weave.so.1"),
                    os.path.join(root, "build", "test", "lib", "libft_weave.so.1"),
                    "libft_weave.so.1",
                ],
            )
            self.assertIn("dynamic loader", places[-1][0])
            # Everything but the dynamic loader (which may find an installed copy):
            with self.assertRaises(_native.LibraryNotFoundError) as caught:
                _native.load_from(places[:-1] + [("libft_weave_absent.so.1 via the loader", "libft_weave_absent.so.1")])
        message = str(caught.exception)
        for target in targets[:-1]:
            self.assertIn("%s: no such file" % target, message)
        self.assertIn("libft_weave_absent.so.1 via the loader: ", message)
        self.assertIn("set FT_WEAVE_LIBRARY", message)
        self.assertEqual(len(caught.exception.attempts), 4)
        self.assertIsInstance(caught.exception, ImportError)

    def test_outside_a_checkout_no_build_tree(self):
        with tempfile.TemporaryDirectory() as tmp:
            package_dir = os.path.join(tmp, "site", "ft_weave")
            places = _native.candidates(environ={"FT_WEAVE_LIBRARY": ""}, package_dir=package_dir)
        self.assertEqual(len(places), 2)
        self.assertFalse(any("build" in target for _, target in places))

    def test_found_next_to_the_package(self):
        library = os.path.realpath(os.environ["FT_WEAVE_LIBRARY"])
        with tempfile.TemporaryDirectory() as tmp:
            site = os.path.join(tmp, "site")
            shutil.copytree(PACKAGE_DIR, os.path.join(site, "ft_weave"), ignore=shutil.ignore_patterns("__pycache__"))
            # Where the wheel bundles it.
            os.makedirs(os.path.join(site, "ft_weave", "lib"))
            os.symlink(library, os.path.join(site, "ft_weave", "lib", "libft_weave.so.1"))
            proc = run_python(
                """
                import ft_weave
                m = ft_weave.Mutex()
                with m:
                    assert m.locked()
                print(ft_weave.__file__)
                print(ft_weave.library_path())
                """,
                {"FT_WEAVE_LIBRARY": None},
                pythonpath=site,
            )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], os.path.join(site, "ft_weave", "__init__.py"))
        self.assertEqual(lines[1], os.path.join(site, "ft_weave", "lib", "libft_weave.so.1"))


class TestOneCopy(unittest.TestCase):
    """The loader reuses a copy already in the process and reports a second
    one (the wheel tests under CTest do the same with extension modules)."""

    def test_soname_reader(self):
        library = os.environ["FT_WEAVE_LIBRARY"]
        self.assertEqual(_native._read_soname(library), _native.SONAME)
        # A MODULE library has no soname; other files are not ELF or cut short.
        self.assertIsNone(_native._read_soname(os.environ["FT_WEAVE_TEST_HELPER"]))
        with tempfile.TemporaryDirectory() as tmp:
            text = os.path.join(tmp, "text")
            with open(text, "w") as f:
                f.write("not ELF\n")
            cut = os.path.join(tmp, "cut.so")
            with open(library, "rb") as src, open(cut, "wb") as dst:
                dst.write(src.read(100))
            for path in (text, cut, os.path.join(tmp, "missing.so")):
                self.assertIsNone(_native._read_soname(path), path)

    def test_copy_loaded_first_is_reused(self):
        library = os.path.realpath(os.environ["FT_WEAVE_LIBRARY"])
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "elsewhere", "libft_weave.so.1")
            os.makedirs(os.path.dirname(copy))
            shutil.copyfile(library, copy)
            proc = run_python(
                """
                import ctypes, sys, warnings
                ctypes.CDLL(sys.argv[1])
                import ft_weave
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    ft_weave.Mutex()
                print(ft_weave.library_path())
                print(ft_weave.check_library_copies())
                for w in caught:
                    print(w.category.__name__, w.message)
                """.replace("sys.argv[1]", repr(copy)),
                {"FT_WEAVE_LIBRARY": library},
            )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], copy)
        self.assertEqual(lines[1], repr([copy]))
        # FT_WEAVE_LIBRARY names another file: said, not loaded.
        self.assertEqual(len(lines), 3, proc.stdout)
        self.assertTrue(lines[2].startswith("RuntimeWarning ft_weave: FT_WEAVE_LIBRARY=%s is not loaded" % library), lines[2])

    def test_second_copy_warning_and_error(self):
        library = os.path.realpath(os.environ["FT_WEAVE_LIBRARY"])
        code = """
            import ctypes, warnings
            import ft_weave
            ft_weave.Mutex()
            ctypes.CDLL(%r)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    ft_weave.check_library_copies()
                except ft_weave.DuplicateLibraryError as e:
                    assert isinstance(e, ImportError)
                    print("error", e.paths)
            for w in caught:
                assert issubclass(w.category, RuntimeWarning)
                print(w.category.__name__, w.message.paths)
        """
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "libft_weave.so.1")
            shutil.copyfile(library, copy)
            warned = run_python(code % copy, {"FT_WEAVE_DUPLICATE": None})
            failed = run_python(code % copy, {"FT_WEAVE_DUPLICATE": "error"})
        paths = repr([library, copy])
        self.assertEqual(warned.returncode, 0, warned.stderr)
        self.assertEqual(warned.stdout.splitlines(), ["DuplicateLibraryWarning " + paths])
        self.assertEqual(failed.returncode, 0, failed.stderr)
        self.assertEqual(failed.stdout.splitlines(), ["error " + paths])


if __name__ == "__main__":
    unittest.main()
