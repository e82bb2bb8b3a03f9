/*
** bindings/quay_main.c
** The `quay` command: runs a Lua script with the Quay module preloaded.
** See LICENSE
**
**   quay script.lua [args]     run a script; `arg` and `...` as in lua(1)
**   quay - [args]              run the script read from standard input
**   quay describe script.lua [args]
**                              run the script, then print describe() of
**                              every db it opened as one JSON object keyed
**                              by model name (reference.md "Schema")
**   quay inspect URL           print a model script for an existing
**                              database (reference.md "Schema evolution")
**   quay migrate make|plan|apply|status MODELS ... --db URL
**                              versioned migrations (bindings/quay_cli.lua)
**   quay types MODELS          print LuaLS annotations of a model script's
**                              models (reference.md "Model behaviour")
**   quay test [busted options] [paths]
**                              run an app's busted specs inside this
**                              interpreter: Lua 5.4 with Quay preloaded,
**                              whatever `lua` and `busted` are on PATH
**   quay --version             print the versions of Quay and Lua
**   quay --help                print the usage
**
** The module comes from libquay itself (quay_openlibs), so the command
** needs no Lua files on disk and ignores LUA_PATH for "quay".
**
** Errors.  A failing script prints one line "quay: FILE:LINE: message"
** on stderr, then a traceback, and the command exits with status 1.  Quay
** raises error objects (tables with code and message) from C functions,
** whose messages carry no position, so the message handler adds the file
** and line of the innermost Lua frame and the error code:
**   quay: app.lua:12: User has no field or relation 'nam' (unknown_field)
** A usage error exits with status 2.
**
** In describe mode standard output is reserved for the JSON: whatever the
** script prints goes to stderr, so `quay describe app.lua > schema.json`
** gives a clean file.
**
** The tools (inspect, migrate, types) are bindings/quay_cli.lua, compiled into
** this program; they print their own output and raise Quay error objects
** that name the file and the fix, printed as "quay: message (code)" with
** no position (the position would be the tool's, not the user's).  A
** usage error exits with status 2.
**
** The script runs in protected mode (lua.c's pmain pattern): nothing here
** can be unwound by a Lua error, and lua_close always runs.
*/
#include "quay.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const unsigned char quay__lua_cli[];
extern const size_t quay__lua_cli_len;

static const char zUsage[] =
  "usage: quay script.lua [args]        run a script with Quay preloaded\n"
  "       quay - [args]                 run a script read from stdin\n"
  "       quay describe script.lua [args]\n"
  "                                     run it, print the schema as JSON\n"
  "       quay inspect URL              print a model script for a database\n"
  "       quay migrate make MODELS NAME --db URL [--dir DIR] [--allow-drop]\n"
  "       quay migrate plan|apply|status MODELS --db URL [--dir DIR]\n"
  "                                     versioned migrations\n"
  "       quay types MODELS             print LuaLS annotations of the models\n"
  "       quay test [busted options] [paths]\n"
  "                                     run busted specs under Quay's Lua\n"
  "       quay --version                print versions\n";

/*
** Non-0 when zMsg's first line already starts with a position
** ("chunk:LINE: "), as messages from error() and the compiler do.
*/
static int has_position(const char *zMsg) {
  const char *z;
  for (z = zMsg; *z && *z != '\n'; z++) {
    if (z[0] == ':' && z[1] >= '0' && z[1] <= '9') {
      const char *p = z + 1;
      while (*p >= '0' && *p <= '9') p++;
      if (*p == ':') return 1;
    }
  }
  return 0;
}

/*
** Push "FILE:LINE:" of the innermost Lua function on the stack of L, or
** nothing and return 0 when there is none.
*/
static int push_where(lua_State *L) {
  lua_Debug ar;
  int level;
  for (level = 1; lua_getstack(L, level, &ar); level++) {
    if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d:", ar.short_src, ar.currentline);
      return 1;
    }
  }
  return 0;
}

