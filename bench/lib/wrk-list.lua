-- wrk script of the bench (bench/lib/wrk.mjs): requests drawn from a list of paths, one per line,
-- in the file named by WRK_PATHS.
--   WRK_ORDER=random (default): each thread draws paths at random (seeded by WRK_SEED and its number);
--   WRK_ORDER=once: thread k of n sends paths k, k+n, k+2n… once each, then stops (cold tiles);
--   WRK_STATUS=1: count answers by status code (a response() callback: costs the client a little).
-- done() prints one line "@@WRK {json}" with the run's totals, latency percentiles (µs) and counts.
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do
  if #line > 0 then paths[#paths + 1] = line end
end
local order = os.getenv("WRK_ORDER") or "random"
local seed = tonumber(os.getenv("WRK_SEED") or "1")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local count_status = os.getenv("WRK_STATUS") == "1"

local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  threads[#threads + 1] = thread
end

local reqs = {}
local pos = 0
exhausted = 0
statuses = {}
function init(args)
  for i = 1, #paths do reqs[i] = wrk.format(nil, paths[i]) end
  math.randomseed(seed * 7919 + id)
  pos = id - nthreads
end

function request()
  if order == "once" then
    pos = pos + nthreads
    if pos > #reqs then
      exhausted = 1
      wrk.thread:stop()
      pos = id
    end
    return reqs[pos]
  end
  return reqs[math.random(#reqs)]
end

if count_status then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local st, ex = {}, 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do st[k] = (st[k] or 0) + v end end
    ex = ex + (t:get("exhausted") or 0)
  end
  local parts = {}
  for k, v in pairs(st) do parts[#parts + 1] = string.format('"%d":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    '@@WRK {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d},"statuses":{%s},"exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, table.concat(parts, ","), ex))
end
