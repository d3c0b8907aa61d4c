/* Default sanitizer options of the test programs in an FT_WEAVE_SANITIZE
 * build (linked into each; ASAN_OPTIONS / LSAN_OPTIONS / UBSAN_OPTIONS in the
 * environment still override them). Why each one: docs/reliability.md. */

const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void) {
  /* Bad-input tests ask the library for SIZE_MAX-byte storage values: the
   * library must answer NULL (WEAVE_E_NOMEM), so calloc must return NULL
   * instead of ASan reporting the request as an error. */
  return "allocator_may_return_null=1";
}

const char *__lsan_default_suppressions(void) {
  /* LeakSanitizer scans stacks, globals, TLS and malloc'ed memory, not the
   * .NET runtime's own mappings (GC heap, runtime data), so blocks the runtime
   * and the library keep only there look lost. valgrind_memcheck checks the
   * library's leaks instead. CPython (detach_python) leaks by design at exit. */
  return "leak:libft_weave.so\n"
         "leak:libpython3\n";
}

const char *__ubsan_default_options(void) { return "print_stacktrace=1"; }
