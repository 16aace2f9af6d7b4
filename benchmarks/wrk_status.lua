-- Counts wrk's answers by status class for proxy_overhead.py: wrk's own "Requests/sec" counts
-- every answer, and its "Non-2xx or 3xx responses" line takes a 3xx for a success.
-- Each wrk thread runs its own Lua state; done() adds up the threads' counters.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  other = 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + thread:get("ok")
    other_total = other_total + thread:get("other")
  end
  io.write(string.format("dockerflow answers: 2xx %d, other %d\n", ok_total, other_total))
end