/*
** Message handler.  Stack effect: [err] -> [err, .., message+traceback].
** Turns any error value into "FILE:LINE: message (code)" and appends a
** traceback.
*/
static int msghandler(lua_State *L) {
  const char *zMsg = lua_tostring(L, 1);
  const char *zCode = NULL;
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_pushliteral(L, "quay_describe_exit");        /* os.exit in describe */
    if (lua_rawget(L, 1) != LUA_TNIL) {
      lua_settop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  if (zMsg == NULL) {
    if (lua_type(L, 1) == LUA_TTABLE) {
      lua_getfield(L, 1, "code");                    /* [err, code] */
      zCode = lua_tostring(L, -1);
    }
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
      zMsg = lua_tostring(L, -1);
    } else {
      zMsg = lua_pushfstring(L, "(error object is a %s value)",
                             luaL_typename(L, 1));
    }
  }
  if (!has_position(zMsg) && push_where(L)) {
    zMsg = lua_pushfstring(L, "%s %s", lua_tostring(L, -1), zMsg);
  }
  if (zCode) zMsg = lua_pushfstring(L, "%s (%s)", zMsg, zCode);
  luaL_traceback(L, L, zMsg, 1);
  return 1;
}

/*
** JSON encoding of the describe() results.  Objects have sorted keys so
** the output is stable; the top level is always an object.  A string that
** is not UTF-8 (a blob's default) has its bytes from 0x80 up written as
** \u0080..\u00ff, so the output stays JSON.
*/
static const char zDescribe[] =
  "local dbs = ...\n"
  "local function esc(s)\n"
  "  local pat = utf8.len(s) and '[%c\"\\\\]' or '[%c\"\\\\\\128-\\255]'\n"
  "  return (s:gsub(pat, function(c)\n"
  "  local m = { ['\"'] = '\\\\\"', ['\\\\'] = '\\\\\\\\', ['\\n'] = '\\\\n',\n"
  "    ['\\t'] = '\\\\t', ['\\r'] = '\\\\r' }\n"
  "  return m[c] or string.format('\\\\u%04x', c:byte()) end)) end\n"
  "local function enc(v, ind, obj)\n"
  "  local t = type(v)\n"
  "  if t == 'string' then return '\"' .. esc(v) .. '\"' end\n"
  "  if t == 'boolean' then return tostring(v) end\n"
  "  if t == 'number' then\n"
  "    if v ~= v or v == math.huge or v == -math.huge then return 'null' end\n"
  "    return math.type(v) == 'integer' and tostring(v)\n"
  "      or string.format('%.17g', v)\n"
  "  end\n"
  "  if t ~= 'table' then return 'null' end\n"
  "  local pad, inner = ('  '):rep(ind), ('  '):rep(ind + 1)\n"
  "  if not obj and (#v > 0 or next(v) == nil) then\n"
  "    if next(v) == nil then return '[]' end\n"
  "    local out = {}\n"
  "    for _, x in ipairs(v) do out[#out + 1] = inner .. enc(x, ind + 1) end\n"
  "    return '[\\n' .. table.concat(out, ',\\n') .. '\\n' .. pad .. ']'\n"
  "  end\n"
  "  if next(v) == nil then return '{}' end\n"
  "  local keys = {}\n"
  "  for k in pairs(v) do keys[#keys + 1] = tostring(k) end\n"
  "  table.sort(keys)\n"
  "  local out = {}\n"
  "  for _, k in ipairs(keys) do\n"
  "    local x = v[k]; if x == nil then x = v[tonumber(k)] end\n"
  "    out[#out + 1] = inner .. '\"' .. esc(k) .. '\": ' .. enc(x, ind + 1)\n"
  "  end\n"
  "  return '{\\n' .. table.concat(out, ',\\n') .. '\\n' .. pad .. '}'\n"
  "end\n"
  "local merged = {}\n"
  "for _, db in ipairs(dbs) do\n"
  "  local d = dbs.closed[db]\n"
  "  if db:is_open() or not d then d = db:describe() end\n"
  "  for name, m in pairs(d) do merged[name] = m end\n"
  "end\n"
  "return enc(merged, 0, true)\n";

