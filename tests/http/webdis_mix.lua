-- wrk script: the book's HTTP workload (book_mix.lua) as webdis commands
-- over Redis, for tests/bench/http_compare: 80% GET /LRANGE/L:D/0/-1 and
-- 20% POST / with the body RPUSH/L:D/Dentist, over 1,000 lists, one date.
-- A Redis list per to-do list and date holds its titles, as the node keeps
-- each list's entries; LRANGE answers all of them, as GET /entries answers
-- all of the date's entries.
--
--   wrk -t2 -c100 -d10s -s tests/http/webdis_mix.lua http://127.0.0.1:7379
--
-- Like book_mix.lua, done() prints "non2xx N" and "requests G P".
-- Environment: BOOK_MIX_SEED (default 1), BOOK_MIX_PREFIX (default "list").

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local seed = tonumber(os.getenv("BOOK_MIX_SEED") or "1")
  math.randomseed(seed * 1000 + thread_index)
  prefix = os.getenv("BOOK_MIX_PREFIX") or "list"
  non2xx = 0
  gets = 0
  posts = 0
end

function request()
  local key = string.format("%s%04d:2026-12-19", prefix, math.random(1, 1000))
  if math.random(1, 10) <= 8 then
    gets = gets + 1
    return wrk.format("GET", "/LRANGE/" .. key .. "/0/-1")
  end
  posts = posts + 1
  return wrk.format("POST", "/", nil, "RPUSH/" .. key .. "/Dentist")
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad, g, p = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
    g = g + t:get("gets")
    p = p + t:get("posts")
  end
  io.write(string.format("non2xx %d\n", bad))
  io.write(string.format("requests %d %d\n", g, p))
end
