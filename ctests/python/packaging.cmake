# Installing the Python package, included from ctests/python/CMakeLists.txt
# (which defines _ftw_python_dir).
#
#   python_pip_install:<tag>    the wheel built from python/ (offline pip,
#                               --no-build-isolation), its contents, installed
#                               with the interpreter <tag>'s pip and imported
#                               without FT_WEAVE_LIBRARY (fixture for:)
#   python_wheel_one_copy:<tag>   two extension modules built with
#                               ft_weave.setup_helpers.WeaveExtension against
#                               the installed wheel + the ctypes package: one
#                               copy of the library, one weave_static_get value
#   python_wheel_duplicate:<tag>  a second copy from another file is
#                               DuplicateLibraryWarning / DuplicateLibraryError
#   python_wheel_cmake:<tag>    find_package(ft_weave) from the wheel's
#                               get_cmake_dir() builds and runs a C program
# The driver is wheel_test.py, run by the interpreter under test.

# The package is installed with pip only (the CMake install does not copy it:
# pip would not see it).

# The wheel, per test interpreter. Building it takes pip and setuptools >= 61
# (below 70.1 also the `wheel` package); the wheel is py3-none-<platform>, so
# an interpreter that cannot build it (pyenv's 3.11 without `wheel`) installs
# and tests one built by Debian's python3 instead. Installing it and building
# extensions take pip and setuptools in the interpreter under test.
# (setuptools first: importing pip first defeats setuptools' distutils shim.)
set(_ftw_wheel_builder_probe "import importlib.util, setuptools\nassert importlib.util.find_spec('pip')\nv = tuple(int(x) for x in setuptools.__version__.split('.')[:2])\nassert v >= (61, 0), setuptools.__version__\nif v < (70, 1):\n    from wheel.bdist_wheel import bdist_wheel\n")
set(_ftw_wheel_user_probe "import importlib.util, setuptools\nassert importlib.util.find_spec('pip')\n")

function(_ftw_wheel_builders out)
  set(found "")
  foreach(_id IN LISTS FTW_PYTHON_IDS)
    ftw_find_python_with(_py "${_ftw_wheel_builder_probe}" "${FTW_PY_${_id}_EXE}" /usr/bin/python3)
    if(_py)
      list(APPEND found "${_py}")
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()
_ftw_wheel_builders(_ftw_builders)
if(NOT _ftw_builders AND FT_WEAVE_INSTALL_TEST_DEPS)
  ftw_install_debian_packages("no Python with pip, setuptools and wheel to build the ft_weave wheel"
                              python3-pip python3-setuptools python3-wheel)
endif()

foreach(_id IN LISTS FTW_PYTHON_IDS)
  set(_tag "${FTW_PY_${_id}_TAG}")
  set(_exe "${FTW_PY_${_id}_EXE}")
  set(_work "${CMAKE_CURRENT_BINARY_DIR}/wheel/${_id}")
  ftw_find_python_with(_builder "${_ftw_wheel_builder_probe}" "${_exe}" /usr/bin/python3)
  ftw_find_python_with(_user "${_ftw_wheel_user_probe}" "${_exe}")
  set(_skip "")
  if(NOT _user)
    set(_skip "${_exe} has no pip and setuptools (to install the wheel and build extensions)")
  elseif(NOT _builder)
    set(_skip "no Python with pip, setuptools >= 61 and (for setuptools < 70.1) wheel builds the wheel (not ${_exe}, not /usr/bin/python3)")
  endif()
  if(_skip)
    message(STATUS "ft_weave: wheel tests for ${_tag} skipped: ${_skip}")
    foreach(_name pip_install wheel_one_copy wheel_duplicate wheel_cmake)
      add_test(NAME python_${_name}:${_tag} COMMAND ${CMAKE_COMMAND} -E echo "SKIP: ${_skip}")
      set_tests_properties(python_${_name}:${_tag} PROPERTIES SKIP_REGULAR_EXPRESSION "SKIP:")
    endforeach()
    continue()
  endif()
  message(STATUS "ft_weave: wheel tests for ${_tag}: built by ${_builder}, installed and used by ${_exe}")
  set(_driver "${CMAKE_CURRENT_SOURCE_DIR}/wheel_test.py")
  add_test(NAME python_pip_install:${_tag}
           COMMAND "${_exe}" "${_driver}" install --work "${_work}" --checkout "${PROJECT_SOURCE_DIR}"
                   --library "${FT_WEAVE_LIBRARY}" --builder "${_builder}")
  set_tests_properties(python_pip_install:${_tag} PROPERTIES FIXTURES_SETUP ftw_wheel_${_id})
  add_test(NAME python_wheel_one_copy:${_tag}
           COMMAND "${_exe}" "${_driver}" one-copy --work "${_work}" --library "${FT_WEAVE_LIBRARY}")
  add_test(NAME python_wheel_duplicate:${_tag}
           COMMAND "${_exe}" "${_driver}" duplicate --work "${_work}")
  add_test(NAME python_wheel_cmake:${_tag}
           COMMAND "${_exe}" "${_driver}" cmake --work "${_work}" --cmake "${CMAKE_COMMAND}" --generator "${CMAKE_GENERATOR}")
  set_tests_properties(python_wheel_one_copy:${_tag} python_wheel_duplicate:${_tag} python_wheel_cmake:${_tag}
                       PROPERTIES FIXTURES_REQUIRED ftw_wheel_${_id})
  set_tests_properties(python_pip_install:${_tag} python_wheel_one_copy:${_tag} python_wheel_duplicate:${_tag}
                       python_wheel_cmake:${_tag} PROPERTIES TIMEOUT 300 FAIL_REGULAR_EXPRESSION "FAIL:")
endforeach()