/*
** Run before the script in describe mode: wraps quay.open so that every
** db the script opens is kept in the table passed in (so describe() can
** still run after the script dropped them), and db:close() and __close so
** that a db is described just before the script closes it (a closed db
** raises `connection` from describe()): dbs.closed[db] keeps that.
** os.exit(code) ends the script with an error { quay_describe_exit =
** code } that the message handler passes on as it is: the schema is
** printed after os.exit(0) too, and nothing after another code, which
** is the command's exit status.
*/
static const char zRecordOpens[] =
  "local dbs = ...\n"
  "os.exit = function(code)\n"
  "  if code == nil or code == true then code = 0\n"
  "  elseif code == false then code = 1 end\n"
  "  error({ quay_describe_exit = math.tointeger(code) or 1 }, 0)\n"
  "end\n"
  "dbs.closed = {}\n"
  "local quay = require('quay')\n"
  "local open = quay.open\n"
  "local wrapped = false\n"
  "local function keep(db)\n"
  "  if db:is_open() then\n"
  "    local ok, d = pcall(db.describe, db)\n"
  "    if ok then dbs.closed[db] = d end\n"
  "  end\n"
  "end\n"
  "quay.open = function(...)\n"
  "  local db = open(...)\n"
  "  dbs[#dbs + 1] = db\n"
  "  if not wrapped then\n"
  "    wrapped = true\n"
  "    local mt = getmetatable(db)\n"
  "    local close, tbc = mt.__index.close, mt.__close\n"
  "    mt.__index.close = function(d, ...) keep(d) return close(d, ...) end\n"
  "    mt.__close = function(d, ...) keep(d) return tbc(d, ...) end\n"
  "  end\n"
  "  return db\n"
  "end\n";

typedef struct Args {
  int argc;
  char **argv;
  int status;               /* exit status */
  int fdStdout;             /* saved stdout in describe mode, else -1 */
} Args;

/* Describe mode: send the script's stdout to stderr until restored. */
static void divert_stdout(Args *a) {
  fflush(stdout);
  a->fdStdout = dup(1);
  if (a->fdStdout >= 0) dup2(2, 1);
}

static void restore_stdout(Args *a) {
  if (a->fdStdout >= 0) {
    fflush(stdout);
    dup2(a->fdStdout, 1);
    close(a->fdStdout);
    a->fdStdout = -1;
  }
}

static int report(lua_State *L, Args *a);

/*
** {==================================================================
** The tools (inspect, migrate)
** ===================================================================
*/
/* __close/__gc of a directory handle box: close it once. */
static int dir_close(lua_State *L) {
  DIR **pd = luaL_checkudata(L, 1, "quay.cli.Dir");
  if (*pd) closedir(*pd);
  *pd = NULL;
  return 0;
}

