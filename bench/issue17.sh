#!/usr/bin/env bash
# Every figure of issue 17 in docs/benchmarks.md, one command (as root, on a quiet machine;
# about 7-8 minutes): the codec tables (compiled / pure / other libraries: the decoder target),
# the coercion table, then bench/gateway_peers.py's three phases (throughput and gateway CPU
# µs/request of tribridge compiled and pure, Pixiu (both paths) and nginx's proxy hop, one
# worker; added p50/p99 over a direct call at a fixed rate; two workers; access logs on).
#   bench/issue17.sh [OUT_DIR [gateway_peers.py options]]
#       -> OUT_DIR/{run,codec,coerce,peers}.txt and peers.json
# QUICK=1 (a smoke test of this script, not figures): short timing runs everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/issue17-$(date -u +%Y%m%dT%H%M%SZ)}
shift || true
mkdir -p "$out"
quick=()
peers_quick=()
if [ "${QUICK:-0}" != 0 ]; then
  quick=(--budget 0.01 --repeat 1)
  peers_quick=(--seconds 1 --rounds 1 --requests 100 --rate 100)
fi
scripts/bench-setup.sh
py=.venv/bin/python
$py -c "from tribridge.codecs import _accel, dubbo, hessian2
assert (hessian2.IMPLEMENTATION, dubbo.IMPLEMENTATION) == ('compiled', 'compiled'), 'run scripts/setup.sh'
assert not _accel.stale_extensions(), 'compiled codecs older than their sources: run scripts/setup.sh'"
{ echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (+ uncommitted changes)')"
  echo "start $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cpus"
} | tee "$out/run.txt"
$py bench/codec_bench.py "${quick[@]}" | tee "$out/codec.txt"
$py bench/coerce_bench.py "${quick[@]}" | tee "$out/coerce.txt"
$py bench/gateway_peers.py --json "$out/peers.json" "${peers_quick[@]}" "$@" | tee "$out/peers.txt"
echo "end $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/run.txt"
echo "figures in $out"
