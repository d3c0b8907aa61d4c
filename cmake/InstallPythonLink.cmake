# Run by `cmake --install` (install(CODE) in the top-level CMakeLists.txt):
# links <python install dir>/ft_weave/<soname> to the installed library with a
# relative symbolic link, so that the package finds the library next to itself
# and the process still loads one copy (the dynamic loader recognises the same
# file behind both names; a second copy would get its own parking lot and
# storage registry). Inputs: _ftw_libdir, _ftw_pydir, _ftw_soname.
foreach(_v _ftw_libdir _ftw_pydir)
  if(IS_ABSOLUTE "${${_v}}")
    set(${_v}_abs "${${_v}}")
  else()
    set(${_v}_abs "${CMAKE_INSTALL_PREFIX}/${${_v}}")
  endif()
endforeach()
set(_ftw_link "${_ftw_pydir_abs}/ft_weave/${_ftw_soname}")
file(RELATIVE_PATH _ftw_target "${_ftw_pydir_abs}/ft_weave" "${_ftw_libdir_abs}/${_ftw_soname}")
message(STATUS "Installing: $ENV{DESTDIR}${_ftw_link} -> ${_ftw_target}")
file(MAKE_DIRECTORY "$ENV{DESTDIR}${_ftw_pydir_abs}/ft_weave")
file(REMOVE "$ENV{DESTDIR}${_ftw_link}")
file(CREATE_LINK "${_ftw_target}" "$ENV{DESTDIR}${_ftw_link}" SYMBOLIC)