/*
** sys.listdir(path): the names in a directory (not "." files), or nil
** when it cannot be opened.  The handle lives in a to-be-closed box made
** before it is opened, so a Lua error while names are pushed closes it.
*/
static int sys_listdir(lua_State *L) {
  const char *zDir = luaL_checkstring(L, 1);
  DIR **pd;
  struct dirent *e;
  int n = 0;
  pd = lua_newuserdatauv(L, sizeof(DIR *), 0);       /* [path, box] */
  *pd = NULL;
  luaL_setmetatable(L, "quay.cli.Dir");
  lua_toclose(L, -1);
  lua_newtable(L);                                   /* [path, box, names] */
  *pd = opendir(zDir);
  if (*pd == NULL) {
    lua_pushnil(L);
    return 1;
  }
  while ((e = readdir(*pd)) != NULL) {
    if (e->d_name[0] == '.') continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* sys.mkdir(path): create a directory (an existing one is fine). */
static int sys_mkdir(lua_State *L) {
  const char *zDir = luaL_checkstring(L, 1);
  if (mkdir(zDir, 0777) != 0 && errno != EEXIST) {
    return luaL_error(L, "cannot create directory %s: %s", zDir,
                      strerror(errno));
  }
  return 0;
}

/*
** Message handler of the tools: a Quay error object prints as "message
** (code)" (code "usage" as the message alone), anything else with a
** traceback.
*/
static int tool_msghandler(lua_State *L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    const char *zCode, *zMsg;
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    zCode = lua_tostring(L, -2);
    zMsg = lua_tostring(L, -1);
    if (zCode && zMsg) {
      if (strcmp(zCode, "usage") == 0) lua_pushfstring(L, "usage\n%s", zMsg);
      else lua_pushfstring(L, "%s (%s)", zMsg, zCode);
      return 1;
    }
  }
  return msghandler(L);
}

/* quay inspect|migrate|types ...: [..] -> [..]. */
static int run_tool(lua_State *L, Args *a) {
  int i, iMsgh;
  if (luaL_newmetatable(L, "quay.cli.Dir")) {
    lua_pushcfunction(L, dir_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, dir_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, tool_msghandler);
  iMsgh = lua_gettop(L);
  if (luaL_loadbuffer(L, (const char *)quay__lua_cli, quay__lua_cli_len,
                      "=quay") != LUA_OK) {
    return lua_error(L);
  }
  lua_createtable(L, 0, 2);                          /* [.., chunk, sys] */
  lua_pushcfunction(L, sys_listdir);
  lua_setfield(L, -2, "listdir");
  lua_pushcfunction(L, sys_mkdir);
  lua_setfield(L, -2, "mkdir");
  if (lua_pcall(L, 1, 1, iMsgh) != LUA_OK) return report(L, a);
  lua_getfield(L, -1, a->argv[1]);                   /* [.., cli, fn] */
  luaL_checkstack(L, a->argc, "too many arguments");
  for (i = 2; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  if (lua_pcall(L, a->argc - 2, 0, iMsgh) != LUA_OK) {
    const char *zMsg = lua_tostring(L, -1);
    if (zMsg && strncmp(zMsg, "usage\n", 6) == 0) {
      fprintf(stderr, "%s\n", zMsg + 6);
      a->status = 2;
      return 0;
    }
    return report(L, a);
  }
  return 0;
}
/* }================================================================== */

/*
** {==================================================================
** quay test: busted inside this interpreter
** ===================================================================
** On Debian, installing luarocks makes `lua` and the `busted` script run
** under Lua 5.1, where Quay's module cannot load (undefined symbol:
** lua_absindex).  `quay test` needs no interpreter from PATH: it runs
** busted's runner (busted.runner, from the Lua 5.4 module path: Debian's
** lua-busted, or `luarocks --lua-version 5.4 install busted`) in this
** Lua 5.4 state, where `require "quay"` is the copy compiled into
** libquay.  The arguments are busted's own (paths, --pattern, -o, ...),
** and so is the exit status: 0 when every spec passes.
*/
static const char zBusted[] =
  "local ok, runner = pcall(require, 'busted.runner')\n"
  "if not ok then\n"
  "  error(setmetatable({ code = 'usage', message =\n"
  "    'quay test: busted for Lua 5.4 is not installed (Debian: apt-get '\n"
  "    .. 'install lua-busted; LuaRocks: luarocks --lua-version 5.4 '\n"
  "    .. 'install busted):\\n' .. tostring(runner) }, { __tostring =\n"
  "    function(e) return e.message end }), 0)\n"
  "end\n"
  "runner({ standalone = false })\n";

/* quay test [args]: [..] -> [..]. */
static int run_test(lua_State *L, Args *a) {
  int i, iMsgh;
  /* arg as busted's runner reads it: arg[1..] its options and paths. */
  lua_createtable(L, a->argc - 2, 2);
  lua_pushstring(L, a->argv[0]);
  lua_rawseti(L, -2, -1);
  lua_pushliteral(L, "quay test");
  lua_rawseti(L, -2, 0);
  for (i = 2; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, tool_msghandler);
  iMsgh = lua_gettop(L);
  if (luaL_loadbuffer(L, zBusted, sizeof(zBusted) - 1, "=quay test") !=
      LUA_OK) {
    return lua_error(L);
  }
  if (lua_pcall(L, 0, 0, iMsgh) != LUA_OK) {
    const char *zMsg = lua_tostring(L, -1);
    if (zMsg && strncmp(zMsg, "usage\n", 6) == 0) {
      fprintf(stderr, "%s\n", zMsg + 6);
      a->status = 2;
      return 0;
    }
    return report(L, a);
  }
  return 0;
}
/* }================================================================== */

/* Report the error on top of the stack and set the exit status. */
static int report(lua_State *L, Args *a) {
  const char *zMsg = lua_tostring(L, -1);
  restore_stdout(a);
  fprintf(stderr, "quay: %s\n", zMsg ? zMsg : "(error object)");
  fflush(stderr);
  a->status = 1;
  return 0;
}

/*
** Protected main.  Stack effect: [args] -> [...].  Everything that can
** raise runs here.
*/
static int pmain(lua_State *L) {
  Args *a = lua_touserdata(L, 1);
  int i, iScript = 1, bDescribe = 0, iMsgh, iDbs = 0, nArg;
  const char *zScript;
  luaL_openlibs(L);
  quay_openlibs(L);
  if (a->argc >= 2 && (strcmp(a->argv[1], "--version") == 0 ||
                       strcmp(a->argv[1], "-v") == 0 ||
                       strcmp(a->argv[1], "--help") == 0 ||
                       strcmp(a->argv[1], "-h") == 0)) {
    if (a->argc > 2) {
      /* Never ignore an argument: `quay --version extra` is a usage error. */
      fprintf(stderr, "quay: %s takes no argument (misuse): '%s'\n",
              a->argv[1], a->argv[2]);
      fputs(zUsage, stderr);
      a->status = 2;
      return 0;
    }
    if (strcmp(a->argv[1], "--version") == 0 ||
        strcmp(a->argv[1], "-v") == 0) {
      printf("quay %s (%s)\n", QUAY_VERSION, LUA_RELEASE);
    } else {
      fputs(zUsage, stdout);
    }
    return 0;
  }
  if (a->argc >= 2 && (strcmp(a->argv[1], "inspect") == 0 ||
                       strcmp(a->argv[1], "migrate") == 0 ||
                       strcmp(a->argv[1], "types") == 0)) {
    return run_tool(L, a);
  }
  if (a->argc >= 2 && strcmp(a->argv[1], "test") == 0) {
    return run_test(L, a);
  }
  if (a->argc >= 2 && strcmp(a->argv[1], "describe") == 0) {
    bDescribe = 1;
    iScript = 2;
  }
  if (iScript >= a->argc ||
      (a->argv[iScript][0] == '-' && a->argv[iScript][1] != 0)) {
    fputs(zUsage, stderr);
    a->status = 2;
    return 0;
  }
  zScript = a->argv[iScript];
  /* arg table as in lua(1): arg[0] the script, arg[1..] its arguments. */
  lua_createtable(L, a->argc - iScript - 1, iScript + 1);
  for (i = 0; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i - iScript);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, msghandler);
  iMsgh = lua_gettop(L);
  if (bDescribe) {
    lua_newtable(L);                                 /* [.., mh, dbs] */
    iDbs = lua_gettop(L);
    if (luaL_loadstring(L, zRecordOpens) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, iDbs);
    if (lua_pcall(L, 1, 0, iMsgh) != LUA_OK) return report(L, a);
    divert_stdout(a);
  }
  if (luaL_loadfile(L, strcmp(zScript, "-") == 0 ? NULL : zScript) !=
      LUA_OK) {
    return report(L, a);
  }
  nArg = a->argc - iScript - 1;
  luaL_checkstack(L, nArg, "too many arguments");
  for (i = iScript + 1; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  if (lua_pcall(L, nArg, 0, iMsgh) != LUA_OK) {
    int bExit = 0;
    lua_Integer code = 0;
    if (bDescribe && lua_type(L, -1) == LUA_TTABLE) {
      lua_pushliteral(L, "quay_describe_exit");
      lua_rawget(L, -2);
      code = lua_tointegerx(L, -1, &bExit);
      lua_pop(L, 1);
    }
    if (!bExit) return report(L, a);
    lua_pop(L, 1);
    if (code != 0) {
      restore_stdout(a);
      a->status = (int)(code & 0xff);
      return 0;
    }
  }
  if (bDescribe) {
    if (luaL_loadstring(L, zDescribe) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, iDbs);
    if (lua_pcall(L, 1, 1, iMsgh) != LUA_OK) return report(L, a);
    restore_stdout(a);
    fputs(lua_tostring(L, -1), stdout);
    fputc('\n', stdout);
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
  a.fdStdout = -1;
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  rc = lua_pcall(L, 1, 0, 0);
  restore_stdout(&a);
  if (rc != LUA_OK) {
    const char *zMsg = lua_tostring(L, -1);
    fprintf(stderr, "quay: %s\n", zMsg ? zMsg : "(error object)");
    a.status = 1;
  }
  lua_close(L);
  if (fflush(stdout) != 0 && a.status == 0) {
    perror("quay: stdout");
    a.status = 1;
  }
  return a.status;
}
