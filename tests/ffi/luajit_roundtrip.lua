--[==[
ABI proof from LuaJIT's ffi, declared from the header text itself.

core/include/mqlite.h is read as text and given to ffi.cdef after a
minimal preprocessing step that a C-declaration parser needs and nothing
more: conditional blocks are evaluated with no macro predefined (this is
not a compiler: no __GNUC__, no _WIN32, no __cplusplus), #include and
#define lines are dropped, and the empty object-like macro MQLITE_API is
removed from declarations. Integer #defines (error codes, options, event
types, ...) become `static const int32_t NAME = value;` so the script uses
the header's own names. Comments are replaced by spaces first, as C's
translation phase 3 does (a comment may start on a #define line). So the
header is proven parseable by a C-declaration parser without a
compiler, and every declared function is proven present in the library.

Then the same scenario as tests/ffi/ctypes_roundtrip.py: an embedded
broker on port 0 driven by mqlite_broker_poll() in the same loop as two
clients (3.1.1 and 5.0), QoS 0/1/2 both ways, text, binary with NUL bytes,
empty and 64 KiB payloads compared byte for byte, events drained, handles
freed; once with plain mqlite_*_new() (JIT on) and once with
mqlite_*_new_with_allocator() and a counting allocator written in Lua (an
ffi callback over libc realloc/free; JIT off, as LuaJIT wants for C code
that calls back into Lua), which must end with 0 live allocations.

Usage: luajit luajit_roundtrip.lua [libmqlite.so.0 [mqlite.h]]
(defaults: $MQLITE_BUILD_DIR/lib/libmqlite.so.0 and
$MQLITE_SOURCE_DIR/core/include/mqlite.h). Exit status 0 and a last line
"luajit: OK" on success. Every loop is bounded; traffic is loopback.
]==]
local ffi = require("ffi")

local TAG = "luajit"
local MAX_ROUNDS = 20000 -- each round waits at most 1 ms in mqlite_broker_poll

local function fail(msg)
  io.stderr:write(TAG .. ": FAIL: " .. msg .. "\n")
  os.exit(1)
end

local function check(cond, what)
  if not cond then fail(what) end
end

local function script_dir()
  local src = debug.getinfo(1, "S").source:sub(2)
  return src:match("^(.*)/[^/]*$") or "."
end

local lib_path = arg[1] or ((os.getenv("MQLITE_BUILD_DIR") or "build") .. "/lib/libmqlite.so.0")
local header_path = arg[2] or (os.getenv("MQLITE_SOURCE_DIR") and
  os.getenv("MQLITE_SOURCE_DIR") .. "/core/include/mqlite.h") or
  (script_dir() .. "/../../core/include/mqlite.h")

-- ---------------------------------------------------------------------
-- The header, as a C-declaration parser sees it
-- ---------------------------------------------------------------------

local function read_file(path)
  local f = io.open(path, "rb")
  check(f, "cannot read " .. path)
  local s = f:read("*a")
  f:close()
  return s
end

-- `defined(X)`, `defined X` and `!` of those: all mqlite.h uses. Anything
-- else is an error, so a header change that needs more is noticed here.
local function eval_condition(expr, defined)
  local neg, name = expr:match("^(!?)%s*defined%s*%(?%s*([%w_]+)%s*%)?$")
  check(name, "unsupported #if expression in mqlite.h: " .. expr)
  local v = defined[name] ~= nil
  if neg == "!" then v = not v end
  return v
end

local function integer_literal(s)
  local v = s:match("^%(?%s*(%-?%s*0[xX]%x+)%s*%)?$") or s:match("^%(?%s*(%-?%s*%d+)%s*%)?$")
  if not v then return nil end
  v = v:gsub("%s", "")
  return v
end

