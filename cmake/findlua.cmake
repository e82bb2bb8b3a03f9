# cmake/findlua.cmake: locate Lua 5.4 (issue 7, packaging).
#
# LuaRocks (quay-*.rockspec, build type cmake) passes LUA_INCDIR, and
# LUA_LIBDIR/LUALIB where it knows them; those win.  Otherwise pkg-config's
# lua5.4 (Debian's name).  Either way the result is the imported target
# PkgConfig::LUA and LUA_INCLUDE_DIRS, which the rest of the build uses.
if(LUA_INCDIR)
  add_library(PkgConfig::LUA INTERFACE IMPORTED)
  set(LUA_INCLUDE_DIRS "${LUA_INCDIR}")
  target_include_directories(PkgConfig::LUA INTERFACE "${LUA_INCDIR}")
  if(LUA_LIBDIR AND LUALIB AND EXISTS "${LUA_LIBDIR}/${LUALIB}")
    set(_quay_lualib "${LUA_LIBDIR}/${LUALIB}")
  else()
    find_library(_quay_lualib NAMES lua5.4 lua-5.4 lua54 lua
                 HINTS "${LUA_LIBDIR}")
  endif()
  if(_quay_lualib)
    target_link_libraries(PkgConfig::LUA INTERFACE "${_quay_lualib}")
  endif()
  message(STATUS "Lua from LUA_INCDIR: ${LUA_INCDIR} (${_quay_lualib})")
else()
  pkg_check_modules(LUA REQUIRED IMPORTED_TARGET lua5.4)
endif()
