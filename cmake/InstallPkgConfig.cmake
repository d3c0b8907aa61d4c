# Run by `cmake --install` (install(CODE) in the top CMakeLists.txt): writes
# lib/pkgconfig/ft_weave.pc for the prefix of this install, so that
# `pkg-config --cflags --libs ft_weave` prints normalised absolute paths
# (no "lib/pkgconfig/../.."). Inputs: _ftw_pc_template, _ftw_pc_out (a file
# in the build tree), _ftw_libdir, _ftw_includedir (CMAKE_INSTALL_*DIR),
# _ftw_description, _ftw_version; CMAKE_INSTALL_PREFIX is the install's
# (--prefix). DESTDIR is honoured by file(INSTALL) and is not written into
# the file (a staged package installs to the prefix it names).

function(_ftw_clean_path out path)
  cmake_path(NORMAL_PATH path)
  # NORMAL_PATH keeps a trailing separator ("/usr/local/"); drop it except
  # for the root itself.
  string(REGEX REPLACE "(.)/+$" "\\1" path "${path}")
  set(${out} "${path}" PARENT_SCOPE)
endfunction()

_ftw_clean_path(_prefix "${CMAKE_INSTALL_PREFIX}")
foreach(_kind libdir includedir)
  set(_dir "${_ftw_${_kind}}")
  if(IS_ABSOLUTE "${_dir}")
    _ftw_clean_path(_dir "${_dir}")
  else()
    _ftw_clean_path(_dir "${_prefix}/${_dir}")
    # Under the prefix: written as ${prefix}/..., so that --define-prefix
    # can relocate it.
    if(_prefix STREQUAL "/")
      string(REGEX REPLACE "^/" "\${prefix}/" _dir "${_dir}")
    else()
      string(LENGTH "${_prefix}" _len)
      string(SUBSTRING "${_dir}" ${_len} -1 _tail)
      set(_dir "\${prefix}${_tail}")
    endif()
  endif()
  string(TOUPPER "${_kind}" _upper)
  set(FTW_PC_${_upper} "${_dir}")
endforeach()
set(FTW_PC_PREFIX "${_prefix}")
set(PROJECT_DESCRIPTION "${_ftw_description}")
set(PROJECT_VERSION "${_ftw_version}")
configure_file("${_ftw_pc_template}" "${_ftw_pc_out}" @ONLY)

if(IS_ABSOLUTE "${_ftw_libdir}")
  set(_dest "${_ftw_libdir}/pkgconfig")
else()
  set(_dest "${CMAKE_INSTALL_PREFIX}/${_ftw_libdir}/pkgconfig")
endif()
file(INSTALL DESTINATION "${_dest}" TYPE FILE FILES "${_ftw_pc_out}")
