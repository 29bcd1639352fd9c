# shellcheck shell=bash
# Shared helpers for scripts/up, scripts/down, scripts/test and scripts/kafka. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.dev"
mkdir -p "$DEV"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0
# Installs Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]} (apt)"
  if [ "$APT_UPDATED" -eq 0 ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${APT_INSTALL_FLAGS:-} "${missing[@]}" >/dev/null
}

# What building the crate needs: a C toolchain for librdkafka, OpenSSL headers for SASL_SSL.
install_build_deps() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  apt_install build-essential pkg-config libssl-dev zlib1g-dev python3 curl
}

# Node and npm for the real OpenTelemetry JS exporter, then its locked packages.
install_exporter() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  local dir="$ROOT/tools/otel-client"
  if [ ! -d "$dir/node_modules/@opentelemetry/exporter-logs-otlp-proto" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    say "installing the OpenTelemetry JS exporter (npm ci)"
    (cd "$dir" && npm ci --silent --no-audit --no-fund)
  fi
}

# Debian's ClickHouse server (18.16): tests start their own instances of it.
# ZooKeeper for the ClickHouse cluster (scripts/cluster): Debian's package, run as a plain java
# process by scripts/cluster.
install_zookeeper() {
  [ -f /usr/share/java/zookeeper.jar ] || apt_install zookeeper
}

install_clickhouse() {
  command -v clickhouse-server >/dev/null || command -v clickhouse >/dev/null || apt_install clickhouse-server clickhouse-client
}

# chdb-core (current ClickHouse, embedded in Python) in .dev/venv, for the schema checks.
CHDB_PYTHON="$DEV/venv/bin/python"
install_chdb() {
  if ! "$CHDB_PYTHON" -c 'import chdb' 2>/dev/null; then
    command -v python3 >/dev/null || apt_install python3
    python3 -m venv "$DEV/venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$DEV/venv"; }
    say "installing chdb-core (pip; about 180 MB)"
    "$DEV/venv/bin/pip" install --quiet --disable-pip-version-check 'chdb-core==26.9.0'
  fi
  export COWORK_CHDB_PYTHON="$CHDB_PYTHON"
}

# promtool (Prometheus config, rules and their unit tests) and docker-compose (the compose file
# is checked with `docker-compose config`; no Docker engine is needed for that).
install_ops_tools() {
  # Without Recommends: docker-compose would pull in a whole Docker engine.
  command -v promtool >/dev/null || APT_INSTALL_FLAGS=--no-install-recommends apt_install prometheus
  command -v docker-compose >/dev/null || APT_INSTALL_FLAGS=--no-install-recommends apt_install docker-compose
}

# Java and Maven for Apache Kafka (scripts/kafka downloads the broker's jars with Maven).
# Debian's default JRE is 17 on bookworm, 21 on trixie: Kafka 4 needs 17 or newer.
install_java() {
  local java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  if ! java_17_or_newer "$java"; then
    apt_install default-jre-headless
    # A JAVA_HOME or PATH that points at an older Java would still win: use Debian's.
    local debian; debian="$(readlink -f /usr/bin/java 2>/dev/null || true)"
    if [ -n "$debian" ] && java_17_or_newer "$debian"; then
      JAVA_HOME="$(dirname "$(dirname "$debian")")"
      export JAVA_HOME
    fi
    java_17_or_newer "${JAVA_HOME:+$JAVA_HOME/bin/}java" || die "Apache Kafka 4 needs Java 17 or newer; $java is older and Debian's default-jre-headless did not provide one"
  fi
  command -v mvn >/dev/null || apt_install maven
}

# True when $1 runs and reports a Java feature version of 17 or more.
java_17_or_newer() {
  local version
  version="$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1)"
  [ -n "$version" ] && [ "${version%%.*}" -ge 17 ] 2>/dev/null
}

