#!/usr/bin/env python3
"""The Latency panels' queries against spans FINAL and against spans_hourly (BENCHMARKS.md).

    python3 benches/latency_panels.py [--url http://127.0.0.1:8123] [--load 10000000]

--load first fills spansbench.spans with N synthetic spans over 30 days (the database must be
migrated: `cowork-ingest --config bench.toml migrate` with database "spansbench"); then run
`cowork-ingest --config bench.toml rollups rebuild` and this script again without --load.
"""
import argparse
import time, urllib.request, statistics

ap = argparse.ArgumentParser()
ap.add_argument("--url", default="http://127.0.0.1:8123/")
ap.add_argument("--load", type=int, default=0)
args = ap.parse_args()
N = args.load
LOAD = f"""INSERT INTO spansbench.spans (trace_id, span_id, parent_span_id, tenant, timestamp, event_day,
start_time_unix_nano, end_time_unix_nano, time_source, duration_ms, name, span_type, kind, status, service_name,
session_id, user_email, model, ttft_ms, stop_reason, decision, source, normalizer_version)
SELECT lower(hex(cityHash64(intDiv(number, 8)))), lower(hex(cityHash64(number))), '', 'acme',
toDateTime(1793836800 + intDiv(number * 2592000, {N})) AS ts, toDate(ts), toUInt64(ts) * 1000000000,
toUInt64(ts) * 1000000000 + (number % 5000 + 100) * 1000000, 'record', toFloat64(number % 5000 + 100),
['claude_code.llm_request','claude_code.tool','claude_code.tool.blocked_on_user','claude_code.tool.execution'][number % 4 + 1],
['llm_request','tool','tool.blocked_on_user','tool.execution'][number % 4 + 1], 'internal', 'unset', 'claude-code',
toString(intDiv(number, 200)), concat('user', toString(number % 1000), '@acme.example'),
['claude-opus-4-6','claude-sonnet-4-6','claude-haiku-4-5-20251001'][number % 3 + 1],
if(number % 4 = 0, toFloat64((number * 7919) % 4000 + 200), NULL),
if(number % 4 = 0, ['end_turn','tool_use','max_tokens'][number % 3 + 1], ''),
if(number % 4 = 2, ['accept','reject'][number % 2 + 1], ''), if(number % 4 = 2, 'user_temporary', ''), 1
FROM numbers({N})"""
B="[50., 100., 200., 300., 500., 750., 1000., 1500., 2000., 3000., 5000., 7500., 10000., 15000., 20000., 30000., 60000., 120000., 300000., 600000.]"
W="tenant = 'acme' AND day >= toDate('2026-11-05') AND day <= toDate('2026-12-05')"
V="(tenant, day, version) IN (SELECT tenant, day, max(version) FROM spansbench.spans_hourly WHERE tenant = 'acme' AND day >= toDate('2026-11-05') AND day <= toDate('2026-12-05') GROUP BY tenant, day)"
Q={
"ttft, spans FINAL (exact)": "SELECT model, count() AS requests, quantileExact(0.5)(assumeNotNull(ttft_ms)) AS p50, quantileExact(0.95)(assumeNotNull(ttft_ms)) AS p95 FROM spansbench.spans FINAL WHERE tenant = 'acme' AND event_day >= toDate('2026-11-05') AND event_day <= toDate('2026-12-05') AND span_type = 'llm_request' AND ttft_ms IS NOT NULL GROUP BY model ORDER BY model",
"ttft, spans_hourly (buckets)": f"SELECT model, requests, arrayFirst((b, c) -> c >= 0.5 * requests, {B}, le) AS p50, arrayFirst((b, c) -> c >= 0.95 * requests, {B}, le) AS p95 FROM (SELECT model, sum(ttft_count) AS requests, sumForEach(ttft_ms_le) AS le FROM spansbench.spans_hourly WHERE {W} AND {V} AND span_type = 'llm_request' GROUP BY model) ORDER BY model",
"blocked, spans FINAL": "SELECT count(), sum(duration_ms), quantileExact(0.95)(duration_ms) FROM spansbench.spans FINAL WHERE tenant = 'acme' AND event_day >= toDate('2026-11-05') AND event_day <= toDate('2026-12-05') AND span_type = 'tool.blocked_on_user'",
"blocked, spans_hourly": f"SELECT prompts, ms, arrayFirst((b, c) -> c >= 0.95 * prompts, {B}, le) FROM (SELECT sum(spans) AS prompts, sum(duration_ms_sum) AS ms, sumForEach(duration_ms_le) AS le FROM spansbench.spans_hourly WHERE {W} AND {V} AND span_type = 'tool.blocked_on_user')",
}
def run(sql):
    t=time.time(); r=urllib.request.urlopen(args.url, data=sql.encode()).read().decode(); return time.time()-t, r
if N:
    print(f"loaded {N} spans in {run(LOAD)[0]:.1f} s")
    raise SystemExit(0)
times={k:[] for k in Q}
for _ in range(5):
    for k,sql in Q.items():
        dt,r=run(sql); times[k].append(dt); last=r
for k in Q:
    print(f"| {k} | {statistics.median(times[k]):.3f} s |"); print("   ", run(Q[k])[1].strip().replace("\n"," / "))
