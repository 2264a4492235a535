# graycast — the two commands are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/.tools/node_modules/.bin:$(PATH)

.PHONY: run test build bootstrap-test test-unit test-postgres test-e2e lint clean bench bench-resolve bench-weight

## Install what is missing, build, and start the server on http://127.0.0.1:8080.
run: build
	@scripts/run.sh

# The watch tests hold a few hundred streams at once, both ends in one process:
# use the open-file limit the system allows rather than a 1,024 default.
RAISE_FD_LIMIT := ulimit -n "$$(ulimit -Hn)" 2>/dev/null || true;

## Install what is missing (Chromium and npm packages included) and run every test.
test: bootstrap-test
	$(RAISE_FD_LIMIT) cargo test --workspace --features graycast/ssr
	$(RAISE_FD_LIMIT) scripts/pg.sh run scripts/test-postgres.sh
	scripts/build.sh
	@# A build right after a build does nothing (issue 27, point 10).
	scripts/build.sh --expect-up-to-date
	end2end/run.sh

## Release binary at target/release/graycast, front end under target/site (content-hashed
## names, with brotli and gzip copies the server sends as they are).
build:
	@scripts/bootstrap.sh build
	@scripts/build.sh

bootstrap-test:
	@scripts/bootstrap.sh test

test-unit:
	$(RAISE_FD_LIMIT) cargo test --workspace --features graycast/ssr

## The PostgreSQL half alone: a throwaway cluster, the schema checks, the API suites on it.
test-postgres: bootstrap-test
	$(RAISE_FD_LIMIT) scripts/pg.sh run scripts/test-postgres.sh

test-e2e:
	end2end/run.sh

## Watch fan-out, graycast vs etcd 3.4 (installs etcd if missing; docs/benchmarks.md).
## Options: make bench BENCH_ARGS="--subscribers 1000"
bench:
	@scripts/bootstrap.sh build
	@scripts/bench.sh $(BENCH_ARGS)

## Per-request resolve, /healthz and OFREP vs Unleash Edge 19.15.1, wrk -t2 -c64 (installs wrk
## and Unleash Edge if missing; docs/benchmarks.md).
## Options: make bench-resolve BENCH_ARGS="--duration 30" or BENCH_ARGS="--memory"
bench-resolve:
	@scripts/bootstrap.sh build
	@scripts/bench-resolve.sh $(BENCH_ARGS)

## The dashboard's first-load weight: bytes and time to hydration of the config page, cold and
## warm, at 20 Mbit/s and 40 ms (a release build: run `make build` first; docs/benchmarks.md).
## Options: make bench-weight BENCH_ARGS="--runs 9" or BENCH_ARGS="--bin OLD/graycast --site-root OLD/site"
bench-weight:
	@scripts/bench-weight.sh $(BENCH_ARGS)

## Format, clippy (server and tests; the dashboard's wasm), and the layers: no module cycle in any
## crate, the client crate without the server, the domain crate without I/O (scripts/check-layers.sh).
lint:
	cargo fmt --all --check
	cargo clippy --workspace --features graycast/ssr --all-targets -- -D warnings
	cargo clippy -p graycast -p graycast-domain --lib --features graycast/hydrate --target wasm32-unknown-unknown -- -D warnings
	scripts/check-layers.sh

clean:
	cargo clean
