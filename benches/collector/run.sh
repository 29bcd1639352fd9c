#!/usr/bin/env bash
# Our edge and consumer against the OpenTelemetry Collector, side by side, one core each.
# One command: builds what it needs into .dev/ (ignored), starts Apache Kafka and ClickHouse,
# runs both phases and prints the tables (progress on stderr). See BENCHMARKS.md,
# "A peer, side by side: the OpenTelemetry Collector".
#
#   benches/collector/run.sh [--bin PATH] [--rounds N] [--secs S] [--phases edge,consume] ...
#   COWORK_BIN=/path/to/cowork-ingest benches/collector/run.sh
#
# --bin (or COWORK_BIN) is our release binary, default target/release/cowork-ingest; it is not
# built here. The rest of the flags: benches/collector/run.py --help.
#
# Builds, each once (again when its inputs change):
#   - ocb (go.opentelemetry.io/collector/cmd/builder) from the Go module proxy into .dev/go/bin;
#   - the collector from benches/collector/builder-config.yaml into .dev/otelcol/otelcol-bench
#     (a few minutes on 2 cores; GOMAXPROCS/GOFLAGS from the environment apply);
#   - the load client (benches/collector/loadclient, standard library only) into .dev/bin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/benches/collector"
cd "$ROOT"
OCB_VERSION=v0.165.0
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

command -v go >/dev/null || { echo "go not found: the collector is built with Go" >&2; exit 1; }
OCB="$ROOT/.dev/go/bin/builder"
if [ ! -x "$OCB" ] || ! "$OCB" version 2>/dev/null | grep -q "$OCB_VERSION"; then
  say "installing ocb $OCB_VERSION (go install go.opentelemetry.io/collector/cmd/builder)"
  GOBIN="$ROOT/.dev/go/bin" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
fi
OTELCOL="$ROOT/.dev/otelcol/otelcol-bench"
if [ ! -x "$OTELCOL" ] || [ "$HERE/builder-config.yaml" -nt "$OTELCOL" ]; then
  say "building the collector with ocb (benches/collector/builder-config.yaml; several minutes)"
  t0=$(date +%s)
  "$OCB" --config "$HERE/builder-config.yaml" >"$ROOT/.dev/ocb-build.log" 2>&1 \
    || { tail -n 30 "$ROOT/.dev/ocb-build.log" >&2; echo "ocb failed; log: .dev/ocb-build.log" >&2; exit 1; }
  say "collector built in $(( $(date +%s) - t0 ))s"
fi
LOADCLIENT="$ROOT/.dev/bin/loadclient"
if [ ! -x "$LOADCLIENT" ] || [ "$HERE/loadclient/main.go" -nt "$LOADCLIENT" ]; then
  say "building the load client"
  (cd "$HERE/loadclient" && go build -o "$LOADCLIENT" .)
fi
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs: the servers on CPU 0, the rest on CPU 1" >&2; exit 1; }
exec python3 "$HERE/run.py" --otelcol "$OTELCOL" --loadclient "$LOADCLIENT" "$@"
