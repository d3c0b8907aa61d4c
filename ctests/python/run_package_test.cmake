# CTest driver for the Python package's two installation routes.
#   MODE=install: cmake --install BUILD_DIR to WORK_DIR/prefix, then import
#     the installed package with PYTHONPATH only (FT_WEAVE_LIBRARY unset): it
#     must find the library next to itself.
#   MODE=pip: pip install --no-build-isolation --no-deps --no-index --target
#     from a copy of SOURCE_DIR (setuptools writes build/ and *.egg-info next
#     to pyproject.toml; the copy keeps them out of the source tree), then
#     import it with FT_WEAVE_LIBRARY=LIBRARY. Prints "SKIP:" (the test is
#     then reported as skipped) when no suitable Python was found at
#     configure time.
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
elseif(MODE STREQUAL "pip")
  if(NOT PYTHON)
    message("SKIP: no Python with pip, setuptools >= 61 and (for setuptools < 70.1) wheel was found at configure time")
    return() # the test's SKIP_REGULAR_EXPRESSION matches "SKIP:"
  endif()
  file(COPY "${SOURCE_DIR}/" DESTINATION "${WORK_DIR}/src"
       PATTERN "__pycache__" EXCLUDE PATTERN "build" EXCLUDE PATTERN "*.egg-info" EXCLUDE)
  run(${CMAKE_COMMAND} -E env PIP_DISABLE_PIP_VERSION_CHECK=1
      "${PYTHON}" -m pip install --no-build-isolation --no-deps --no-index
      --target "${WORK_DIR}/target" "${WORK_DIR}/src")
  run(${CMAKE_COMMAND} -E env "FT_WEAVE_LIBRARY=${LIBRARY}" "PYTHONPATH=${WORK_DIR}/target" PYTHONDONTWRITEBYTECODE=1
      "${PYTHON}" "${CHECK}" --package-dir "${WORK_DIR}/target/ft_weave" --library "${LIBRARY}")
else()
  message(FATAL_ERROR "MODE must be install or pip")
endif()
