/*
** scripts/benchmark/clock.c
** benchclock: the Lua module the Quay side of the benchmark times itself
** with.  See LICENSE
**
**   local clock = require("benchclock")
**   clock.now()      -- seconds, CLOCK_MONOTONIC, as a float
**   clock.cpu()      -- seconds of CPU used by this process (user + system)
**   clock.peak_kb()  -- VmHWM of this process (peak resident set), in KiB
**   clock.rss_kb()   -- VmRSS of this process (resident set now), in KiB
**   clock.proc_cpu(pid) -- seconds of CPU used so far by process pid (the
**                       PostgreSQL backend serving the connection), or nil
**                       when /proc cannot tell (a server on another host)
**   clock.net()      -- sends, receives, round trips, bytes sent, bytes
**                       received so far, when netcount.so is preloaded;
**                       else nil
**
** floor.c and floor_pg.c use the same readings, so both sides measure alike.
*/
#define _GNU_SOURCE               /* RTLD_DEFAULT */

#include <dlfcn.h>

#define FLOOR_NAME "benchclock"
#include "floor_util.h"           /* cpu_now, now, status_kb, proc_cpu */

int luaopen_benchclock(lua_State *L);

static int clock_now(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

static int clock_cpu(lua_State *L) {
  lua_pushnumber(L, cpu_now());
  return 1;
}

static int clock_peak_kb(lua_State *L) {
  lua_pushinteger(L, status_kb("VmHWM:"));
  return 1;
}

static int clock_rss_kb(lua_State *L) {
  lua_pushinteger(L, status_kb("VmRSS:"));
  return 1;
}

static int clock_proc_cpu(lua_State *L) {
  double t = proc_cpu((long)luaL_checkinteger(L, 1));
  if (t < 0) return 0;
  lua_pushnumber(L, t);
  return 1;
}

typedef void (*net_fn)(long long *);

static int clock_net(lua_State *L) {
  long long a[5];
  int i;
  net_fn f = (net_fn)dlsym(RTLD_DEFAULT, "quay_bench_net");
  if (f == NULL) return 0;
  f(a);
  for (i = 0; i < 5; i++) lua_pushinteger(L, (lua_Integer)a[i]);
  return 5;
}

__attribute__((visibility("default")))
int luaopen_benchclock(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"now", clock_now}, {"cpu", clock_cpu}, {"peak_kb", clock_peak_kb},
    {"rss_kb", clock_rss_kb}, {"proc_cpu", clock_proc_cpu}, {"net", clock_net},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
