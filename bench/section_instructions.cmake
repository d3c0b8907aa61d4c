# cmake -DVALGRIND=<valgrind> -DBENCH=<section_bench> -DROW=<row> -DMAX=<instructions>
#       -DWORK_DIR=<dir> -P section_instructions.cmake
#
# Instructions per iteration of one section_bench row, counted by callgrind:
# the difference between a run of 2N and one of N iterations (so the
# thread's first section, the runtime's start and the process's end cancel
# out), divided by the 7 * N extra iterations. Fails above MAX. Instruction
# counts are deterministic for a given build, so this guards the sections'
# C fast paths (about 70 per one-mutex section and its end, counter and loop
# included) against silently falling back to the C# exports (about 400).
set(n 2000)
set(runs 7)
file(MAKE_DIRECTORY "${WORK_DIR}")
set(totals)
foreach(iterations ${n} 4000)
  set(out "${WORK_DIR}/callgrind.${ROW}.${iterations}")
  execute_process(COMMAND "${VALGRIND}" --tool=callgrind "--callgrind-out-file=${out}" "${BENCH}" ${iterations} ${ROW}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "callgrind ${BENCH} ${iterations} ${ROW} exited with ${rc}:\n${err}")
  endif()
  file(STRINGS "${out}" line REGEX "^(summary|totals): [0-9]+")
  list(GET line 0 line)
  string(REGEX REPLACE "^[a-z]+: ([0-9]+).*" "\\1" total "${line}")
  list(APPEND totals ${total})
endforeach()
list(GET totals 0 t1)
list(GET totals 1 t2)
math(EXPR per "(${t2} - ${t1}) / (${runs} * ${n})")
message(STATUS "section_bench row ${ROW}: ${per} instructions per iteration (limit ${MAX})")
if(per GREATER MAX)
  message(FATAL_ERROR "row ${ROW}: ${per} instructions per iteration, above ${MAX}: "
                      "did the critical sections' C fast path stop being used (src/native/critical_section.c)?")
endif()
