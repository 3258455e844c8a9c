-- wrk script for bench/api.py: each request POSTs new_build with one SRPM URL (so each
-- request creates a build). BENCH_AUTH holds the Authorization header value ("Basic ...").
wrk.method = "POST"
wrk.body = "pkgs=http%3A%2F%2F127.0.0.1%3A9%2Fx-1.0-1.src.rpm"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
