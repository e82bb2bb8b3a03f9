# cmake/install.cmake: install rules and the pkg-config file (issue 7).
#
# Included at the end of the root CMakeLists.txt.  `cmake --install build
# [--prefix P]` puts
#
#   P/lib/libquay.so*                    the library for host programs
#   P/include/quay.h                     its one public header
#   P/lib/lua/5.4/quay/core.so           the Lua C module   (QUAY_INSTALL_LUA_CDIR)
#   P/share/lua/5.4/quay/init.lua        the Lua layer      (QUAY_INSTALL_LUA_LDIR)
#   P/bin/quay                           the command
#   P/lib/pkgconfig/quay.pc              cflags/libs of libquay (C API)
#   P/lib/pkgconfig/quay-lua.pc          the same plus Lua's (Lua hosts)
#   P/lib/cmake/quay/quayConfig*.cmake   find_package(quay): quay::quay
#   P/share/quay/types/quay.lua          LuaLS annotations (---@meta)
#   P/share/doc/quay/*.md, LICENSE       the guides and the license
#
# quay.pc gives a C program on the engine's C API only Quay's include
# directory: quay.h needs no other header, so the dependencies' link
# flags are Libs.private (Requires.private would add their cflags,
# libpq's and Lua's include directories, to every consumer).  A Lua host
# uses quay-lua.pc, which requires quay and Lua 5.4.
#
# "lib" is CMAKE_INSTALL_LIBDIR (GNUInstallDirs: lib/<multiarch> when the
# prefix is /usr on Debian), so the Lua module lands in one of the
# directories on stock lua5.4's package.cpath for both /usr and /usr/local.
# LuaRocks sets the two Lua directories to the rock's own (the rockspec).

set(QUAY_INSTALL_LUA_CDIR "${CMAKE_INSTALL_LIBDIR}/lua/5.4" CACHE STRING
  "Where quay/core.so is installed (relative to the prefix, or absolute)")
set(QUAY_INSTALL_LUA_LDIR "${CMAKE_INSTALL_DATADIR}/lua/5.4" CACHE STRING
  "Where quay/init.lua is installed (relative to the prefix, or absolute)")

install(TARGETS libquay EXPORT quayTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set_target_properties(libquay PROPERTIES EXPORT_NAME quay)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/quay.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS quay_core LIBRARY DESTINATION ${QUAY_INSTALL_LUA_CDIR}/quay)
install(FILES ${PROJECT_SOURCE_DIR}/lua/quay/init.lua
  DESTINATION ${QUAY_INSTALL_LUA_LDIR}/quay)
install(TARGETS quay_cmd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/types/quay.lua
  DESTINATION ${CMAKE_INSTALL_DATADIR}/quay/types)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
  DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")

# The installed command finds libquay relative to itself, so a prefix can
# be moved (and the test's temporary prefix works without LD_LIBRARY_PATH).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_quay_rpath "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _quay_rel "/p/${CMAKE_INSTALL_BINDIR}"
       "/p/${CMAKE_INSTALL_LIBDIR}")
  set(_quay_rpath "$ORIGIN/${_quay_rel}")
endif()
set_target_properties(quay_cmd PROPERTIES INSTALL_RPATH "${_quay_rpath}")

# CMake package: find_package(quay) gives the imported target quay::quay
# (libquay and its include directory).  Relocatable: the paths are
# relative to the installed quayConfig.cmake.
include(CMakePackageConfigHelpers)
set(QUAY_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/quay")
install(EXPORT quayTargets NAMESPACE quay:: FILE quayTargets.cmake
  DESTINATION ${QUAY_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/quayConfig.cmake.in
  ${CMAKE_BINARY_DIR}/quayConfig.cmake
  INSTALL_DESTINATION ${QUAY_INSTALL_CMAKEDIR})
# 0.x: minor versions may break the API, so only the same minor matches.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/quayConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/quayConfig.cmake
  ${CMAKE_BINARY_DIR}/quayConfigVersion.cmake
  DESTINATION ${QUAY_INSTALL_CMAKEDIR})

# pkg-config files.  They are written at install time, so that the prefix
# in them is the one actually installed to (`cmake --install --prefix P`).
# Libs.private: what libquay links, as linker flags (never cflags).
set(_quay_pc_libs_private "")
foreach(_l ${SQLITE3_LDFLAGS} ${JANSSON_LDFLAGS} ${PQ_LDFLAGS})
  string(APPEND _quay_pc_libs_private " ${_l}")
endforeach()
if(LUA_FOUND)                   # found through pkg-config as lua5.4
  foreach(_l ${LUA_LDFLAGS})
    string(APPEND _quay_pc_libs_private " ${_l}")
  endforeach()
  set(_quay_pc_lua_requires "lua5.4")
  set(_quay_pc_lua_cflags "")
else()                          # LuaRocks: LUA_INCDIR
  set(_quay_pc_lua_requires "")
  set(_quay_pc_lua_cflags "-I${LUA_INCLUDE_DIRS}")
endif()
string(APPEND _quay_pc_libs_private " -lm")
string(STRIP "${_quay_pc_libs_private}" _quay_pc_libs_private)

# "${prefix}/dir" for a relative dir, the dir itself when absolute.
function(_quay_pc_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\\\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
_quay_pc_dir(_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
_quay_pc_dir(_pc_incdir "${CMAKE_INSTALL_INCLUDEDIR}")
_quay_pc_dir(_pc_lcdir "${QUAY_INSTALL_LUA_CDIR}")
_quay_pc_dir(_pc_lldir "${QUAY_INSTALL_LUA_LDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_pc_dest "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
  set(_pc_dest "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()
install(CODE "
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(QUAY_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(QUAY_PC_LIBDIR \"${_pc_libdir}\")
  set(QUAY_PC_INCLUDEDIR \"${_pc_incdir}\")
  set(QUAY_PC_LUA_CDIR \"${_pc_lcdir}\")
  set(QUAY_PC_LUA_LDIR \"${_pc_lldir}\")
  set(QUAY_PC_LIBS_PRIVATE \"${_quay_pc_libs_private}\")
  set(QUAY_PC_LUA_REQUIRES \"${_quay_pc_lua_requires}\")
  set(QUAY_PC_LUA_CFLAGS \"${_quay_pc_lua_cflags}\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/quay.pc.in\"
                 \"${CMAKE_BINARY_DIR}/quay.pc\" @ONLY)
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/quay-lua.pc.in\"
                 \"${CMAKE_BINARY_DIR}/quay-lua.pc\" @ONLY)
  file(INSTALL DESTINATION \"${_pc_dest}\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/quay.pc\" \"${CMAKE_BINARY_DIR}/quay-lua.pc\")
")
