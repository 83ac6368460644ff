/* SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * backendai_lua: the two things the Lua driver (lua_driver.lua) cannot do in plain Lua 5.4.
 *
 *  - fdopen(fd, mode): a Lua file handle on an inherited descriptor (the framed channel to
 *    the wrapper), without reopening /dev/fd/N.
 *  - SIGINT as an error in the running cell: Lua has no signal API and Debian bookworm's
 *    lua-posix is not built for 5.4. As lua.c does for its REPL, the C handler only sets a
 *    hook (lua_sethook is safe to call from a signal handler); the hook raises "interrupted"
 *    at the next Lua instruction, which the driver's xpcall catches with the state intact.
 *    Unlike lua.c's handler this one stays installed, so every interrupt works, and it does
 *    nothing while no cell runs ("armed" is false). Coroutines have their own hook slots:
 *    hook_thread() gives a resumed coroutine a cheap count hook that checks the same flag.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

static lua_State *main_L = NULL;
static volatile sig_atomic_t armed = 0;
static volatile sig_atomic_t pending = 0;

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (!(armed && pending)) return;
  lua_sethook(L, NULL, 0, 0);  /* the error handler must be able to run */
  luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
  (void)sig;
  if (!armed) return;
  pending = 1;
  lua_sethook(main_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* install(): take SIGINT for good (SA_RESTART: reads of the command channel just go on). */
static int l_install(lua_State *L) {
  struct sigaction sa;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, NULL) != 0) return luaL_error(L, "sigaction: %s", strerror(errno));
  return 0;
}

/* arm(true) before a cell, arm(false) after it; both forget an earlier interrupt. */
static int l_arm(lua_State *L) {
  armed = 0;
  pending = 0;
  if (!lua_toboolean(L, 1)) lua_sethook(main_L, NULL, 0, 0);
  armed = lua_toboolean(L, 1);
  return 0;
}

/* interrupted(): did an interrupt arrive since arm()? */
static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, pending);
  return 1;
}

/* hook_thread(co): a count hook in a coroutine about to be resumed during a cell. */
static int l_hook_thread(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argcheck(L, co != NULL, 1, "coroutine expected");
  if (armed && co != L) lua_sethook(co, stop_hook, LUA_MASKCOUNT, 1000);
  return 0;
}

static int close_stream(lua_State *L) {
  luaL_Stream *p = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int ok = fclose(p->f) == 0;
  return luaL_fileresult(L, ok, NULL);
}

static int l_fdopen(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  const char *mode = luaL_checkstring(L, 2);
  luaL_Stream *p = (luaL_Stream *)lua_newuserdatauv(L, sizeof(luaL_Stream), 0);
  p->closef = NULL;  /* mark "closed" until fdopen succeeded */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  p->f = fdopen(fd, mode);
  if (p->f == NULL) return luaL_fileresult(L, 0, NULL);
  p->closef = close_stream;
  return 1;
}

static const luaL_Reg funcs[] = {
  {"install", l_install}, {"arm", l_arm}, {"interrupted", l_interrupted},
  {"hook_thread", l_hook_thread}, {"fdopen", l_fdopen}, {NULL, NULL},
};

int luaopen_backendai_lua(lua_State *L) {
  luaL_newlib(L, funcs);
  return 1;
}
