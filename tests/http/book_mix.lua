-- wrk script: the book's HTTP workload, 80% GET /entries and 20%
-- POST /add_entry, over 1,000 lists (list0001..list1000), one date.
--
--   wrk -t1 -c16 -d3s -s tests/http/book_mix.lua http://127.0.0.1:7080
--
-- Every answer that is not 2xx is counted (response()), and done() prints
-- one line "non2xx N" (N summed over wrk's threads) for tests to assert on,
-- plus "requests G P" (GETs and POSTs sent).
-- Environment: BOOK_MIX_SEED (default 1) seeds the choice of list and op;
-- BOOK_MIX_PREFIX (default "list") starts every list name.

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
  local list = string.format("%s%04d", prefix, math.random(1, 1000))
  if math.random(1, 10) <= 8 then
    gets = gets + 1
    return wrk.format("GET", "/entries?list=" .. list .. "&date=2026-12-19")
  end
  posts = posts + 1
  -- An empty body, as the book's `curl -d ""` sends it (Content-Length: 0).
  return wrk.format("POST", "/add_entry?list=" .. list .. "&date=2026-12-19&title=Dentist",
                    nil, "")
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
