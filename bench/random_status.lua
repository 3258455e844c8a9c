-- wrk script for bench/api.py: build_status of a random build id between BENCH_FIRST and
-- BENCH_LAST (the 100,000-build project), authenticated with BENCH_AUTH.
local first = tonumber(os.getenv("BENCH_FIRST"))
local last = tonumber(os.getenv("BENCH_LAST"))
math.randomseed(os.time())
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

request = function()
  return wrk.format("GET", "/api/coprs/build_status/" .. math.random(first, last) .. "/")
end
