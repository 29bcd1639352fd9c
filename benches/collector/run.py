#!/usr/bin/env python3
"""Our edge and consumer against the OpenTelemetry Collector, side by side, one core each.

Run through benches/collector/run.sh, which builds the collector (ocb) and the load client first.
See BENCHMARKS.md, "A peer, side by side: the OpenTelemetry Collector".

edge:    OTLP/HTTP (protobuf, JSON) -> Apache Kafka, acks=all, answering after delivery.
         Our `cowork-ingest edge` against the collector's otlp receiver -> kafka exporter
         (sending_queue disabled, required_acks -1). Optionally the collector with its default
         sending_queue too, which answers before Kafka has the data (not durable).
consume: Kafka -> decoded records. The collector's kafka receiver (otlp_proto) -> nop exporter,
         against our `cowork-ingest consume`, which also writes every row to ClickHouse 18.16.

Each server runs alone under `taskset -c 0` (GOMAXPROCS=1 for Go); the load client, the broker
and ClickHouse run under `taskset -c 1`. CPU time comes from /proc/PID/stat (utime+stime, all
threads). Prints one table per phase.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / ".dev"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORPUS = ROOT / "tests" / "fixtures" / "corpus"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


# ---- bodies ---------------------------------------------------------------------------------


def varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def fields(buf):
    """(field number, wire type, value or bytes) of one protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 2:
            ln, i = varint(buf, i)
            v, i = buf[i : i + ln], i + ln
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def proto_log_records(buf):
    # ExportLogsServiceRequest.resource_logs(1) -> ResourceLogs.scope_logs(2) -> ScopeLogs.log_records(2)
    n = 0
    for f, wt, rl in fields(buf):
        if f == 1 and wt == 2:
            for g, wt2, sl in fields(rl):
                if g == 2 and wt2 == 2:
                    n += sum(1 for h, wt3, _ in fields(sl) if h == 2 and wt3 == 2)
    return n


def json_log_records(buf):
    doc = json.loads(buf)
    return sum(
        len(sl.get("logRecords", []))
        for rl in doc.get("resourceLogs", [])
        for sl in rl.get("scopeLogs", [])
    )


def body_list(folder, count, out):
    paths = sorted(p for p in (CORPUS / folder).iterdir() if not p.name.endswith(".headers"))
    lines, events, size = [], 0, 0
    for p in paths:
        data = p.read_bytes()
        n = count(data)
        lines.append(f"{p} {n}")
        events += n
        size += len(data)
    out.write_text("\n".join(lines) + "\n")
    return {"bodies": len(paths), "events": events, "bytes": size}


# ---- processes ------------------------------------------------------------------------------


class Proc:
    def __init__(self, name, argv, logdir, env=None, cpu=None):
        self.name = name
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        self.logf = open(logdir / f"{name}.log", "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(
            argv, stdout=self.logf, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
        self.pid = self.p.pid  # taskset execs the program: same pid

    def stop(self, grace=20):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()

    def alive(self):
        return self.p.poll() is None


def wait_until(what, pred, timeout=60, proc=None):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and not proc.alive():
            sys.exit(f"{proc.name} exited while waiting for {what}; see its log")
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def http_post(url, data, ctype, auth=None, timeout=5):
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", ctype)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def prom_sum(text, name, label_filter=None):
    """Sum of every sample of one metric in a Prometheus text exposition."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        if label_filter and label_filter not in (m.group(2) or ""):
            continue
        total += float(m.group(3))
        seen = True
    return total if seen else None


# ---- configs --------------------------------------------------------------------------------


def cowork_toml(path, a):
    path.write_text(
        f"""# Written by benches/collector/run.py
[edge]
http_listen = "127.0.0.1:{a['edge_http']}"
grpc_listen = "127.0.0.1:{a['edge_grpc']}"
admin_listen = "127.0.0.1:{a['edge_admin']}"
keys_path = "{a['keys']}"

[kafka]
brokers = "{a['brokers']}"
logs_topic = "{a['prefix']}-logs"
metrics_topic = "{a['prefix']}-metrics"
traces_topic = "{a['prefix']}-traces"

[clickhouse]
url = "{a.get('ch_url', 'http://127.0.0.1:8123')}"
database = "{a.get('ch_db', 'cowork')}"

[consumer]
admin_listen = "127.0.0.1:{a['consumer_admin']}"
group_id = "{a.get('group', 'cowork-ingest')}"
dlq_topic = "{a['prefix']}-logs-dlq"
"""
    )


def otelcol_edge_yaml(path, brokers, port, topic, telemetry_port, queue):
    queue_block = (
        "    sending_queue:\n      enabled: false\n"
        if not queue
        else "    # sending_queue: the default (enabled): answers once the request is queued\n"
    )
    path.write_text(
        f"""# Written by benches/collector/run.py: otlp receiver -> kafka exporter
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  kafka:
    brokers: [{brokers}]
    logs:
      topic: {topic}
      encoding: otlp_proto
    producer:
      required_acks: -1
      compression: none
      max_message_bytes: 4259840
      allow_auto_topic_creation: false
    timeout: 8s
{queue_block}service:
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry_port}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [kafka]
"""
    )


def otelcol_consume_yaml(path, brokers, topic, group, telemetry_port):
    path.write_text(
        f"""# Written by benches/collector/run.py: kafka receiver -> nop exporter
