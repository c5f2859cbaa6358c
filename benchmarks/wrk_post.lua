-- wrk script for benchmarks/serving.py: POST the JSON body in $BENCH_BODY on every request,
-- then print one line "BENCH_RESULT {json}" with the counts and latency percentiles (in
-- microseconds), which is easier to parse than wrk's human-readable report.

wrk.method = "POST"
wrk.body = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
