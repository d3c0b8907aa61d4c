# examples/python_extension (the `ledger` extension): built with its own
# setup.py through ft_weave.setup_helpers, the way an extension author
# builds it, by every test interpreter; then its unittest suite
# (python_example:<tag>) and a short run of its benchmark against CPython's
# PyMutex and critical sections (python_example_bench:<tag>). Both build into
# a temporary directory under the build tree, never into the sources.
# Included from ctests/python/CMakeLists.txt.
set(_ftw_example_dir "${PROJECT_SOURCE_DIR}/examples/python_extension")

foreach(_id IN LISTS FTW_PYTHON_IDS)
  set(_tag "${FTW_PY_${_id}_TAG}")
  # A free-threaded interpreter is where the example matters: there a
  # missing setuptools is a failure, elsewhere a visible skip.
  set(_require "")
  if(FTW_PY_${_id}_FREE_THREADED)
    set(_require "--require")
  endif()
  foreach(_mode test bench)
    if(_mode STREQUAL "test")
      set(_name "python_example:${_tag}")
    else()
      set(_name "python_example_bench:${_tag}")
    endif()
    add_test(NAME "${_name}"
             COMMAND "${FTW_PY_${_id}_EXE}" "${CMAKE_CURRENT_SOURCE_DIR}/run_example_extension.py"
                     ${_mode} "${_ftw_example_dir}" "${PROJECT_SOURCE_DIR}/python"
                     "${CMAKE_CURRENT_BINARY_DIR}/example_extension/${_id}" ${_require})
    set_tests_properties("${_name}" PROPERTIES
      TIMEOUT 300
      SKIP_REGULAR_EXPRESSION "SKIP:"
      ENVIRONMENT "FT_WEAVE_LIBRARY=${FT_WEAVE_LIBRARY}")
  endforeach()
endforeach()
