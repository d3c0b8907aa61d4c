# cmake -DCOMMAND=<dotnet;FtWeave.AbiCheck.dll> -DARGS=<assembly;library;options...>
#       -DHEADER=<include/ft_weave.h> -DWORK_DIR=<dir> -P abi_check_mutations.cmake
#
# Proves that abi_check catches what it is for: writes a copy of the header
# with deliberate ABI breaks (one of each kind the tool compares), runs the
# tool on it with the real assembly and library, and requires exit code 1
# with exactly the expected differences.
# Each mutation must still apply to the header: when the header changes so
# that one no longer matches, this test fails and the mutation is updated.

file(READ "${HEADER}" text)

# mutate(<description> <old> <new>): replace exactly one occurrence.
function(mutate what old new)
  string(FIND "${text}" "${old}" at)
  string(FIND "${text}" "${old}" last REVERSE)
  if(at EQUAL -1)
    message(FATAL_ERROR "mutation '${what}' no longer applies: '${old}' is not in ${HEADER}")
  elseif(NOT at EQUAL last)
    message(FATAL_ERROR "mutation '${what}' is ambiguous: '${old}' occurs more than once in ${HEADER}")
  endif()
  string(REPLACE "${old}" "${new}" replaced "${text}")
  set(text "${replaced}" PARENT_SCOPE)
endfunction()

# 1. A parameter type changed: weave_park's timeout becomes 32 bits.
mutate("parameter type" "int64_t timeout_ns, void *park_arg, int detach);"
                        "int32_t timeout_ns, void *park_arg, int detach);")
# 2. A function declared that nothing exports.
mutate("function added" "#ifdef __cplusplus\n} /* extern \"C\" */"
                        "WEAVE_API int weave_abi_check_canary(weave_mutex_t *m);\n\n#ifdef __cplusplus\n} /* extern \"C\" */")
# 3. Struct fields moved: weave_stats_t's first two fields swapped (the size stays 40).
mutate("field moved (1/3)" "  uint64_t parks; " "  uint64_t ftw_swap; ")
mutate("field moved (2/3)" "  uint64_t unparks; " "  uint64_t parks;   ")
mutate("field moved (3/3)" "  uint64_t ftw_swap; " "  uint64_t unparks; ")
# 4. A return type narrowed.
mutate("return type" "WEAVE_API uint64_t weave_thread_id(void);" "WEAVE_API uint32_t weave_thread_id(void);")
# 5. A callback type that no longer matches the C# function pointer.
mutate("callback type" "typedef void weave_unpark_fn(void *arg, void *park_arg, int has_more_waiters);"
                       "typedef void weave_unpark_fn(void *arg, void *park_arg);")
# 6. An enum constant changed.
mutate("enum value" "WEAVE_E_DEADLOCK = -107" "WEAVE_E_DEADLOCK = -108")
# 7. A macro changed.
mutate("macro value" "#define WEAVE_PARK_INTR (-3)" "#define WEAVE_PARK_INTR (-4)")

set(expected
  "parameter 4 (timeout_ns) of weave_park: header int32_t (4 bytes, signed) vs C# long (8 bytes, signed)"
  "missing export: weave_abi_check_canary (declared in ft_weave.h:"
  "struct weave_stats_t: field parks at offset 8 in C, 0 in C#"
  "struct weave_stats_t: field unparks at offset 0 in C, 8 in C#"
  "return type of weave_thread_id: header uint32_t (4 bytes, unsigned) vs C# ulong (8 bytes, unsigned)"
  "parameter 2 (fn) of weave_unpark: header weave_unpark_fn * (function pointer) vs C# delegate* unmanaged<void*, void*, int, void> (function pointer): the function pointer takes 2 parameter(s) in C, 3 in C#"
  "constant WEAVE_E_DEADLOCK: -108 in C, -107 in C#"
  "constant WEAVE_PARK_INTR: -4 in C, -3 in C#")

file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/ft_weave.h" "${text}")
execute_process(COMMAND ${COMMAND} "${WORK_DIR}/ft_weave.h" ${ARGS}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")

if(NOT rc EQUAL 1)
  message(FATAL_ERROR "abi_check on the mutated header exited with '${rc}', expected 1 (differences found)")
endif()
set(missing)
foreach(line IN LISTS expected)
  string(FIND "${out}" "${line}" at)
  if(at EQUAL -1)
    list(APPEND missing "${line}")
  endif()
endforeach()
if(missing)
  list(JOIN missing "\n  " missing)
  message(FATAL_ERROR "abi_check did not report:\n  ${missing}")
endif()
# Nothing else: every line that is not a log line, note or known difference is one of the above.
list(LENGTH expected n_expected)
string(REGEX MATCHALL "\nabi: [0-9]+ functions, [0-9]+ structs, [0-9]+ constants checked, ${n_expected} differences\n" summary "\n${out}")
if(NOT summary)
  message(FATAL_ERROR "abi_check reported other differences than the ${n_expected} expected ones (see above)")
endif()
message(STATUS "abi_check caught all ${n_expected} mutations")
