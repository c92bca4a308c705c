-- wrk script: POST the lesson's {"features": [...]} bodies, one JSON body a
-- line from the file named after `--` (bench_http.py writes it from the test
-- rows), taking turns through them; prints one machine-readable summary line.
--
--   wrk -t2 -c8 -d10s -s wrk_post.lua http://127.0.0.1:8000/predict -- bodies.txt

local bodies = {}
local turn = 0

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  f:close()
  assert(#bodies > 0, "no request bodies in " .. args[1])
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  turn = turn % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[turn])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