receivers:
  kafka:
    brokers: [{brokers}]
    group_id: {group}
    initial_offset: earliest
    max_fetch_size: 67108864
    max_partition_fetch_size: 16777216
    logs:
      topics: [{topic}]
      encoding: otlp_proto
    message_marking:
      after: true
exporters:
  nop:
service:
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry_port}
  pipelines:
    logs:
      receivers: [kafka]
      exporters: [nop]
"""
    )


# ---- phases ---------------------------------------------------------------------------------


def load(a, url, lst, ctype, pid, auth=None, requests=0):
    argv = [
        "taskset", "-c", "1", str(a.loadclient), "-url", url, "-bodies", str(lst),
        "-content-type", ctype, "-conns", str(a.conns), "-pid", str(pid),
    ]
    if auth:
        argv += ["-auth", auth]
    if requests:
        argv += ["-requests", str(requests)]
    else:
        argv += ["-warmup", f"{a.warmup}s", "-duration", f"{a.secs}s"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def wait_post_ok(url, body, ctype, auth, proc, what):
    wait_until(what, lambda: http_post(url, body, ctype, auth) == 200, timeout=60, proc=proc)


def edge_phase(a, run, ctx):
    rows = []
    encs = [e for e in a.encodings.split(",") if e]
    sample = {
        "proto": ((CORPUS / "proto-none" / "0007.pb").read_bytes(), "application/x-protobuf"),
        "json": ((CORPUS / "json-none" / "0007.json").read_bytes(), "application/json"),
    }
    lists = {"proto": ctx["proto_list"], "json": ctx["json_list"]}
    servers = ["edge", "otelcol"] + (["otelcol-queue"] if a.with_queue else [])
    for rnd in range(1, a.rounds + 1):
        for server in servers:
            if server == "edge":
                cfg = run / "edge.toml"
                ports = dict(ctx["ports"])
                cowork_toml(cfg, {**ports, "brokers": ctx["brokers"], "keys": ctx["keys"], "prefix": ctx["prefix"]})
                proc = Proc(f"edge-r{rnd}", [str(a.bin), "--config", str(cfg), "edge"], run,
                            env={"KAFKA_BROKERS": ctx["brokers"], "RUST_LOG": "warn"}, cpu=0)
                url = f"http://127.0.0.1:{ports['edge_http']}/v1/logs"
                auth = f"Bearer {ctx['key']}"
                wait_until("the edge's /readyz",
                           lambda: http_get(f"http://127.0.0.1:{ports['edge_admin']}/readyz")[0] == 200, proc=proc)
            else:
                port, tport = free_port(), free_port()
                cfg = run / f"{server}-edge.yaml"
                otelcol_edge_yaml(cfg, ctx["brokers"], port, ctx["otel_topic"], tport, queue=server == "otelcol-queue")
                proc = Proc(f"{server}-r{rnd}", [str(a.otelcol), "--config", str(cfg)], run,
                            env={"GOMAXPROCS": "1"}, cpu=0)
                url = f"http://127.0.0.1:{port}/v1/logs"
                auth = f"Bearer {ctx['key']}"  # sent to both; the collector ignores it
            try:
                for enc in encs:
                    body, ctype = sample[enc]
                    wait_post_ok(url, body, ctype, auth, proc, f"{server} to accept a request")
                    log(f"round {rnd}: {server}, {enc}: {a.warmup}s warm-up + {a.secs}s")
                    r = load(a, url, lists[enc], ctype, proc.pid, auth)
                    r.update(server=server, enc=enc, round=rnd)
                    rows.append(r)
            finally:
                proc.stop()
    return rows


def start_clickhouse(run):
    d = run / "clickhouse"
    for sub in ("data", "tmp", "log", "user_files", "format_schemas"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    http, tcp = free_port(), free_port()
    (d / "config.xml").write_text(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
""")
    (d / "users.xml").write_text("""<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage><allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
""")
    binp = shutil.which("clickhouse-server")
    argv = [binp] if binp else [shutil.which("clickhouse"), "server"]
    proc = Proc("clickhouse", argv + [f"--config-file={d}/config.xml"], run, cpu=1)
    url = f"http://127.0.0.1:{http}"
    wait_until("ClickHouse", lambda: http_get(url + "/ping")[0] == 200, timeout=90, proc=proc)
    return proc, url


