-- SPDX-License-Identifier: LGPL-3.0-or-later
-- The Lua driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
--
-- Cells are compiled with load(code, "=<cell N>", "t", env) into one persistent environment
-- table, so globals carry over. A chunk's top-level `local` declarations would die with the
-- chunk, so they are rewritten into assignments to the environment first (`local x = 1` runs
-- as `x = 1`, `local function f` as `function f`; `<close>` locals stay local). A cell is
-- first tried as `return <cell>`, as the lua REPL does, so an expression yields a result.
--
-- The wrapper talks to this process over framed JSON (4-byte big-endian length + UTF-8 JSON)
-- on two file descriptors named in the environment; the program's stdout and stderr are
-- ordinary pipes. The small C module backendai_lua (backendai_lua.c) turns SIGINT into an
-- error in the running cell and opens the channel's descriptors.

local CMD_FD = tonumber(os.getenv("BACKENDAI_DRIVER_CMD_FD") or "3")
local EVT_FD = tonumber(os.getenv("BACKENDAI_DRIVER_EVENT_FD") or "4")

local ok_native, native = pcall(require, "backendai_lua")
if not ok_native then native = nil end

local cmd_file, evt_file
if native then
  cmd_file = assert(native.fdopen(CMD_FD, "rb"))
  evt_file = assert(native.fdopen(EVT_FD, "wb"))
  native.install()
else
  -- Without the module: lua.c's own handler turns the first SIGINT into an error; a second
  -- one ends the process and the wrapper restarts it.
  cmd_file = assert(io.open("/dev/fd/" .. CMD_FD, "rb"))
  evt_file = assert(io.open("/dev/fd/" .. EVT_FD, "wb"))
end
io.stdout:setvbuf("line")  -- a pipe: stream lines as they are printed
io.stderr:setvbuf("no")

local real_io, real_print, real_type = io, print, type
local concat, insert, sort = table.concat, table.insert, table.sort
local char, byte, format = string.char, string.byte, string.format

------------------------------------------------------------------------------------------
-- JSON (Debian's lua5.4 ships none; lua-cjson would pass invalid UTF-8 through)
------------------------------------------------------------------------------------------

local ARRAY = {}  -- metatable marking a table to encode as a JSON array even when empty

local function utf8_clean(s)
  if utf8.len(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len, bad = utf8.len(s, i)
    if len then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, bad - 1) .. "\u{FFFD}"
    i = bad + 1
  end
  return concat(out)
end

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
              ['\r'] = '\\r', ['\t'] = '\\t' }

local function encode_string(s)
  s = utf8_clean(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return ESC[c] or format("\\u%04x", byte(c)) end) .. '"'
end

