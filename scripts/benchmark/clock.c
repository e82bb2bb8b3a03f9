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
**
** floor.c uses the same two readings, so both sides measure alike.
*/
#define _POSIX_C_SOURCE 200809L   /* clock_gettime */

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int luaopen_benchclock(lua_State *L);

static int clock_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static int clock_cpu(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

/* The "Vm...:" line zKey of /proc/self/status, in KiB (-1 if absent). */
static long status_kb(const char *zKey) {
  char line[256];
  long kb = -1;
  size_t n = strlen(zKey);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, zKey, n) == 0) {
      sscanf(line + n, "%ld", &kb);
      break;
    }
  }
  fclose(f);
  return kb;
}

static int clock_peak_kb(lua_State *L) {
  lua_pushinteger(L, status_kb("VmHWM:"));
  return 1;
}

static int clock_rss_kb(lua_State *L) {
  lua_pushinteger(L, status_kb("VmRSS:"));
  return 1;
}

__attribute__((visibility("default")))
int luaopen_benchclock(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"now", clock_now}, {"cpu", clock_cpu}, {"peak_kb", clock_peak_kb}, {"rss_kb", clock_rss_kb},
    {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