def watch_consumer(proc, metrics_url, progress, total_msgs, total_events, timeout):
    """Polls a consumer's metrics every 0.1 s until it has consumed every message and decoded
    every event; returns its CPU time since exec (utime+stime) and the wall time since exec."""
    t0 = time.time()
    msgs = decoded = 0
    while True:
        if not proc.alive():
            sys.exit(f"{proc.name} exited; see its log")
        try:
            msgs, decoded = (x or 0 for x in progress(http_get(metrics_url)[1].decode()))
        except Exception:
            pass
        if msgs >= total_msgs and decoded >= total_events:
            return {"cpu_ticks_total": cpu_ticks(proc.pid), "seconds": time.time() - t0, "decoded": decoded}
        if time.time() - t0 > timeout:
            sys.exit(f"{proc.name}: consumed {msgs} of {total_msgs} messages in {timeout}s")
        time.sleep(0.1)


def idle_start_cost(proc, metrics_url, settle):
    """CPU time since exec of a consumer on an empty topic, `settle` seconds after its metrics
    first answer (started, joined its group, polling): what a run costs besides the events."""
    wait_until(f"{proc.name}'s metrics", lambda: http_get(metrics_url)[0] == 200, timeout=60, proc=proc)
    time.sleep(settle)
    return cpu_ticks(proc.pid)


def start_consumer(a, run, ctx, server, name, topic_prefix, group, base, env):
    if server == "otelcol":
        tport = free_port()
        ycfg = run / f"{name}.yaml"
        otelcol_consume_yaml(ycfg, ctx["brokers"], f"{topic_prefix}-logs", group, tport)
        proc = Proc(name, [str(a.otelcol), "--config", str(ycfg)], run, env={"GOMAXPROCS": "1"}, cpu=0)
        murl = f"http://127.0.0.1:{tport}/metrics"
        # messages fetched; log records decoded and handed to the pipeline (nop)
        progress = lambda t: (
            prom_sum(t, "otelcol_kafka_receiver_messages", 'outcome="success"'),
            prom_sum(t, "otelcol_receiver_accepted_log_records"),
        )
    else:
        ccfg = run / f"{name}.toml"
        cowork_toml(ccfg, {**base, "prefix": topic_prefix, "group": group})
        proc = Proc(name, [str(a.bin), "--config", str(ccfg), "consume"], run, env=env, cpu=0)
        murl = f"http://127.0.0.1:{base['consumer_admin']}/metrics"
        # messages stored (inserted or dead-lettered); events inserted
        progress = lambda t: (
            prom_sum(t, "cowork_consumer_messages_total"),
            prom_sum(t, "cowork_consumer_events_total"),
        )
    return proc, murl, progress


