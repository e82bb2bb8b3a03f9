/*
** bindings/quay_main.c
** The `quay` command: runs a Lua script with the Quay module preloaded.
** See LICENSE
**
**   quay script.lua [args]     run a script; `arg` as in lua(1)
**   quay --version             print the version
**   quay describe script.lua   run the script, then print describe() of
**                              every db it opened, as JSON
**
** Errors are reported with the script's file and line and a traceback,
** and exit with status 1.  The script runs in protected mode (lua.c's
** pmain pattern): nothing here can be unwound by a Lua error.
*/
#include "quay.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
    }
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* JSON encoding of describe() results, written by a small Lua chunk. */
static const char zDescribe[] =
  "local dbs = ...\n"
  "local function esc(s) return (s:gsub('[%c\"\\\\]', function(c)\n"
  "  local m = { ['\"'] = '\\\\\"', ['\\\\'] = '\\\\\\\\', ['\\n'] = '\\\\n',\n"
  "    ['\\t'] = '\\\\t', ['\\r'] = '\\\\r' }\n"
  "  return m[c] or string.format('\\\\u%04x', c:byte()) end)) end\n"
  "local function enc(v, ind)\n"
  "  local t = type(v)\n"
  "  if t == 'string' then return '\"' .. esc(v) .. '\"' end\n"
  "  if t == 'number' or t == 'boolean' then return tostring(v) end\n"
  "  if t ~= 'table' then return 'null' end\n"
  "  local pad, inner = ('  '):rep(ind), ('  '):rep(ind + 1)\n"
  "  if #v > 0 or next(v) == nil then\n"
  "    if next(v) == nil then return '[]' end\n"
  "    local out = {}\n"
  "    for _, x in ipairs(v) do out[#out + 1] = inner .. enc(x, ind + 1) end\n"
  "    return '[\\n' .. table.concat(out, ',\\n') .. '\\n' .. pad .. ']'\n"
  "  end\n"
  "  local keys = {}\n"
  "  for k in pairs(v) do keys[#keys + 1] = tostring(k) end\n"
  "  table.sort(keys)\n"
  "  local out = {}\n"
  "  for _, k in ipairs(keys) do\n"
  "    out[#out + 1] = inner .. '\"' .. esc(k) .. '\": ' .. enc(v[k], ind + 1)\n"
  "  end\n"
  "  return '{\\n' .. table.concat(out, ',\\n') .. '\\n' .. pad .. '}'\n"
  "end\n"
  "local merged = {}\n"
  "for _, db in ipairs(dbs) do\n"
  "  for name, m in pairs(db:describe()) do merged[name] = m end\n"
  "end\n"
  "io.write(enc(merged, 0), '\\n')\n";

typedef struct Args {
  int argc;
  char **argv;
  int status;
} Args;

/* Protected main: everything that can raise runs here. */
static int pmain(lua_State *L) {
  Args *a = lua_touserdata(L, 1);
  int i, iScript = 1, bDescribe = 0, base;
  luaL_openlibs(L);
  quay_openlibs(L);
  if (a->argc >= 2 && strcmp(a->argv[1], "--version") == 0) {
    printf("quay %s (Lua %s.%s)\n", QUAY_VERSION, LUA_VERSION_MAJOR,
           LUA_VERSION_MINOR);
    return 0;
  }
  if (a->argc >= 2 && strcmp(a->argv[1], "describe") == 0) {
    bDescribe = 1;
    iScript = 2;
  }
  if (iScript >= a->argc) {
    fprintf(stderr, "usage: quay script.lua [args]\n"
                    "       quay describe script.lua [args]\n"
                    "       quay --version\n");
    a->status = 2;
    return 0;
  }
  /* arg table as in lua(1) */
  lua_createtable(L, a->argc, 1);
  for (i = 0; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i - iScript);
  }
  lua_setglobal(L, "arg");
  if (bDescribe) {
    /* Record every db the script opens. */
    if (luaL_dostring(L,
          "local quay = require('quay'); local open = quay.open\n"
          "_QUAY_DBS = {}\n"
          "quay.open = function(...) local db = open(...)\n"
          "  _QUAY_DBS[#_QUAY_DBS + 1] = db; return db end") != LUA_OK) {
      return lua_error(L);
    }
  }
  lua_pushcfunction(L, traceback);
  base = lua_gettop(L);
  if (luaL_loadfile(L, a->argv[iScript]) != LUA_OK) {
    fprintf(stderr, "quay: %s\n", lua_tostring(L, -1));
    a->status = 1;
    return 0;
  }
  for (i = iScript + 1; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  if (lua_pcall(L, a->argc - iScript - 1, 0, base) != LUA_OK) {
    fprintf(stderr, "quay: %s\n", lua_tostring(L, -1));
    a->status = 1;
    return 0;
  }
  if (bDescribe) {
    if (luaL_loadstring(L, zDescribe) != LUA_OK) return lua_error(L);
    lua_getglobal(L, "_QUAY_DBS");
    if (lua_pcall(L, 1, 0, base) != LUA_OK) {
      fprintf(stderr, "quay: %s\n", lua_tostring(L, -1));
      a->status = 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  Args a;
  int rc;
  if (L == NULL) {
    fprintf(stderr, "quay: cannot create a Lua state (out of memory)\n");
    return 1;
  }
  a.argc = argc;
  a.argv = argv;
  a.status = 0;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  rc = lua_pcall(L, 1, 0, 0);
  if (rc != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "quay: %s\n", msg ? msg : "(error object)");
    a.status = 1;
  }
  lua_close(L);
  return a.status;
}
