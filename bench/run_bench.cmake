# Runs lockbench and the .NET runner, then report.py (cmake -P; called by the
# run-bench target with MODE=full and by the bench_smoke test with MODE=smoke).
# Inputs: LOCKBENCH, DOTNET, DOTNET_DLL, PYTHON, REPORT, OUT_DIR, MODE,
# REPORT_ARGS (arguments of report.py joined with '|').
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
execute_process(COMMAND "${PYTHON}" "${REPORT}" --csv "${OUT_DIR}/lockbench.csv" --csv "${OUT_DIR}/dotnet.csv"
                        ${REPORT_ARGS}
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "report.py failed (${_rc})")
endif()
