# CTest driver for the Python package's CMake installation route (the wheel's
# is wheel_test.py).
#   MODE=install: cmake --install BUILD_DIR to WORK_DIR/prefix, then import
#     the installed package with PYTHONPATH only (FT_WEAVE_LIBRARY unset): it
#     must find the library next to itself.
include("${CMAKE_CURRENT_LIST_DIR}/../../cmake/FtWeaveRun.cmake")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "install")
  set(prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
  if(IS_ABSOLUTE "${PYTHON_INSTALL_DIR}")
    set(site "${PYTHON_INSTALL_DIR}")
  else()
    set(site "${prefix}/${PYTHON_INSTALL_DIR}")
  endif()
  file(GLOB libs "${site}/ft_weave/libft_weave*")
  if(NOT libs)
    message(FATAL_ERROR "no libft_weave next to the installed package in ${site}/ft_weave")
  endif()
  run(${CMAKE_COMMAND} -E env --unset=FT_WEAVE_LIBRARY "PYTHONPATH=${site}" PYTHONDONTWRITEBYTECODE=1
      "${PYTHON}" "${CHECK}" --package-dir "${site}/ft_weave" --library next-to-package)
else()
  message(FATAL_ERROR "MODE must be install")
endif()