local encode
function encode(v, out)
  local t = real_type(v)
  if v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    if math.type(v) == "integer" then out[#out + 1] = format("%d", v)
    elseif v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    else out[#out + 1] = format("%.17g", v) end
  elseif t == "string" then out[#out + 1] = encode_string(v)
  elseif t == "table" then
    local n = #v
    if getmetatable(v) == ARRAY or n > 0 then
      local is_array = getmetatable(v) == ARRAY
      if not is_array then
        is_array = true
        for k in pairs(v) do
          if math.type(k) ~= "integer" or k < 1 or k > n then is_array = false; break end
        end
      end
      if is_array then
        out[#out + 1] = "["
        for i = 1, n do
          if i > 1 then out[#out + 1] = "," end
          encode(v[i], out)
        end
        out[#out + 1] = "]"
        return
      end
    end
    out[#out + 1] = "{"
    local first = true
    for k, val in pairs(v) do
      if not first then out[#out + 1] = "," end
      first = false
      out[#out + 1] = encode_string(tostring(k))
      out[#out + 1] = ":"
      encode(val, out)
    end
    out[#out + 1] = "}"
  else
    out[#out + 1] = encode_string(tostring(v))
  end
end

local function json_encode(v)
  local out = {}
  encode(v, out)
  return concat(out)
end

local function json_decode(s)
  local pos = 1
  local function fail(what) error(format("bad JSON at %d: %s", pos, what), 0) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local a, b = s:find('[^"\\]*', pos)
      out[#out + 1] = s:sub(a, b)
      pos = b + 1
      local c = s:sub(pos, pos)
      if c == '"' then pos = pos + 1; return concat(out) end
      if c ~= "\\" then fail("unterminated string") end
      local e = s:sub(pos + 1, pos + 1)
      local simple = ({ b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" })[e]
      if simple then out[#out + 1] = simple; pos = pos + 2
      elseif e == "u" then
        local cp = tonumber(s:sub(pos + 2, pos + 5), 16) or fail("bad \\u")
        pos = pos + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(pos, pos + 1) == "\\u" then
          local lo = tonumber(s:sub(pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        out[#out + 1] = utf8.char(cp)
      else fail("bad escape") end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("key expected") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail(": expected") end
        pos = pos + 1
        obj[k] = value()
        ws()
        c = s:sub(pos, pos); pos = pos + 1
        if c == "}" then return obj end
        if c ~= "," then fail(", expected") end
      end
    elseif c == "[" then
      local arr = setmetatable({}, ARRAY)
      pos = pos + 1; ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value()
        ws()
        c = s:sub(pos, pos); pos = pos + 1
        if c == "]" then return arr end
        if c ~= "," then fail(", expected") end
      end
    elseif c == '"' then return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil
    else
      local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if not num or num == "" then fail("value expected") end
      pos = pos + #num
      return math.tointeger(tonumber(num)) or tonumber(num)
    end
  end
  return value()
end

------------------------------------------------------------------------------------------
-- the framed channel
------------------------------------------------------------------------------------------

local function send(msg)
  local body = json_encode(msg)
  evt_file:write(string.pack(">I4", #body), body)
  evt_file:flush()
end

local function read_frame()
  local head = cmd_file:read(4)
  if not head or #head < 4 then return nil end
  local n = string.unpack(">I4", head)
  local body = n > 0 and cmd_file:read(n) or ""
  if not body or #body < n then return nil end
  return json_decode(body)
end

------------------------------------------------------------------------------------------
-- values as text (execute_result and inspect)
------------------------------------------------------------------------------------------

local function is_ident(s) return real_type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function repr(v, depth, seen)
  local t = real_type(v)
  if t == "string" then return format("%q", v):gsub("\\\n", "\\n") end
  if t ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if mt and rawget(mt, "__tostring") then return tostring(v) end
  seen = seen or {}
  if seen[v] then return "<cycle>" end
  if (depth or 0) > 3 then return "{...}" end
  seen[v] = true
  local parts, n, count = {}, rawlen(v), 0
  for i = 1, n do
    count = count + 1
    if count > 100 then parts[#parts + 1] = "..."; break end
    parts[#parts + 1] = repr(rawget(v, i), (depth or 0) + 1, seen)
  end
  local keys = {}
  for k in next, v do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  sort(keys, function(a, b)
    local ta, tb = real_type(a), real_type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(keys) do
    count = count + 1
    if count > 100 then parts[#parts + 1] = "..."; break end
    local key = is_ident(k) and k or "[" .. repr(k, 99, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. repr(rawget(v, k), (depth or 0) + 1, seen)
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  return "{" .. concat(parts, ", ") .. "}"
end

------------------------------------------------------------------------------------------
-- what a cell sees: env, input, io.read, display
------------------------------------------------------------------------------------------

local env = setmetatable({}, { __index = _G })
env._G = env
local running = false

local function cell_error(ename, evalue)
  return setmetatable({ ename = ename, evalue = evalue }, {
    __tostring = function(e) return e.ename .. ": " .. e.evalue end })
end

-- One line from the frontend (input_request). nil at end of input; an error for anything else.
local function ask(prompt, password, eof_is_nil)
  if not running then error("input() only works while a cell runs", 2) end
  io.stdout:flush()
  send({ type = "input", prompt = prompt and tostring(prompt) or "", password = password and true or false })
  local reply = read_frame()
  if not reply then os.exit(0) end
  if reply.error then
    if eof_is_nil and reply.ename == "EOFError" then return nil end
    error(cell_error(reply.ename or "InputError", reply.error), 3)
  end
  return reply.value
end

local function input(prompt, password) return ask(prompt, password, false) end

-- io.read formats over whole lines from the frontend. A frontend cannot send end-of-file, so
-- on this stdin an empty answer ends the input (nil; "a" reads lines up to it): loops like
-- `for line in io.lines() do` can finish. input() returns "" for an empty answer.
local function read_formats(...)
  local fmts = table.pack(...)
  if fmts.n == 0 then fmts = { "l", n = 1 } end
  local out = {}
  for i = 1, fmts.n do
    local f = fmts[i]
    if real_type(f) == "string" then f = f:gsub("^%*", ""):sub(1, 1) end
    if f == "a" then
      local lines = {}
      while true do
        local line = ask("", false, true)
        if line == nil or line == "" then break end
        lines[#lines + 1] = line .. "\n"
      end
      out[i] = concat(lines)
    else
      local line = ask("", false, true)
      if line == nil or line == "" then return table.unpack(out, 1, i) end
      if f == "n" then out[i] = math.tointeger(tonumber(line)) or tonumber(line)
      elseif f == "L" then out[i] = line .. "\n"
      elseif math.type(f) == "integer" then out[i] = line:sub(1, f)
      else out[i] = line end
    end
  end
  return table.unpack(out, 1, fmts.n)
end

local stdin = setmetatable({}, { __name = "FILE*", __tostring = function() return "file (stdin)" end })
function stdin:read(...) return read_formats(...) end
function stdin:lines(...)
  local fmts = table.pack(...)
  return function() return read_formats(table.unpack(fmts, 1, fmts.n)) end
end
function stdin:close() return true end
function stdin:setvbuf() return true end
function stdin:seek() return nil, "Illegal seek", 29 end
stdin.flush = stdin.close

local cell_io = setmetatable({
  stdin = stdin,
  read = function(...) return read_formats(...) end,
  lines = function(name, ...)
    if name == nil then return stdin:lines() end
    return real_io.lines(name, ...)
  end,
  input = function(file)
    if file == nil then return stdin end
    return real_io.input(file)
  end,
  type = function(f) if f == stdin then return "file" end return real_io.type(f) end,
}, { __index = real_io })

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    local q = { (n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63 }
    out[#out + 1] = B64:sub(q[1] + 1, q[1] + 1) .. B64:sub(q[2] + 1, q[2] + 1)
      .. (b and B64:sub(q[3] + 1, q[3] + 1) or "=") .. (c and B64:sub(q[4] + 1, q[4] + 1) or "=")
  end
  return concat(out)
end

local display_seq = 0
local BINARY = { ["image/png"] = true, ["image/jpeg"] = true, ["image/gif"] = true }

-- display(mime, data[, metadata]) or display({[mime] = data, ...}[, metadata]).
-- Images given as raw bytes are base64-encoded; text/plain is added when missing.
local display = setmetatable({}, { __call = function(_, mime, data, metadata)
  local bundle = {}
  if real_type(mime) == "table" then
    for k, v in pairs(mime) do bundle[k] = v end
    metadata = data
  else
    bundle[tostring(mime)] = data
  end
  for k, v in pairs(bundle) do
    if BINARY[k] and real_type(v) == "string" and not v:match("^[%w+/=\r\n]*$") then bundle[k] = base64(v)
    elseif real_type(v) ~= "string" and real_type(v) ~= "table" then bundle[k] = tostring(v) end
  end
  if bundle["text/plain"] == nil then
    local first
    for k in pairs(bundle) do first = first or k end
    bundle["text/plain"] = "<" .. tostring(first) .. " output>"
  end
  -- A marker in stdout, in line with print(), puts the display at this place in the output
  -- (jupyter_backendai/kernels/ordering.py).
  display_seq = display_seq + 1
  io.stdout:write("\27]5150;bai-display;", display_seq, "\7")
  io.stdout:flush()
  send({ type = "display", data = bundle, metadata = metadata or {}, sync = display_seq })
end })
function display.html(s) display("text/html", tostring(s)) end
function display.svg(s) display("image/svg+xml", tostring(s)) end
function display.png(bytes) display("image/png", bytes) end
function display.jpeg(bytes) display("image/jpeg", bytes) end
function display.markdown(s) display("text/markdown", tostring(s)) end
function display.json(v) display({ ["application/json"] = v, ["text/plain"] = repr(v) }) end

-- Coroutines get their own interrupt hook when resumed during a cell.
local co_resume, co_create = coroutine.resume, coroutine.create
local cell_coroutine = setmetatable({
  resume = function(co, ...)
    if native and real_type(co) == "thread" then native.hook_thread(co) end
    return co_resume(co, ...)
  end,
  wrap = function(f)
    local co = co_create(f)
    return function(...)
      if native then native.hook_thread(co) end
      local res = table.pack(co_resume(co, ...))
      if not res[1] then error(res[2], 0) end
      return table.unpack(res, 2, res.n)
    end
  end,
}, { __index = coroutine })

env.io = cell_io
env.coroutine = cell_coroutine
env.input = input
env.display = display
env.print = real_print

------------------------------------------------------------------------------------------
-- top-level locals -> environment assignments
------------------------------------------------------------------------------------------

-- Tokens of a chunk: {kind, text, start, stop}; kind is "name", "str", "num", "op" or "eof".
local function tokens(code)
  local toks, i, n = {}, 1, #code
  while i <= n do
    local c = code:sub(i, i)
    if c:match("%s") then i = i + 1
    elseif code:sub(i, i + 1) == "--" then
      local eq = code:match("^%[(=*)%[", i + 2)
      if eq then
        local _, e = code:find("]" .. eq .. "]", i, true)
        i = (e or n) + 1
      else
        i = (code:find("\n", i, true) or n) + 1
      end
    elseif c:match("[%a_]") then
      local s, e = code:find("^[%w_]+", i)
      toks[#toks + 1] = { "name", code:sub(s, e), s, e }
      i = e + 1
    elseif c:match("%d") or (c == "." and code:sub(i + 1, i + 1):match("%d")) then
      local s, e = code:find("^[%w_%.]+", i)
      while code:sub(e, e):match("[eEpP]") and code:sub(e + 1, e + 1):match("[-+]") do
        local _, e2 = code:find("^[%w_%.]*", e + 2)
        e = e2
      end
      toks[#toks + 1] = { "num", code:sub(s, e), s, e }
      i = e + 1
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n do
        local d = code:sub(j, j)
        if d == "\\" then j = j + 2
        elseif d == c or d == "\n" then break
        else j = j + 1 end
      end
      toks[#toks + 1] = { "str", code:sub(i, j), i, j }
      i = j + 1
    elseif code:match("^%[=*%[", i) then
      local eq = code:match("^%[(=*)%[", i)
      local _, e = code:find("]" .. eq .. "]", i, true)
      e = e or n
      toks[#toks + 1] = { "str", code:sub(i, e), i, e }
      i = e + 1
    else
      local three, two = code:sub(i, i + 2), code:sub(i, i + 1)
      local op = (three == "...") and three
        or (({ ["=="] = 1, ["~="] = 1, ["<="] = 1, [">="] = 1, ["//"] = 1, ["::"] = 1, ["<<"] = 1,
               [">>"] = 1, [".."] = 1 })[two] and two) or c
      toks[#toks + 1] = { "op", op, i, i + #op - 1 }
      i = i + #op
    end
  end
  toks[#toks + 1] = { "eof", "", n + 1, n }
  return toks
end

local function hoist_locals(code)
  local toks = tokens(code)
  local edits = {}  -- {start, stop, replacement}
  local depth, loops = 0, 0
  local i = 1
  while i <= #toks do
    local k, t = toks[i][1], toks[i][2]
    if k == "name" then
      if t == "function" or t == "if" or t == "repeat" then depth = depth + 1
      elseif t == "while" or t == "for" then depth = depth + 1; loops = loops + 1
      elseif t == "do" then
        if loops > 0 then loops = loops - 1 else depth = depth + 1 end
      elseif t == "end" or t == "until" then depth = depth - 1
      elseif t == "local" and depth == 0 then
        local nxt = toks[i + 1]
        if nxt[1] == "name" and nxt[2] == "function" then
          edits[#edits + 1] = { toks[i][3], toks[i][4], "" }
        else
          -- name list with attributes: `local a <const>, b = ...`
          local j, local_edits, keep = i + 1, { { toks[i][3], toks[i][4], "" } }, false
          local last = toks[i]
          while toks[j][1] == "name" do
            last = toks[j]
            j = j + 1
            if toks[j][2] == "<" and toks[j + 1][1] == "name" and toks[j + 2][2] == ">" then
              if toks[j + 1][2] == "close" then keep = true end
              local_edits[#local_edits + 1] = { toks[j][3], toks[j + 2][4], "" }
              last = toks[j + 2]
              j = j + 3
            end
            if toks[j][2] ~= "," then break end
            j = j + 1
          end
          if not keep then
            for _, e in ipairs(local_edits) do edits[#edits + 1] = e end
            if toks[j][2] ~= "=" then edits[#edits + 1] = { last[4] + 1, last[4], " = nil" } end
          end
          i = j - 1
        end
      end
    end
    i = i + 1
  end
  for e = #edits, 1, -1 do
    local s, stop, rep = edits[e][1], edits[e][2], edits[e][3]
    code = code:sub(1, s - 1) .. rep .. code:sub(stop + 1)
  end
  return code
end

------------------------------------------------------------------------------------------
-- verbs
------------------------------------------------------------------------------------------

local cell_number = 0
local INTERRUPTED = "interrupted"

local function is_interrupt(e)
  return native and native.interrupted() and real_type(e) == "string" and e:sub(-#INTERRUPTED) == INTERRUPTED
end

-- The traceback without the driver's own frames.
local function cell_traceback(msg_line)
  local tb = debug.traceback("", 3)
  local lines = { msg_line }
  for line in tb:gmatch("[^\n]+") do
    if line:find("in function 'xpcall'", 1, true) or line:find("lua_driver.lua", 1, true) then break end
    if line ~= "stack traceback:" or #lines == 1 then lines[#lines + 1] = line end
  end
  return lines
end

local function on_error(e)
  if is_interrupt(e) or (not native and real_type(e) == "string" and e:match("interrupted!$")) then
    return { type = "error", ename = "Interrupted", evalue = "the cell was interrupted",
             traceback = { "Interrupted: the cell was interrupted (state is kept)" } }
  end
  local ename, evalue
  if real_type(e) == "table" and rawget(e, "ename") then
    ename, evalue = tostring(e.ename), tostring(e.evalue)
  elseif real_type(e) == "string" then
    ename, evalue = "LuaError", e
  else
    local mt = getmetatable(e)
    ename = mt and rawget(mt, "__name") or real_type(e)
    evalue = (mt and rawget(mt, "__tostring")) and tostring(e) or repr(e)
  end
  return { type = "error", ename = ename, evalue = evalue, traceback = cell_traceback(ename .. ": " .. evalue) }
end

local function compile(code, name)
  local fn = load("return " .. code, name, "t", env)
  if fn then return fn end
  local err
  fn, err = load(hoist_locals(code), name, "t", env)
  if fn then return fn end
  -- report the error of the code as written
  local _, err2 = load(code, name, "t", env)
  return nil, err2 or err
end

local function execute(msg)
  cell_number = cell_number + 1
  local fn, err = compile(msg.code, "=<cell " .. cell_number .. ">")
  if not fn then
    return send({ type = "error", ename = "SyntaxError", evalue = err, traceback = { "SyntaxError: " .. err } })
  end
  running = true
  if native then native.arm(true) end
  local res = table.pack(xpcall(fn, on_error))
  if native then native.arm(false) end
  running = false
  io.stdout:flush()
  io.stderr:flush()
  if not res[1] then return send(res[2]) end
  if res.n <= 1 then return send({ type = "ok" }) end
  local parts = {}
  for i = 2, res.n do parts[#parts + 1] = repr(res[i]) end
  send({ type = "ok", data = { ["text/plain"] = concat(parts, "\t") } })
end

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
                   "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

-- Follow a.b.c from the environment without running user code beyond __index.
local function lookup(path)
  local v = env
  for part in path:gmatch("[^%.:]+") do
    if real_type(v) == "string" then v = string
    elseif real_type(v) ~= "table" and real_type(v) ~= "userdata" then return nil end
    local ok, nv = pcall(function() return v[part] end)
    if not ok then return nil end
    v = nv
  end
  return v
end

local function names_of(v, methods_only)
  local names, seen = {}, {}
  local function add(k, val)
    if is_ident(k) and not seen[k] and (not methods_only or real_type(val) == "function") then
      seen[k] = true
      names[#names + 1] = k
    end
  end
  local depth = 0
  while v ~= nil and depth < 5 do
    if real_type(v) == "table" then
      for k, val in next, v do add(k, val) end
    end
    local mt = real_type(v) == "string" and { __index = string } or getmetatable(v)
    local idx = real_type(mt) == "table" and rawget(mt, "__index")
    v = real_type(idx) == "table" and idx or nil
    depth = depth + 1
  end
  return names
end

local function complete(msg)
  local stop = utf8.offset(msg.code, msg.cursor_pos + 1) or (#msg.code + 1)
  local before = msg.code:sub(1, stop - 1)
  local chain = before:match("[%a_][%w_]*[%.:][%w_%.:]*$")
  local prefix, names
  if chain then
    local base, sep, word = chain:match("^(.-)([%.:])([%w_]*)$")
    prefix = word
    names = names_of(lookup(base), sep == ":")
  else
    prefix = before:match("[%a_][%w_]*$") or ""
    names = names_of(env)
    for _, k in ipairs(KEYWORDS) do names[#names + 1] = k end
  end
  local matches, seen = setmetatable({}, ARRAY), {}
  for _, k in ipairs(names) do
    if k:sub(1, #prefix) == prefix and not seen[k] then seen[k] = true; matches[#matches + 1] = k end
  end
  sort(matches)
  send({ type = "complete", matches = matches, cursor_start = msg.cursor_pos - utf8.len(prefix),
         cursor_end = msg.cursor_pos })
end

-- Lua's REPL rule: a syntax error at <eof> means "more to come".
local function is_complete(msg)
  local code = msg.code
  if load("return " .. code, "=cell", "t", {}) or load(code, "=cell", "t", {}) then
    return send({ type = "is_complete", status = "complete" })
  end
  local _, e1 = load(code, "=cell", "t", {})
  local _, e2 = load("return " .. code, "=cell", "t", {})
  local function open(e) return e and e:sub(-5) == "<eof>" and not e:find("unfinished string", 1, true) end
  if open(e1) or open(e2) then
    return send({ type = "is_complete", status = "incomplete", indent = "  " })
  end
  send({ type = "is_complete", status = "invalid" })
end

local function inspect(msg)
  local before = msg.code:sub(1, msg.cursor_pos)
  local after = msg.code:sub(msg.cursor_pos + 1)
  local expr = (before:match("[%a_][%w_%.:]*$") or "") .. (after:match("^[%w_]*") or "")
  if expr == "" then return send({ type = "inspect", found = false }) end
  local v = lookup(expr)
  if v == nil then return send({ type = "inspect", found = false }) end
  local text = expr .. ": " .. real_type(v) .. "\n" .. repr(v)
  if real_type(v) == "function" then
    local info = debug.getinfo(v, "S")
    text = text .. "\n" .. (info.what == "C" and "[C function]" or (info.short_src .. ":" .. info.linedefined))
  end
  send({ type = "inspect", found = true, data = { ["text/plain"] = text } })
end

local VERBS = { execute = execute, complete = complete, is_complete = is_complete, inspect = inspect }

send({ type = "ready", version = _VERSION:match("%d+%.%d+") })
while true do
  local ok, msg = pcall(read_frame)
  if ok and msg == nil then break end
  -- (an input_reply here answers a request of a cell that was interrupted meanwhile: dropped)
  if ok and msg.op ~= "input_reply" then
    local verb = VERBS[msg.op]
    local done, err = pcall(function()
      if not verb then error("unknown op " .. tostring(msg.op)) end
      verb(msg)
    end)
    if not done then
      running = false
      local interrupted = is_interrupt(err)
      if native then native.arm(false) end
      if interrupted then  -- the interrupt came just as the cell ended
        send({ type = "error", ename = "Interrupted", evalue = "the cell was interrupted",
               traceback = { "Interrupted: the cell was interrupted (state is kept)" } })
      else
        send({ type = "error", ename = "DriverError", evalue = tostring(err), traceback = {} })
      end
    end
  end
end