# cargo-nextest runs every test in its own process with a time limit (.config/nextest.toml).
# Built from crates.io when missing or older than NEXTEST_MIN (a few minutes, once).
NEXTEST_VERSION=0.9.151
NEXTEST_MIN=0.9.100
install_nextest() {
  local have
  # `|| true`: without nextest, `cargo nextest` fails, and pipefail would end the script here.
  have="$(cargo nextest --version 2>/dev/null | sed -n 's/^cargo-nextest \([0-9.]*\).*/\1/p' | head -n 1 || true)"
  if [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$NEXTEST_MIN" "$have" | sort -V | head -n 1)" = "$NEXTEST_MIN" ]; then
    return 0
  fi
  say "installing cargo-nextest $NEXTEST_VERSION from crates.io (builds from source, a few minutes, once)"
  local t0; t0=$(date +%s)
  cargo install --quiet --locked --version "$NEXTEST_VERSION" --no-default-features --features default-no-update cargo-nextest \
    || die "installing cargo-nextest $NEXTEST_VERSION from crates.io failed (cargo install cargo-nextest --locked)"
  say "cargo-nextest installed in $(( $(date +%s) - t0 ))s"
}

# cargo-fuzz and a nightly toolchain, for the fuzz targets (fuzz/, run by tests/fuzz.rs):
# libFuzzer's coverage instrumentation and AddressSanitizer need nightly rustc. Both from the
# Rust registries, once (a few minutes).
CARGO_FUZZ_VERSION=0.13.2
install_fuzz() {
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    say "installing the nightly Rust toolchain (for cargo fuzz; once)"
    rustup toolchain install nightly --profile minimal >/dev/null \
      || die "installing the nightly toolchain failed (rustup toolchain install nightly)"
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io (builds from source, once)"
    cargo install --quiet --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz \
      || die "installing cargo-fuzz from crates.io failed (cargo install cargo-fuzz --locked)"
  fi
}

# Builds every fuzz target (release, AddressSanitizer, libFuzzer) into fuzz/target; tests/fuzz.rs
# runs them. Only the library's leaves are built (no `service` feature), a few minutes cold.
build_fuzz() {
  say "building the fuzz targets (cargo +nightly fuzz build)"
  local t0; t0=$(date +%s)
  (cd "$ROOT" && cargo +nightly fuzz build --fuzz-dir fuzz -O --debug-assertions) \
    || die "the fuzz targets did not build (cargo +nightly fuzz build)"
  say "fuzz targets built in $(( $(date +%s) - t0 ))s"
}

# A pid file names a live process of ours: after a reboot the pid may belong to something else.
pid_alive() {
  [ -f "$1" ] || return 1
  local pid; pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  grep -qaE 'cowork-ingest|clickhouse' "/proc/$pid/cmdline" 2>/dev/null
}

# Starts a background process with its pid and log under .dev/, unless it already runs.
start_bg() {
  local name="$1"; shift
  if pid_alive "$DEV/$name.pid"; then say "$name already running (pid $(cat "$DEV/$name.pid"))"; return 0; fi
  nohup "$@" >"$DEV/$name.log" 2>&1 &
  echo $! >"$DEV/$name.pid"
}

# Stops a background process: SIGTERM, then SIGKILL after $2 seconds (default 10). The edge gets
# 40 s: it drains in-flight requests (15 s) and flushes its producer (15 s) before it exits.
stop_bg() {
  local name="$1" pidfile="$DEV/$1.pid" grace="${2:-10}"
  if pid_alive "$pidfile"; then
    local pid; pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    say "stopped $name"
  fi
  rm -f "$pidfile"
}

wait_http() { # url seconds
  local url="$1" secs="$2"
  for _ in $(seq 1 $((secs * 10))); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"

# A ClickHouse server as an ordinary process with its own config, data under .dev/clickhouse.
start_clickhouse() {
  local bin
  install_clickhouse
  bin="$(command -v clickhouse-server || true)"
  if [ -z "$bin" ]; then bin="$(command -v clickhouse) server"; fi
  local dir="$DEV/clickhouse"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/log" "$dir/user_files" "$dir/format_schemas"
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
  <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
XML
  # shellcheck disable=SC2086
  start_bg clickhouse $bin --config-file="$dir/config.xml"
  wait_http "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping" 60 || die "ClickHouse did not start; see $dir/log/ and $DEV/clickhouse.log"
}
