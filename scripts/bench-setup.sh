#!/usr/bin/env bash
# Idempotent set-up of what only the benchmarks need (not the tests: scripts/test.sh never pays
# for this).  Today: Apache dubbo-go-pixiu, built from the Go module proxy by module name at the
# released version pinned in bench/pixiu/go.mod (go.sum checks it); nothing of Pixiu's source is
# kept in this repository.  The binary lands in bench/pixiu/bin/pixiu (gitignored) and is rebuilt
# only when go.mod/go.sum change (stamp = their hash).  The Java Dubbo 3.3 provider the benchmark
# calls is built by scripts/setup.sh (interop/java/dubbo33).
#   scripts/bench-setup.sh        -> bench/pixiu/bin/pixiu
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "[bench-setup] go (>= 1.25) is needed to build Pixiu" >&2; exit 1; }
sum=$(cat bench/pixiu/go.mod bench/pixiu/go.sum | sha256sum | cut -c1-16)
stamp=bench/pixiu/bin/.tribridge-stamp
if [ ! -x bench/pixiu/bin/pixiu ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
  echo "[bench-setup] building dubbo-go-pixiu (go build from the module proxy; a few minutes)"
  mkdir -p bench/pixiu/bin
  (cd bench/pixiu && go build -mod=readonly -o bin/pixiu github.com/apache/dubbo-go-pixiu/cmd/pixiu)
  echo "$sum" > "$stamp"
fi
if [ ! -d interop/java/dubbo33/target/lib ]; then
  echo "[bench-setup] the Java Dubbo 3.3 provider is not built: run scripts/setup.sh" >&2
  exit 1
fi
