# ftw_install_debian_packages(<reason> <package>...): under
# FT_WEAVE_INSTALL_TEST_DEPS (the `test` and `bench` presets), installs missing
# Debian packages that tests or benchmarks need, so that a clean machine runs
# them (CI starts clean; it runs as root). Tries once, and once more after
# `apt-get update` (a fresh machine may have no package lists yet). Does
# nothing when the option is off; callers look for what they need again after.
include_guard(GLOBAL)

function(ftw_install_debian_packages reason)
  if(NOT FT_WEAVE_INSTALL_TEST_DEPS OR ARGC LESS 2)
    return()
  endif()
  message(STATUS "ft_weave: ${reason}; installing Debian packages ${ARGN}")
  set(apt ${CMAKE_COMMAND} -E env DEBIAN_FRONTEND=noninteractive apt-get)
  execute_process(COMMAND ${apt} install -y --no-install-recommends ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    execute_process(COMMAND ${apt} update RESULT_VARIABLE rc)
    execute_process(COMMAND ${apt} install -y --no-install-recommends ${ARGN} RESULT_VARIABLE rc)
  endif()
endfunction()
