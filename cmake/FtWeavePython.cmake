# Finds the CPython the Python tests and the benchmark use:
#   FT_WEAVE_PYTHON      the interpreter's real path (pyenv shims resolved), so
#                        that tests run the same interpreter whose headers and
#                        libpython the embedding programs are built with
#   Python3::Python      (from FindPython3) headers + libpython, for embedding
# With FT_WEAVE_INSTALL_TEST_DEPS, a missing interpreter or missing headers
# are installed from Debian packages (python3, python3-dev), as ctests/ does
# for Catch2. Set Python3_EXECUTABLE or Python3_ROOT_DIR to choose another.
include_guard(GLOBAL) # Python3::Python is imported GLOBAL: tests and bench share it
include("${CMAKE_CURRENT_LIST_DIR}/FtWeaveDebianPackages.cmake")

find_package(Python3 3.8 COMPONENTS Interpreter Development.Embed GLOBAL)
if(NOT Python3_FOUND AND FT_WEAVE_INSTALL_TEST_DEPS)
  ftw_install_debian_packages("Python 3 headers/libpython not found" python3 python3-dev)
  unset(Python3_EXECUTABLE CACHE)
  find_package(Python3 3.8 COMPONENTS Interpreter Development.Embed GLOBAL)
endif()
if(NOT Python3_FOUND)
  message(FATAL_ERROR "ft_weave's Python tests need Python 3 with its headers and libpython "
                      "(`apt-get install python3-dev`), or configure with -DFT_WEAVE_INSTALL_TEST_DEPS=ON "
                      "(the `test` preset does)")
endif()

execute_process(COMMAND "${Python3_EXECUTABLE}" -c "import sys; print(sys.executable)"
                OUTPUT_VARIABLE FT_WEAVE_PYTHON OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT EXISTS "${FT_WEAVE_PYTHON}")
  set(FT_WEAVE_PYTHON "${Python3_EXECUTABLE}")
endif()
message(STATUS "ft_weave: Python ${Python3_VERSION} for tests: ${FT_WEAVE_PYTHON} (libpython: ${Python3_LIBRARIES})")

# ftw_find_python_with(<out> <probe> <candidate>...): the first existing
# interpreter among the candidates that runs the Python code <probe> without
# error (for example "import matplotlib"), or "" in <out>.
function(ftw_find_python_with out probe)
  foreach(candidate IN LISTS ARGN)
    if(candidate AND EXISTS "${candidate}")
      execute_process(COMMAND "${candidate}" -c "${probe}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
      if(rc EQUAL 0)
        set(${out} "${candidate}" PARENT_SCOPE)
        return()
      endif()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()
