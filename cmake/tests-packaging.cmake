# cmake/tests-packaging.cmake: tests of packaging, docs and the quay
# command (issue 7).  Included from the root CMakeLists.txt when
# QUAY_BUILD_TESTS is on.  Helpers live in test/packaging/.
#
#   install.build       an installable build (the defaults: no test hooks)
#                       installed into build/pkg/prefix: the fixture of
#   install.<case>      prefix, symbols, pkgconfig, find_package, capi,
#                       host_txn: the installed copy only
#                       (test/packaging/test-installed.sh): files and
#                       LICENSE, host programs built with pkg-config or
#                       find_package(quay) and run under valgrind, nm -D
#                       of libquay and quay/core.so, stock lua5.4
#   package.rockspec    quay-<version>-1.rockspec loads and has the fields
#   package.luarocks    `luarocks make` into a temporary tree (skipped when
#                       luarocks is not installed; unsanitized builds only)
#   package.types       types/quay.lua loads and annotates the live API;
#                       `quay types` annotates every name of a model script
#   docs.<guide>        every ```lua block of docs/<guide>.md runs (and its
#                       ```c blocks compile and run against libquay)
#   docs.README         the README's ```lua blocks (its opening example)
#   docs.demo           scripts/demo.lua, the README's first command, runs
#   cmd.test_*          `quay test` runs busted under Quay's Lua on the
#                       sample app examples/app
#   docs.postgresql.pg  docs/postgresql.md on a fresh PostgreSQL database
#                       (skipped when QUAY_PG_URL is not set)
#   cmd.<case>          the quay command (test/packaging/cmd_test.lua)
#
# The examples' own tests (example.*) are in examples/CMakeLists.txt.

set(_pk ${PROJECT_SOURCE_DIR}/test/packaging)
# run-lua.sh BUILD SANITIZERS: "none", or the list joined with commas (an
# empty argument would vanish from the COMMAND list).
if(QUAY_SANITIZE)
  string(REPLACE ";" "," _pk_san "${QUAY_SANITIZE}")
else()
  set(_pk_san none)
endif()
set(_lua ${_pk}/run-lua.sh ${CMAKE_BINARY_DIR} ${_pk_san})

add_test(NAME install.build
  COMMAND ${_pk}/install-build.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR}
          ${CMAKE_C_COMPILER} ${_pk_san})
set_tests_properties(install.build PROPERTIES TIMEOUT 900
  FIXTURES_SETUP quay_installed)
foreach(_case prefix symbols pkgconfig find_package capi host_txn)
  add_test(NAME install.${_case}
    COMMAND ${_pk}/test-installed.sh ${_case} ${CMAKE_BINARY_DIR}
            ${PROJECT_SOURCE_DIR} ${PROJECT_VERSION} ${CMAKE_C_COMPILER}
            ${_pk_san})
  set_tests_properties(install.${_case} PROPERTIES TIMEOUT 600
    FIXTURES_REQUIRED quay_installed)
endforeach()

add_test(NAME package.rockspec
  COMMAND lua5.4 ${_pk}/check_rockspec.lua
          ${PROJECT_SOURCE_DIR}/quay-${PROJECT_VERSION}-1.rockspec
          ${PROJECT_VERSION} ${CMAKE_BINARY_DIR}/CMakeCache.txt)

if(NOT QUAY_SANITIZE)
  add_test(NAME package.luarocks
    COMMAND ${_pk}/test-luarocks.sh ${PROJECT_SOURCE_DIR}
            ${PROJECT_SOURCE_DIR}/quay-${PROJECT_VERSION}-1.rockspec)
  set_tests_properties(package.luarocks PROPERTIES SKIP_RETURN_CODE 77
    TIMEOUT 900)
endif()

add_test(NAME package.types
  COMMAND ${_lua} ${_pk}/check_types.lua ${PROJECT_SOURCE_DIR}/types/quay.lua
          $<TARGET_FILE:quay_cmd>)

# Compiler line for the ```c blocks of the guides: the build tree's header
# and library (the install test covers the installed copy).
set(_doc_cc "${CMAKE_C_COMPILER} -std=c11 -Wall -Wextra -Werror")
if(QUAY_SANITIZE)
  string(REPLACE ";" "," _doc_san "${QUAY_SANITIZE}")
  string(APPEND _doc_cc " -fsanitize=${_doc_san}")
endif()
string(APPEND _doc_cc " -I${PROJECT_SOURCE_DIR}/include")
foreach(_d ${LUA_INCLUDE_DIRS})
  string(APPEND _doc_cc " -I${_d}")
endforeach()
set(_doc_libs "-L${CMAKE_BINARY_DIR} -Wl,-rpath,${CMAKE_BINARY_DIR} -lquay")
foreach(_l ${LUA_LINK_LIBRARIES} ${SQLITE3_LINK_LIBRARIES})
  string(APPEND _doc_libs " ${_l}")
endforeach()

file(GLOB _guides RELATIVE ${PROJECT_SOURCE_DIR}/docs
     ${PROJECT_SOURCE_DIR}/docs/*.md)
list(REMOVE_ITEM _guides README.md)       # the index: no code
list(SORT _guides)
foreach(_g ${_guides})
  string(REPLACE ".md" "" _name ${_g})
  add_test(NAME docs.${_name}
    COMMAND ${_lua} ${_pk}/doctest.lua docs/${_g}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(docs.${_name} PROPERTIES
    ENVIRONMENT "QUAY_DOC_CC=${_doc_cc};QUAY_DOC_LIBS=${_doc_libs}")
endforeach()
# The C API program of the embedding guide is examples/capi.c.
add_test(NAME docs.embedding.capi
  COMMAND lua5.4 ${_pk}/check_doc_example.lua docs/embedding.md
          examples/capi.c quay_qs_fetch
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# The README's first command runs scripts/demo.lua: it must keep running
# (its sections assert what they print).
add_test(NAME docs.demo
  COMMAND ${_lua} scripts/demo.lua
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# The README's opening example (and every other lua block of it).
add_test(NAME docs.README
  COMMAND ${_lua} ${_pk}/doctest.lua README.md
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
# The PostgreSQL guide runs on PostgreSQL too (skipped without a server).
add_test(NAME docs.postgresql.pg
  COMMAND ${_pk}/doctest-pg.sh ${CMAKE_BINARY_DIR} ${_pk_san} docs/postgresql.md
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(docs.postgresql.pg PROPERTIES SKIP_RETURN_CODE 77)

foreach(_case version help usage run stdin describe describe_error
              error_quay error_lua error_syntax missing_file test_app
              test_fail test_no_busted)
  add_test(NAME cmd.${_case}
    COMMAND ${_lua} ${_pk}/cmd_test.lua $<TARGET_FILE:quay_cmd>
            ${PROJECT_SOURCE_DIR} ${PROJECT_VERSION} ${_case})
endforeach()
