-- quay-0.1.0-1.rockspec: install Quay the LuaRocks way.
--
--   luarocks make quay-0.1.0-1.rockspec      (from a checkout)
--
-- Build type "cmake": LuaRocks runs CMake with the variables below and
-- then builds the "install" target.  The Lua C module goes to the rock's
-- LIBDIR and the Lua layer to its LUADIR, from where LuaRocks deploys them
-- to the tree's lib/lua/5.4 and share/lua/5.4.  The C library, header and
-- pkg-config file stay inside the rock's own directory (an absolute libdir
-- that LuaRocks does not deploy), and the `quay` command, deployed to the
-- tree's bin/, finds libquay there through its RPATH.
--
-- Needs CMake >= 3.18, a C11 compiler, pkg-config and SQLite 3's headers
-- and jansson's (Debian: cmake gcc pkg-config libsqlite3-dev
-- libjansson-dev); libpq's headers too when
-- the PostgreSQL driver is built.
rockspec_format = "3.0"
package = "quay"
version = "0.1.0-1"

source = {
  -- Not published yet: a placeholder to replace with the repository URL
  -- and tag when Quay is released.  `luarocks make` builds the checkout it
  -- runs in and never fetches this.
  url = "git+https://example.invalid/quay.git",
  tag = "v0.1.0",
}

description = {
  summary = "An embedded ORM engine in C with a Lua 5.4 binding",
  detailed = [[
Quay resolves relations, plans and runs eager loading (JOINs and batched
IN queries) and carries out cascades in C; Lua 5.4 scripts declare models
and drive queries through immutable query sets.  Backends: SQLite and
PostgreSQL (libpq).  Also installs libquay and quay.h for C host programs,
and the `quay` command.
]],
  license = "MIT",                 -- see LICENSE
  labels = { "orm", "database", "sqlite", "postgresql" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  SQLITE3 = { header = "sqlite3.h" },
  JANSSON = { header = "jansson.h" },
}

build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    -- Outside $(LIBDIR), so LuaRocks does not deploy the C library as if
    -- it were a Lua module.
    CMAKE_INSTALL_LIBDIR = "$(PREFIX)/clib",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA_LIBDIR = "$(LUA_LIBDIR)",
    LUALIB = "$(LUALIB)",
    QUAY_INSTALL_LUA_CDIR = "$(LIBDIR)",
    QUAY_INSTALL_LUA_LDIR = "$(LUADIR)",
    QUAY_BUILD_TESTS = "OFF",
    QUAY_BUILD_EXAMPLES = "OFF",
    QUAY_TEST = "OFF",
  },
}
