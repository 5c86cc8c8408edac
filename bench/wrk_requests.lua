-- Replays prebuilt requests (one "path<TAB>body" per line) spread over wrk's threads, each request at most once;
-- a thread stops when its share is sent (wrk still runs for -d, so give it more requests than it can send in
-- that time). Prints p50/p99 and counts as JSON for the benchmarks. Extra headers follow the path, each after a
-- \1 byte ("path\1Name: value\1Name: value<TAB>body"); WRK_METHOD is POST (a text/xml body) or GET (no body).
local file = os.getenv("WRK_REQUESTS")
local method = os.getenv("WRK_METHOD") or "POST"
-- Paced mode: each connection waits about WRK_DELAY_MS before each request (offered rate ~ connections / delay),
-- so latency is measured at a steady load instead of at saturation. The pause is drawn uniformly from 0 to twice
-- the mean: with one fixed pause, connections that start together stay in step and arrive in bursts of all of
-- them at once, which measures the burst, not the load.
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return math.random(0, 2 * delay_ms)
  end
end
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + id)
  local nthreads = tonumber(os.getenv("WRK_THREADS"))
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local head, body = line:sub(1, tab - 1), line:sub(tab + 1)
      local headers, path = {}, nil
      for part in (head .. "\1"):gmatch("([^\1]*)\1") do
        if path == nil then
          path = part
        else
          local colon = part:find(": ", 1, true)
          headers[part:sub(1, colon - 1)] = part:sub(colon + 2)
        end
      end
      if method == "POST" then
        headers["Content-Type"] = "text/xml"
      else
        body = nil
      end
      table.insert(reqs, wrk.format(method, path, headers, body))
    end
    i = i + 1
  end
  pos = 0
end

function request()
  pos = pos + 1
  if pos > #reqs then
    wrk.thread:stop()
    return reqs[#reqs]
  end
  return reqs[pos]
end

function done(summary, latency, requests)
  io.write(string.format('{"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
