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

# ---------------------------------------------------------------------------
# Every interpreter the Python tests run with.
#
#   FT_WEAVE_TEST_PYTHONS   (cache variable, else the environment variable of
#                           that name) more interpreters, separated by ";" or
#                           ":", for example a free-threaded python3.13t.
#                           The interpreter found above always comes first.
#
# Each usable interpreter gets an id (py311, py313t) and these variables:
#   FTW_PY_<id>_TAG         3.11, 3.13t: the suffix of its CTest test names
#   FTW_PY_<id>_EXE         its real path
#   FTW_PY_<id>_INCLUDE     the directory with Python.h
#   FTW_PY_<id>_LIBPYTHON   the shared libpython, or "" (then no embedding tests)
#   FTW_PY_<id>_EXT_SUFFIX  extension module suffix
#   FTW_PY_<id>_FREE_THREADED  ON for a --disable-gil build
#   FTW_PY_<id>_HOME        PYTHONHOME for programs that embed it: set it in
#                           their tests' ENVIRONMENT (a relocated interpreter's
#                           libpython does not find its standard library alone)
# and FTW_PYTHON_IDS lists the ids. An interpreter that cannot be used (not
# there, does not run, a second entry for the same one) is reported at
# configure time and by a CTest test `python_skipped:<name>` that prints
# "SKIP:", so the test summary names it; with no free-threaded interpreter at
# all, `python_free_threaded` is such a test too.
# ---------------------------------------------------------------------------
set(FT_WEAVE_TEST_PYTHONS "" CACHE STRING
    "More Python interpreters (';' or ':' separated) that every Python test also runs with; default: the environment variable FT_WEAVE_TEST_PYTHONS")

set(FTW_PYTHON_IDS "")
set(FTW_PYTHON_SKIPPED "")   # "name|reason" entries
if(FT_WEAVE_TEST_PYTHONS STREQUAL "" AND NOT "$ENV{FT_WEAVE_TEST_PYTHONS}" STREQUAL "")
  # Kept in the cache, so that a later reconfigure without the variable in
  # the environment still runs the same interpreters.
  set(FT_WEAVE_TEST_PYTHONS "$ENV{FT_WEAVE_TEST_PYTHONS}" CACHE STRING "" FORCE)
endif()
set(_ftw_py_requested "${FT_WEAVE_TEST_PYTHONS}")
string(REPLACE ":" ";" _ftw_py_requested "${_ftw_py_requested}")