-- Translation phases 2 and 3 (C11 5.1.1.2): splice continued lines, then
-- replace each comment by one space (keeping its newlines, so that a
-- comment opened on a #define line does not leak into the next lines).
local function strip_comments(text)
  text = text:gsub("\\\r?\n", "")
  local out, i, n = {}, 1, #text
  while i <= n do
    local c2 = text:sub(i, i + 1)
    local c = text:sub(i, i)
    if c2 == "/*" then
      local j = text:find("*/", i + 2, true)
      check(j, "unterminated comment in mqlite.h")
      out[#out + 1] = " " .. text:sub(i, j + 1):gsub("[^\n]", "")
      i = j + 2
    elseif c2 == "//" then
      local j = text:find("\n", i, true) or n + 1
      out[#out + 1] = " "
      i = j
    elseif c == '"' or c == "'" then
      local j = i + 1
      while j <= n and text:sub(j, j) ~= c do
        if text:sub(j, j) == "\\" then j = j + 1 end
        j = j + 1
      end
      out[#out + 1] = text:sub(i, j)
      i = j + 1
    else
      local j = text:find("[/\"']", i + 1) or n + 1
      out[#out + 1] = text:sub(i, j - 1)
      i = j
    end
  end
  return table.concat(out)
end

local function preprocess(text)
  local decls, consts, strings, defined = {}, {}, {}, {}
  local stack, active = {}, true
  text = strip_comments(text)
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    local d, rest = line:match("^%s*#%s*(%a+)%s*(.-)%s*$")
    if d then
      if d == "ifdef" or d == "ifndef" or d == "if" then
        local cond
        if d == "ifdef" then cond = defined[rest] ~= nil
        elseif d == "ifndef" then cond = defined[rest] == nil
        else cond = eval_condition(rest, defined) end
        stack[#stack + 1] = {parent = active, taken = cond}
        active = active and cond
      elseif d == "elif" or d == "else" then
        local top = stack[#stack]
        check(top, "#" .. d .. " without #if")
        local cond = not top.taken and (d == "else" or eval_condition(rest, defined))
        top.taken = top.taken or cond
        active = top.parent and cond
      elseif d == "endif" then
        local top = table.remove(stack)
        check(top, "#endif without #if")
        active = top.parent
      elseif d == "define" and active then
        local name, value = rest:match("^([%w_]+)%s*(.-)$")
        check(name and not rest:match("^[%w_]+%("), "function-like macro: " .. rest)
        defined[name] = value
        local int = integer_literal(value)
        if int then
          consts[#consts + 1] = string.format("static const int32_t %s = %s;", name, int)
        elseif value:match('^".*"$') then
          strings[name] = value:sub(2, -2)
        end
      end
      -- #include, #undef, #error, #pragma: nothing for a declaration parser
    elseif active then
      decls[#decls + 1] = line
    end
  end
  check(#stack == 0, "unterminated #if in mqlite.h")
  local body = table.concat(decls, "\n")
  -- Object-like macros with an empty body (MQLITE_API here) disappear.
  for name, value in pairs(defined) do
    if value == "" then body = body:gsub("%f[%w_]" .. name .. "%f[^%w_]", "") end
  end
  return body, table.concat(consts, "\n"), strings
end

local header = read_file(header_path)
local decls, consts, strings = preprocess(header)
ffi.cdef(decls)
ffi.cdef(consts)
ffi.cdef[[
void *realloc(void *ptr, size_t size);
void free(void *ptr);
]]
local C = ffi.C
local L = ffi.load(lib_path)

-- Every function the header declares resolves in the library.
local nfuncs = 0
for name in header:gmatch("MQLITE_API%s+[^;]-%f[%w_](mqlite_[%w_]+)%s*%(") do
  local ok, fn = pcall(function() return L[name] end)
  check(ok and fn ~= nil, "declared in mqlite.h but not in the library: " .. name)
  nfuncs = nfuncs + 1
end
check(nfuncs > 50, "found only " .. nfuncs .. " MQLITE_API declarations")
local nconsts = select(2, consts:gsub("\n", "")) + 1

local text = ffi.new("const char *[1]")
local number = L.mqlite_version(text)
check(number == L.MQLITE_VERSION_NUMBER, "mqlite_version " .. number)
check(ffi.string(text[0]) == strings.MQLITE_VERSION_STRING, "version string")
print(string.format("%s: mqlite %s (%d) from %s", TAG, ffi.string(text[0]), number, lib_path))
print(string.format("%s: ffi.cdef took mqlite.h: %d functions (all resolved), %d constants",
  TAG, nfuncs, nconsts))

-- ---------------------------------------------------------------------
-- The scenario
-- ---------------------------------------------------------------------

local function payloads(qos)
  local big = {}
  for i = 0, 65535 do big[#big + 1] = string.char(bit.band(i * 7 + qos, 0xff)) end
  return {
    "hello qos " .. qos,
    "\0bin\0ary\255\0\1" .. string.char(qos) .. "\0",
    "",
    table.concat(big),
  }
end

local function cstr(p) return p ~= nil and ffi.string(p) or "(null)" end

local Session = {}
Session.__index = Session

function Session.new(b, clients)
  local s = setmetatable({b = b, clients = clients, events = {}}, Session)
  for name in pairs(clients) do s.events[name] = {} end
  return s
end

-- Copy what we keep: accessors' pointers die at the next next_event.
local function copy_event(ev)
  local n = ffi.new("size_t[1]")
  local e = {
    type = L.mqlite_event_type(ev), pid = L.mqlite_event_packet_id(ev),
    reason = L.mqlite_event_reason(ev), error = L.mqlite_event_error(ev),
    text = cstr(L.mqlite_event_text(ev)), qos = L.mqlite_event_qos(ev), codes = {},
  }
  local t = L.mqlite_event_topic(ev, n)
  e.topic = t ~= nil and ffi.string(t, n[0]) or nil
  local p = L.mqlite_event_payload(ev, n)
  e.payload = p ~= nil and ffi.string(p, n[0]) or nil
  for i = 0, L.mqlite_event_count(ev) - 1 do
    e.codes[#e.codes + 1] = L.mqlite_event_reason_at(ev, i)
  end
  if e.type == L.MQLITE_EVENT_CONNECT_FAILED or e.type == L.MQLITE_EVENT_ERROR or
     e.type == L.MQLITE_EVENT_PUBLISH_LOST then
    fail("unexpected event " .. cstr(L.mqlite_event_type_name(e.type)) .. ": " .. e.text)
  end
  return e
end

function Session:drain(name)
  local c = self.clients[name]
  for _ = 1, 100000 do
    local ev = L.mqlite_client_next_event(c)
    if ev == nil then return end
    table.insert(self.events[name], copy_event(ev))
  end
  fail("event queue never emptied")
end

function Session:pump()
  local rc = L.mqlite_broker_poll(self.b, 1)
  check(rc == 0, "mqlite_broker_poll: " .. rc .. " " .. cstr(L.mqlite_broker_errmsg(self.b)))
  for name, c in pairs(self.clients) do
    rc = L.mqlite_client_poll(c, 0)
    check(rc >= 0, name .. ": mqlite_client_poll: " .. rc .. " " .. cstr(L.mqlite_client_errmsg(c)))
    self:drain(name)
  end
end

function Session:take(name, etype)
  local r = {}
  for _, e in ipairs(self.events[name]) do
    if e.type == etype then r[#r + 1] = e end
  end
  return r
end

function Session:all_have(etype)
  for name in pairs(self.clients) do
    if #self:take(name, etype) == 0 then return false end
  end
  return true
end

function Session:wait(cond, what)
  for _ = 1, MAX_ROUNDS do
    if cond() then return end
    self:pump()
  end
  fail("timed out waiting for " .. what)
end

local function scenario(new_broker, new_client, label)
  local b = new_broker()
  check(b ~= nil, "mqlite_broker_new returned NULL")
  check(L.mqlite_broker_set_int(b, L.MQLITE_BOPT_SYS_INTERVAL_S, 0) == 0, "set $SYS")
  check(L.mqlite_broker_set_int(b, L.MQLITE_BOPT_LOG_LEVEL, L.MQLITE_LOG_ERROR) == 0, "log")
  local port = ffi.new("int32_t[1]", -1)
  local rc = L.mqlite_broker_listen(b, "127.0.0.1", 0, port)
  check(rc == 0, "listen: " .. rc .. " " .. cstr(L.mqlite_broker_errmsg(b)))
  check(port[0] > 0 and L.mqlite_broker_port(b, 0) == port[0], "bound port")

  local clients, names = {}, {"a", "b"}
  for i, name in ipairs(names) do
    local version = i == 1 and L.MQLITE_V311 or L.MQLITE_V5
    local c = new_client("ffi-" .. TAG .. "-" .. name)
    check(c ~= nil, "mqlite_client_new returned NULL")
    clients[name] = c
    check(L.mqlite_client_set_int(c, L.MQLITE_OPT_PROTOCOL, version) == 0, "protocol")
    check(L.mqlite_client_get_int(c, L.MQLITE_OPT_PROTOCOL) == version, "get protocol")
    rc = L.mqlite_client_connect(c, "127.0.0.1", port[0])
    check(rc == 0, "connect: " .. rc .. " " .. cstr(L.mqlite_client_errmsg(c)))
  end
  local s = Session.new(b, clients)
  s:wait(function() return s:all_have(L.MQLITE_EVENT_CONNECTED) end, "CONNECTED")

  -- A usage error reaches the caller as a code and a message.
  rc = L.mqlite_client_publish(clients.a, "bad/#", nil, 0, 0, 0, nil)
  check(rc == L.MQLITE_ERR_TOPIC_NAME, "wildcard topic: " .. rc)
  check(cstr(L.mqlite_error_name(rc)) == "MQLITE_ERR_TOPIC_NAME", "error name")
  check(#cstr(L.mqlite_client_errmsg(clients.a)) > 0, "error message")

  local sub_ids = {}
  for name, c in pairs(clients) do
    local pid = ffi.new("int32_t[1]")
    rc = L.mqlite_client_subscribe(c, "ffi/to-" .. name .. "/#", 2, pid)
    check(rc == 0 and pid[0] > 0, "subscribe: " .. rc)
    sub_ids[name] = pid[0]
  end
  s:wait(function() return s:all_have(L.MQLITE_EVENT_SUBACK) end, "SUBACK")
  for name in pairs(clients) do
    local ev = s:take(name, L.MQLITE_EVENT_SUBACK)[1]
    check(ev.pid == sub_ids[name] and #ev.codes == 1 and ev.codes[1] == 2, "SUBACK of " .. name)
  end

  local expected, acks, n_msgs, n_acks, biggest = {}, {a = {}, b = {}}, 0, 0, 0
  for _, dir in ipairs({{"a", "b"}, {"b", "a"}}) do
    local sender, receiver = dir[1], dir[2]
    for qos = 0, 2 do
      for i, data in ipairs(payloads(qos)) do
        local topic = string.format("ffi/to-%s/q%d/%d", receiver, qos, i)
        local pid = ffi.new("int32_t[1]", -1)
        rc = L.mqlite_client_publish(clients[sender], topic, data, #data, qos, 0, pid)
        check(rc == 0, "publish: " .. rc .. " " .. cstr(L.mqlite_client_errmsg(clients[sender])))
        check((pid[0] == 0) == (qos == 0), "packet id " .. pid[0] .. " for QoS " .. qos)
        if qos > 0 then
          acks[sender][pid[0]] = true
          n_acks = n_acks + 1
        end
        expected[receiver .. " " .. topic] = {data = data, qos = qos}
        n_msgs = n_msgs + 1
        if #data > biggest then biggest = #data end
      end
    end
  end
  s:wait(function()
    local got, acked = 0, 0
    for name in pairs(clients) do
      got = got + #s:take(name, L.MQLITE_EVENT_MESSAGE)
      acked = acked + #s:take(name, L.MQLITE_EVENT_PUBLISHED)
    end
    return got >= n_msgs and acked >= n_acks
  end, n_msgs .. " messages and " .. n_acks .. " acknowledgements")
  for name in pairs(clients) do
    local seen = {}
    for _, ev in ipairs(s:take(name, L.MQLITE_EVENT_MESSAGE)) do
      local key = name .. " " .. ev.topic
      local want = expected[key]
      check(want and not seen[key], "unexpected or duplicate message " .. key)
      seen[key] = true
      check(ev.payload == want.data, string.format("payload of %s differs (%d vs %d bytes)",
        ev.topic, #ev.payload, #want.data))
      check(ev.qos == want.qos, "QoS of " .. ev.topic)
    end
    local published = s:take(name, L.MQLITE_EVENT_PUBLISHED)
    local count = 0
    for _ in pairs(acks[name]) do count = count + 1 end
    check(#published == count, "acknowledgements of " .. name)
    for _, ev in ipairs(published) do
      check(acks[name][ev.pid] and ev.error == 0 and ev.reason < 0x80, "ack " .. ev.pid)
    end
  end

  for name, c in pairs(clients) do
    check(L.mqlite_client_unsubscribe(c, "ffi/to-" .. name .. "/#", nil) == 0, "unsubscribe")
  end
  s:wait(function() return s:all_have(L.MQLITE_EVENT_UNSUBACK) end, "UNSUBACK")
  for _, c in pairs(clients) do check(L.mqlite_client_disconnect(c, 0) == 0, "disconnect") end
  s:wait(function() return s:all_have(L.MQLITE_EVENT_DISCONNECTED) end, "DISCONNECTED")
  for name, c in pairs(clients) do
    check(s:take(name, L.MQLITE_EVENT_DISCONNECTED)[1].error == 0, "clean disconnect of " .. name)
    check(L.mqlite_client_state(c) == L.MQLITE_STATE_IDLE, "idle after disconnect")
    s:drain(name)
    check(L.mqlite_client_pending_events(c) == 0, "events drained")
    L.mqlite_client_free(c)
  end
  L.mqlite_broker_stop(b)
  check(L.mqlite_broker_poll(b, 0) == L.MQLITE_ERR_STATE, "poll after stop")
  L.mqlite_broker_free(b)
  print(string.format("%s[%s]: %d messages byte-exact (QoS 0/1/2, both ways, empty to %d bytes), "
    .. "%d QoS>0 acknowledgements", TAG, label, n_msgs, biggest, n_acks))
end

scenario(function() return L.mqlite_broker_new() end,
         function(id) return L.mqlite_client_new(id) end, "malloc")

-- A counting allocator in Lua. C code that calls back into Lua must not be
-- called from JIT-compiled code (LuaJIT's FFI semantics, "Callbacks"): run
-- this pass interpreted.
jit.off()
jit.flush()
local live, total = 0, 0
local alloc = ffi.cast("mqlite_realloc_fn", function(ud, ptr, size)
  if size == 0 then
    if ptr ~= nil then
      live = live - 1
      C.free(ptr)
    end
    return nil
  end
  local q = C.realloc(ptr, size)
  if q ~= nil and ptr == nil then
    live = live + 1
    total = total + 1
  end
  return q
end)
scenario(function() return L.mqlite_broker_new_with_allocator(alloc, nil) end,
         function(id) return L.mqlite_client_new_with_allocator(id, alloc, nil) end, "allocator")
alloc:free()
check(total > 0, "the allocator was never called")
check(live == 0, live .. " allocations never freed")
print(string.format("%s[allocator]: %d allocations through the Lua allocator, 0 live after free",
  TAG, total))
print(TAG .. ": OK")