def consume_phase(a, run, ctx):
    rows = []
    ch, ch_url = start_clickhouse(run)
    try:
        prefix = ctx["prefix"] + "-c"
        empty = ctx["prefix"] + "-e"
        ports = dict(ctx["ports"])
        base = {**ports, "brokers": ctx["brokers"], "keys": ctx["keys"], "prefix": prefix,
                "ch_url": ch_url, "ch_db": "cowork"}
        env = {"KAFKA_BROKERS": ctx["brokers"], "RUST_LOG": "warn"}
        cfg = run / "fill.toml"
        cowork_toml(cfg, base)
        subprocess.run([str(a.bin), "--config", str(cfg), "migrate"], check=True, env={**os.environ, **env},
                       stdout=subprocess.DEVNULL)
        for pfx in (prefix, empty):
            tcfg = run / f"topics-{pfx}.toml"
            cowork_toml(tcfg, {**base, "prefix": pfx})
            subprocess.run([str(a.bin), "--config", str(tcfg), "topics", "check", "--create"], check=True,
                           env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Fill the raw topic through our edge: it publishes each body as sent (identity, no
        # compression) with its headers, so the message value is raw OTLP protobuf, which is what
        # the collector's kafka receiver (otlp_proto) reads. Both consumers read this one topic.
        edge = Proc("edge-fill", [str(a.bin), "--config", str(cfg), "edge"], run, env=env, cpu=0)
        try:
            wait_until("the edge's /readyz",
                       lambda: http_get(f"http://127.0.0.1:{ports['edge_admin']}/readyz")[0] == 200, proc=edge)
            n_req = a.fill_passes * ctx["proto"]["bodies"]
            log(f"filling {prefix}-logs: {n_req} requests ({a.fill_passes} passes of the proto-none corpus)")
            fill = load(a, f"http://127.0.0.1:{ports['edge_http']}/v1/logs", ctx["proto_list"],
                        "application/x-protobuf", edge.pid, f"Bearer {ctx['key']}", requests=n_req)
        finally:
            edge.stop()
        if fill["statuses"].get("200") != n_req:
            sys.exit(f"fill: not every request was accepted: {fill['statuses']} {fill['first_err']}")
        msgs, events = n_req, fill["events"]
        for rnd in range(1, a.rounds + 1):
            for server in ("otelcol", "consume"):
                # The same process on an empty topic: its start-up and idle cost, subtracted below.
                proc, murl, _ = start_consumer(a, run, ctx, server, f"{server}-idle-r{rnd}", empty,
                                               f"{empty}-{server}-r{rnd}", base, env)
                try:
                    startup = idle_start_cost(proc, murl, a.settle)
                finally:
                    proc.stop()
                proc, murl, progress = start_consumer(a, run, ctx, server, f"{server}-consume-r{rnd}", prefix,
                                                      f"{prefix}-{server}-r{rnd}", base, env)
                log(f"round {rnd}: {server}: {msgs} messages, {events} events")
                try:
                    w = watch_consumer(proc, murl, progress, msgs, events, timeout=600)
                finally:
                    proc.stop()
                w.update(server=server, round=rnd, messages=msgs, events=events, startup_cpu_ticks=startup,
                         cpu_ticks=w["cpu_ticks_total"] - startup)
                rows.append(w)
    finally:
        ch.stop(30)
    return rows


# ---- report ---------------------------------------------------------------------------------


def us_per_event(r):
    return r["cpu_ticks"] / CLK_TCK * 1e6 / r["events"] if r["events"] else float("nan")


def edge_table(rows):
    print("\n### edge: OTLP/HTTP -> Apache Kafka, one core (taskset -c 0), acks=all\n")
    print("| server (one core) | body | round | requests/s | events/s | server CPU | CPU-µs/event | "
          "CPU/event vs our edge | non-200 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ref = {(r["enc"], r["round"]): us_per_event(r) for r in rows if r["server"] == "edge"}
    names = {"edge": "cowork-ingest edge", "otelcol": "collector, sending_queue off (durable)",
             "otelcol-queue": "collector, default sending_queue (answers before Kafka)"}
    for r in rows:
        cpu = r["cpu_ticks"] / CLK_TCK / r["seconds"]
        upe = us_per_event(r)
        bad = sum(v for k, v in r["statuses"].items() if k != "200")
        ratio = upe / ref[(r["enc"], r["round"])] if (r["enc"], r["round"]) in ref else float("nan")
        print(f"| {names[r['server']]} | {r['enc']} | {r['round']} | {r['requests'] / r['seconds']:.0f} | "
              f"{r['events'] / r['seconds']:.0f} | {cpu * 100:.0f}% | {upe:.2f} | {ratio:.2f}x | {bad} |")


def consume_table(rows):
    print("\n### consume: Kafka -> decoded records, one core (taskset -c 0)\n")
    print("| consumer (one core) | round | events | decoded (its own count) | wall s from exec | "
          "CPU s from exec | start-up CPU s (empty topic) | CPU-µs/event (net) | events per CPU-s | "
          "CPU/event vs collector |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ref = {r["round"]: us_per_event(r) for r in rows if r["server"] == "otelcol"}
    names = {"otelcol": "collector: kafka receiver (otlp_proto) -> nop",
             "consume": "cowork-ingest consume -> ClickHouse"}
    for r in rows:
        upe = us_per_event(r)
        print(f"| {names[r['server']]} | {r['round']} | {r['events']} | {r['decoded']:.0f} | {r['seconds']:.2f} | "
              f"{r['cpu_ticks_total'] / CLK_TCK:.2f} | {r['startup_cpu_ticks'] / CLK_TCK:.2f} | {upe:.2f} | "
              f"{1e6 / upe:.0f} | {upe / ref[r['round']]:.2f}x |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("COWORK_BIN", str(ROOT / "target/release/cowork-ingest")))
    ap.add_argument("--otelcol", default=os.environ.get("OTELCOL_BIN", str(DEV / "otelcol/otelcol-bench")))
    ap.add_argument("--loadclient", default=os.environ.get("LOADCLIENT_BIN", str(DEV / "bin/loadclient")))
    ap.add_argument("--secs", type=float, default=float(os.environ.get("BENCH_SECS", 10)))
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--conns", type=int, default=int(os.environ.get("BENCH_CONNS", 32)))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 2)))
    ap.add_argument("--encodings", default="proto,json")
    ap.add_argument("--fill-passes", type=int, default=int(os.environ.get("BENCH_FILL_PASSES", 200)),
                    help="passes of the 8 proto-none corpus bodies written for the consume phase")
    ap.add_argument("--settle", type=float, default=3,
                    help="seconds a consumer idles on an empty topic for its start-up cost")
    ap.add_argument("--with-queue", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the collector with its default sending_queue (not durable)")
    ap.add_argument("--phases", default="edge,consume")
    ap.add_argument("--kafka-dir", default=str(DEV / "bench-kafka"))
    ap.add_argument("--keep-topics", action="store_true", help="keep this run's topics (default: deleted)")
    ap.add_argument("--keep-kafka", action="store_true",
                    help="leave the broker running if this run started it (default: stopped)")
    a = ap.parse_args()
    for p in (a.bin, a.otelcol, a.loadclient):
        if not os.access(p, os.X_OK):
            sys.exit(f"not found or not executable: {p}")
    a.bin, a.otelcol, a.loadclient = Path(a.bin), Path(a.otelcol), Path(a.loadclient)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = DEV / "bench-collector" / stamp
    run.mkdir(parents=True, exist_ok=True)
    ctx = {"prefix": f"cb{stamp.replace('-', '')}"}
    ctx["proto_list"], ctx["json_list"] = run / "proto.list", run / "json.list"
    ctx["proto"] = body_list("proto-none", proto_log_records, ctx["proto_list"])
    ctx["json"] = body_list("json-none", json_log_records, ctx["json_list"])
    ctx["ports"] = {k: free_port() for k in ("edge_http", "edge_grpc", "edge_admin", "consumer_admin")}
    ctx["keys"] = run / "keys.toml"

    log(f"run directory {run}")
    kafka = str(ROOT / "scripts/kafka")
    was_running = subprocess.run([kafka, "status", "--dir", a.kafka_dir], capture_output=True).returncode == 0
    out = subprocess.run([str(ROOT / "scripts/kafka"), "start", "--dir", a.kafka_dir, "--port", "0"],
                         check=True, capture_output=True, text=True)
    ctx["brokers"] = out.stdout.strip().splitlines()[-1]
    kpid = Path(a.kafka_dir + ".pid").read_text().strip()
    subprocess.run(["taskset", "-a", "-cp", "1", kpid], check=True, stdout=subprocess.DEVNULL)
    log(f"Apache Kafka at {ctx['brokers']} (pid {kpid}, pinned to CPU 1)")

    cfg = run / "edge.toml"
    cowork_toml(cfg, {**ctx["ports"], "brokers": ctx["brokers"], "keys": ctx["keys"], "prefix": ctx["prefix"]})
    env = {**os.environ, "KAFKA_BROKERS": ctx["brokers"]}
    subprocess.run([str(a.bin), "--config", str(cfg), "topics", "check", "--create"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx["otel_topic"] = f"{ctx['prefix']}-otelcol-logs"
    subprocess.run([str(ROOT / "scripts/kafka"), "tool", "topics", "--bootstrap-server", ctx["brokers"],
                    "--create", "--topic", ctx["otel_topic"], "--partitions", "12",
                    "--config", "max.message.bytes=4259840"], check=True, stdout=subprocess.DEVNULL)
    ctx["key"] = subprocess.run([str(a.bin), "--config", str(cfg), "keys", "create", "--tenant", "bench",
                                 "--role", "ingest"], check=True, capture_output=True, text=True,
                                env=env).stdout.strip().splitlines()[-1]

    edge_rows = consume_rows = []
    phases = a.phases.split(",")
    try:
        if "edge" in phases:
            edge_rows = edge_phase(a, run, ctx)
        if "consume" in phases:
            consume_rows = consume_phase(a, run, ctx)
    finally:
        if not a.keep_topics:
            # The edge phase writes a few GB; drop this run's topics (the broker keeps the rest).
            subprocess.run([kafka, "tool", "topics", "--bootstrap-server", ctx["brokers"], "--delete",
                            "--topic", f"{ctx['prefix']}.*"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not was_running and not a.keep_kafka:
            subprocess.run([kafka, "stop", "--dir", a.kafka_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    ver = subprocess.run([str(a.otelcol), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\n## cowork-ingest against the OpenTelemetry Collector ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(f"- ours: {a.bin}; collector: {ver} (ocb v0.165.0, contrib v0.165.1)")
    print(f"- bodies: tests/fixtures/corpus proto-none ({ctx['proto']['bodies']} bodies, {ctx['proto']['events']} "
          f"events, {ctx['proto']['bytes']} B) and json-none ({ctx['json']['bodies']} bodies, "
          f"{ctx['json']['events']} events, {ctx['json']['bytes']} B), round-robin")
    print(f"- load: benches/collector/loadclient, {a.conns} keep-alive HTTP/1.1 connections, "
          f"{a.warmup:g}s warm-up + {a.secs:g}s window; broker {ctx['brokers']} (Apache Kafka, scripts/kafka)")
    print(f"- load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")
    if edge_rows:
        edge_table(edge_rows)
    if consume_rows:
        consume_table(consume_rows)
    (run / "results.json").write_text(json.dumps({"edge": edge_rows, "consume": consume_rows}, indent=1))
    print(f"\nraw results: {run / 'results.json'}")


if __name__ == "__main__":
    main()