foreach(_ftw_candidate IN LISTS FT_WEAVE_PYTHON _ftw_py_requested)
  if(_ftw_candidate STREQUAL "")
    continue()
  endif()
  if(NOT EXISTS "${_ftw_candidate}")
    list(APPEND FTW_PYTHON_SKIPPED "${_ftw_candidate}|does not exist")
    continue()
  endif()
  execute_process(COMMAND "${_ftw_candidate}" "${CMAKE_CURRENT_LIST_DIR}/python_describe.py"
                  OUTPUT_VARIABLE _ftw_out ERROR_VARIABLE _ftw_err RESULT_VARIABLE _ftw_rc)
  if(NOT _ftw_rc EQUAL 0)
    list(APPEND FTW_PYTHON_SKIPPED "${_ftw_candidate}|does not run (${_ftw_rc})")
    continue()
  endif()
  string(REPLACE "\n" ";" _ftw_lines "${_ftw_out}")
  foreach(_ftw_line IN LISTS _ftw_lines)
    if(_ftw_line MATCHES "^([a-z_]+)=(.*)$")
      set(_ftw_py_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
    endif()
  endforeach()
  string(REPLACE "." "" _ftw_id "py${_ftw_py_tag}")
  if(_ftw_id IN_LIST FTW_PYTHON_IDS)
    if(FTW_PY_${_ftw_id}_EXE STREQUAL _ftw_py_executable)
      continue() # the same interpreter named twice
    endif()
    # Another interpreter of the same version: number it.
    set(_ftw_n 2)
    while("${_ftw_id}_${_ftw_n}" IN_LIST FTW_PYTHON_IDS)
      math(EXPR _ftw_n "${_ftw_n} + 1")
    endwhile()
    set(_ftw_id "${_ftw_id}_${_ftw_n}")
    set(_ftw_py_tag "${_ftw_py_tag}_${_ftw_n}")
  endif()
  if(_ftw_py_include STREQUAL "")
    list(APPEND FTW_PYTHON_SKIPPED "${_ftw_candidate}|has no Python.h (install its -dev package)")
    continue()
  endif()
  list(APPEND FTW_PYTHON_IDS ${_ftw_id})
  set(FTW_PY_${_ftw_id}_TAG "${_ftw_py_tag}")
  set(FTW_PY_${_ftw_id}_EXE "${_ftw_py_executable}")
  set(FTW_PY_${_ftw_id}_INCLUDE "${_ftw_py_include}")
  set(FTW_PY_${_ftw_id}_LIBPYTHON "${_ftw_py_libpython}")
  set(FTW_PY_${_ftw_id}_EXT_SUFFIX "${_ftw_py_ext_suffix}")
  set(FTW_PY_${_ftw_id}_HOME "${_ftw_py_home}")
  if(_ftw_py_free_threaded)
    set(FTW_PY_${_ftw_id}_FREE_THREADED ON)
  else()
    set(FTW_PY_${_ftw_id}_FREE_THREADED OFF)
  endif()

  # Embedding: headers + libpython (run path to its directory, for an
  # interpreter extracted outside the loader's paths).
  if(NOT TARGET ftw_python_embed_${_ftw_id})
    add_library(ftw_python_embed_${_ftw_id} INTERFACE IMPORTED GLOBAL)
    set_target_properties(ftw_python_embed_${_ftw_id} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${_ftw_py_include}")
    if(_ftw_py_libpython)
      get_filename_component(_ftw_libdir "${_ftw_py_libpython}" DIRECTORY)
      set_target_properties(ftw_python_embed_${_ftw_id} PROPERTIES
        INTERFACE_LINK_LIBRARIES "${_ftw_py_libpython}"
        INTERFACE_LINK_OPTIONS "LINKER:-rpath,${_ftw_libdir}")
    endif()
    # Extension modules: headers only (symbols come from the interpreter).
    add_library(ftw_python_module_${_ftw_id} INTERFACE IMPORTED GLOBAL)
    set_target_properties(ftw_python_module_${_ftw_id} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${_ftw_py_include}")
  endif()
  message(STATUS "ft_weave: Python tests run with ${_ftw_py_executable} (${_ftw_py_tag}, tests named *:${_ftw_py_tag})")
endforeach()

set(_ftw_have_free_threaded OFF)
foreach(_ftw_id IN LISTS FTW_PYTHON_IDS)
  if(FTW_PY_${_ftw_id}_FREE_THREADED)
    set(_ftw_have_free_threaded ON)
  endif()
endforeach()
foreach(_ftw_skip IN LISTS FTW_PYTHON_SKIPPED)
  string(REPLACE "|" ";" _ftw_skip "${_ftw_skip}")
  list(GET _ftw_skip 0 _ftw_skip_name)
  list(GET _ftw_skip 1 _ftw_skip_why)
  message(WARNING "ft_weave: Python tests skip ${_ftw_skip_name}: ${_ftw_skip_why}")
endforeach()
if(NOT _ftw_have_free_threaded)
  message(STATUS "ft_weave: no free-threaded interpreter among the test interpreters; "
                 "set FT_WEAVE_TEST_PYTHONS to one (python3.13t or later) to run the free-threaded tests")
endif()

# ftw_add_python_module(<target> <id> <source>...): a CPython extension module
# for interpreter <id>, linked with ft_weave, built next to the other test
# binaries; its file name is <target><ext_suffix>, so `import <target>` finds
# it on PYTHONPATH=$<TARGET_FILE_DIR:...>. Each interpreter's modules go to
# their own directory (ids differ, so targets do too).
function(ftw_add_python_module target id)
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE ft_weave::ft_weave ftw_python_module_${id})
  set_target_properties(${target} PROPERTIES PREFIX "" SUFFIX "${FTW_PY_${id}_EXT_SUFFIX}"
                        C_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/python_modules/${id}")
  if(FT_WEAVE_SANITIZE)
    # Loaded into an uninstrumented python: an ASan-built module there aborts
    # ("ASan runtime does not come first"). Built plain, as the ctypes helper;
    # link_libraries() from ctests/ would add the sanitizer options object.
    set_property(TARGET ${target} PROPERTY LINK_LIBRARIES ft_weave::ft_weave ftw_python_module_${id})
    target_compile_options(${target} PRIVATE -fno-sanitize=all)
    target_link_options(${target} PRIVATE -fno-sanitize=all)
  endif()
endfunction()

# ftw_add_python_skip_tests(): the CTest tests that name the skipped
# interpreters. Called once, from the directory that holds the Python tests.
function(ftw_add_python_skip_tests)
  foreach(_skip IN LISTS FTW_PYTHON_SKIPPED)
    string(REPLACE "|" ";" _skip "${_skip}")
    list(GET _skip 0 _name)
    list(GET _skip 1 _why)
    add_test(NAME "python_skipped:${_name}"
             COMMAND ${CMAKE_COMMAND} -E echo "SKIP: the Python tests did not run with ${_name}: ${_why}")
    set_tests_properties("python_skipped:${_name}" PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
  endforeach()
  if(NOT _ftw_have_free_threaded)
    add_test(NAME python_free_threaded
             COMMAND ${CMAKE_COMMAND} -E echo
                     "SKIP: no free-threaded CPython among the test interpreters (${FTW_PYTHON_IDS}); set FT_WEAVE_TEST_PYTHONS to a python3.13t or later")
    set_tests_properties(python_free_threaded PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
  endif()
endfunction()
