# run(<command> [args...]): for cmake -P test drivers. Runs the command and
# fails the script with the command line and its output when it exits non-zero;
# otherwise prints the output.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  message(STATUS "${out}${err}")
endfunction()
