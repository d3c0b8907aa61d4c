# Runs lockbench and the .NET runner, then report.py (cmake -P; called by the
# run-bench target with MODE=full and by the bench_smoke test with MODE=smoke).
# Inputs: LOCKBENCH, DOTNET, DOTNET_DLL, PYTHON, REPORT, OUT_DIR, MODE,
# REPORT_ARGS (arguments of report.py joined with '|'), PREVIOUS (a previous
# build's lockbench, may be empty), PREVIOUS_PY (bench/previous.py), SAME_NEW
# and SAME_OLD (same_source_bench built against this build and against the
# previous one; SAME_OLD may be empty).
string(REPLACE "|" ";" REPORT_ARGS "${REPORT_ARGS}")
file(MAKE_DIRECTORY "${OUT_DIR}")
set(_flags "")
if(MODE STREQUAL "smoke")
  set(_flags --smoke)
endif()

cmake_host_system_information(RESULT _cores QUERY NUMBER_OF_LOGICAL_CORES)
execute_process(COMMAND uptime)
message(STATUS "ft_weave bench (${MODE}): ${_cores} logical cores; see the load average above "
               "(numbers taken at a load above 1 are not trustworthy)")

execute_process(COMMAND "${LOCKBENCH}" ${_flags} --out "${OUT_DIR}/lockbench.csv" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "lockbench failed (${_rc})")
endif()
execute_process(COMMAND "${DOTNET}" "${DOTNET_DLL}" ${_flags} --out "${OUT_DIR}/dotnet.csv" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "the .NET runner failed (${_rc})")
endif()
# The before/after comparison. The smoke run compares the build with itself
# when no previous build is named, so that previous.py and its report
# cannot rot either.
set(_previous_csv "")
set(_previous "${PREVIOUS}")
if(_previous STREQUAL "" AND MODE STREQUAL "smoke")
  set(_previous "${LOCKBENCH}")
endif()
if(NOT _previous STREQUAL "")
  set(_rounds 3)
  if(MODE STREQUAL "smoke")
    set(_rounds 1)
  endif()
  # The same-source pair too when the previous build's header and library
  # were found (the smoke run without a previous build: this build twice).
  set(_same "")
  if(NOT SAME_OLD STREQUAL "")
    set(_same --same-new "${SAME_NEW}" --same-old "${SAME_OLD}")
  elseif(PREVIOUS STREQUAL "" AND MODE STREQUAL "smoke" AND NOT SAME_NEW STREQUAL "")
    set(_same --same-new "${SAME_NEW}" --same-old "${SAME_NEW}")
  endif()
  execute_process(COMMAND "${PYTHON}" "${PREVIOUS_PY}" --new "${LOCKBENCH}" --old "${_previous}"
                          --out "${OUT_DIR}/previous.csv" --rounds ${_rounds} ${_flags} ${_same}
                  RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "previous.py failed (${_rc})")
  endif()
  set(_previous_csv --csv "${OUT_DIR}/previous.csv")
endif()
execute_process(COMMAND "${PYTHON}" "${REPORT}" --csv "${OUT_DIR}/lockbench.csv" --csv "${OUT_DIR}/dotnet.csv"
                        ${_previous_csv} ${REPORT_ARGS}
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "report.py failed (${_rc})")
endif()
