-- cowork-ingest schema, migration 004: every signal lands. OTLP metric data points and spans,
-- the daily metrics rollup, and the two views data engineers read: productivity_daily and
-- cost_reconciliation.
--
-- A template in 003_v2.sql's language (see its header for the placeholders), following
-- schema v2's rules: day partitions of the point's or span's own time, sort keys made of the
-- data as sent, rollups refreshed per (tenant, day) by the consumer.

-- One row per metric data point. `point_id` and `series_id` are deterministic (see
-- src/transform/signals.rs): every copy of a point collapses. `value` is the point's number
-- (asDouble, or asInt as a double) or a histogram's or summary's sum.
CREATE TABLE IF NOT EXISTS {database}.metric_points
(
    point_id FixedString(16),
    series_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT if(time_source IN ('received', 'clamped'), toDate('1970-01-01'), toDate(timestamp)),
    time_unix_nano UInt64{codec_time},
    start_time_unix_nano UInt64{codec_time},
    time_source {lc},
    metric {lc},
    unit {lc},
    kind {lc},
    temporality {lc},
    monotonic UInt8,
    value Float64,
    value_type {lc},
    count UInt64{codec_int},
    sum Nullable(Float64),
    min Nullable(Float64),
    max Nullable(Float64),
    bucket_counts Array(UInt64),
    explicit_bounds Array(Float64),
    flags UInt32,
    service_name {lc},
    service_version {lc},
    terminal_type {lc},
    session_id String,
    user_email String,
    user_id String,
    user_account_uuid String,
    user_account_id String,
    organization_id {lc},
    app_version {lc},
    app_entrypoint {lc},
    model {lc},
    model_variant {lc},
    type {lc},
    start_type {lc},
    tool_name {lc},
    decision {lc},
    source {lc},
    language {lc},
    query_source {lc},
    speed {lc},
    effort {lc},
    agent_name {lc},
    skill_name {lc},
    plugin_name {lc},
    marketplace_name {lc},
    mcp_server_name {lc},
    mcp_tool_name {lc},
    attribute_keys Array(String){codec_text},
    attribute_values Array(String){codec_text},
    resource_keys Array(String){codec_text},
    resource_values Array(String){codec_text},
    scope_name {lc},
    received_at DateTime('UTC'){codec_time},
    kafka_partition Int32,
    kafka_offset Int64{codec_int},
    normalizer_version UInt32,
    {index idx_series_id series_id TYPE bloom_filter(0.01) GRANULARITY 4},
    {index idx_user_email user_email TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, metric, session_id, point_id)
SHARD BY cityHash64(series_id);

-- One row per span, deduplicated on (trace_id, span_id): ids are lowercase hex.
CREATE TABLE IF NOT EXISTS {database}.spans
(
    trace_id String,
    span_id String,
    parent_span_id String,
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT if(time_source IN ('received', 'clamped'), toDate('1970-01-01'), toDate(timestamp)),
    start_time_unix_nano UInt64{codec_time},
    end_time_unix_nano UInt64{codec_time},
    time_source {lc},
    duration_ms Float64,
    name {lc},
    span_type {lc},
    kind {lc},
    status {lc},
    status_message String{codec_text},
    service_name {lc},
    service_version {lc},
    terminal_type {lc},
    session_id String,
    prompt_id String,
    user_email String,
    user_id String,
    user_account_uuid String,
    organization_id {lc},
    app_version {lc},
    model {lc},
    model_variant {lc},
    query_source {lc},
    speed {lc},
    ttft_ms Nullable(Float64),
    stop_reason {lc},
    input_tokens Nullable(UInt64),
    output_tokens Nullable(UInt64),
    cache_read_tokens Nullable(UInt64),
    cache_creation_tokens Nullable(UInt64),
    result_tokens Nullable(UInt64),
    request_id String,
    attempt Nullable(UInt32),
    success Nullable(UInt8),
    http_status_code Nullable(UInt16),
    error String{codec_text},
    tool_name {lc},
    tool_use_id String,
    decision {lc},
    source {lc},
    interaction_sequence Nullable(Int64),
    user_prompt_length Nullable(UInt64),
    user_prompt Nullable(String){codec_text},
    agent_id String,
    parent_agent_id String,
    hook_event {lc},
    hook_name String,
    span_events UInt32,
    span_links UInt32,
    attribute_keys Array(String){codec_text},
    attribute_values Array(String){codec_text},
    resource_keys Array(String){codec_text},
    resource_values Array(String){codec_text},
    scope_name {lc},
    received_at DateTime('UTC'){codec_time},
    kafka_partition Int32,
    kafka_offset Int64{codec_int},
    normalizer_version UInt32,
    {index idx_session_id session_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, trace_id, span_id)
SHARD BY cityHash64(trace_id, span_id);

-- Each day's increase of every Sum metric, per user and documented dimension. DELTA points are
-- summed; a CUMULATIVE series counts its increase within the day (its highest value that day
-- minus its highest value before it, 0 for a series that started that day), so both
-- temporalities give the same totals, and a restarted series (new start time) starts over.
-- Refreshed per (tenant, day) like every rollup: read each day's newest `version`.
CREATE TABLE IF NOT EXISTS {database}.metrics_daily
(
    tenant {lc},
    day Date,
    user_email String,
    service_name {lc},
    metric {lc},
    type {lc},
    model {lc},
    start_type {lc},
    tool_name {lc},
    decision {lc},
    source {lc},
    language {lc},
    query_source {lc},
    value Float64,
    points UInt64,
    sessions UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, user_email, service_name, metric, type, model, start_type, tool_name, decision, source, language, query_source)
SHARD BY cityHash64(tenant, day);

-- Spans per hour and dimension, for the latency panels: counts, sums, and cumulative latency
-- histograms over fixed bounds (`*_le[i]`: spans at most LATENCY_BOUNDS_MS[i] long; the bounds
-- are in src/clickhouse/rollups.rs), from which a reader takes percentiles to bucket precision
-- on any range. Exact percentiles: the `spans` table.
CREATE TABLE IF NOT EXISTS {database}.spans_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_email String,
    service_name {lc},
    span_type {lc},
    model {lc},
    stop_reason {lc},
    decision {lc},
    source {lc},
    status {lc},
    spans UInt64,
    duration_ms_sum Float64,
    ttft_ms_sum Float64,
    ttft_count UInt64,
    duration_ms_le Array(UInt64),
    ttft_ms_le Array(UInt64),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_email, service_name, span_type, model, stop_reason, decision, source, status)
SHARD BY cityHash64(tenant, day);

-- One row per (tenant, day, user): Claude Code's productivity metrics, the names Anthropic's
-- monitoring guide uses. Cost and tokens come from claude_code.cost.usage and token.usage.
CREATE VIEW IF NOT EXISTS {database}.productivity_daily{on_cluster} AS
SELECT
    tenant,
    day,
    user_email,
    toUInt64(round(sumIf(value, metric = 'claude_code.lines_of_code.count' AND type = 'added'))) AS lines_added,
    toUInt64(round(sumIf(value, metric = 'claude_code.lines_of_code.count' AND type = 'removed'))) AS lines_removed,
    toUInt64(round(sumIf(value, metric = 'claude_code.commit.count'))) AS commits,
    toUInt64(round(sumIf(value, metric = 'claude_code.pull_request.count'))) AS pull_requests,
    round(sumIf(value, metric = 'claude_code.active_time.total' AND type = 'user'), 3) AS active_time_user_s,
    round(sumIf(value, metric = 'claude_code.active_time.total' AND type = 'cli'), 3) AS active_time_cli_s,
    toUInt64(round(sumIf(value, metric = 'claude_code.session.count'))) AS sessions,
    toUInt64(round(sumIf(value, metric = 'claude_code.code_edit_tool.decision' AND decision = 'accept'))) AS edits_accepted,
    toUInt64(round(sumIf(value, metric = 'claude_code.code_edit_tool.decision' AND decision = 'reject'))) AS edits_rejected,
    round(sumIf(value, metric = 'claude_code.cost.usage'), 9) AS cost_usd,
    toUInt64(round(sumIf(value, metric = 'claude_code.token.usage' AND type = 'input'))) AS input_tokens,
    toUInt64(round(sumIf(value, metric = 'claude_code.token.usage' AND type = 'output'))) AS output_tokens,
    toUInt64(round(sumIf(value, metric = 'claude_code.token.usage' AND type = 'cacheRead'))) AS cache_read_tokens,
    toUInt64(round(sumIf(value, metric = 'claude_code.token.usage' AND type = 'cacheCreation'))) AS cache_creation_tokens
FROM {database}.metrics_daily
WHERE (tenant, day, version) GLOBAL IN (SELECT tenant, day, max(version) FROM {database}.metrics_daily GROUP BY tenant, day)
GROUP BY tenant, day, user_email;

-- Per (tenant, day, user): cost and tokens as the metrics report them beside the same figures
-- summed from api_request events (cost_daily). The README explains why the two can differ.
CREATE VIEW IF NOT EXISTS {database}.cost_reconciliation{on_cluster} AS
SELECT
    tenant,
    day,
    user_email,
    round(sum(metric_cost), 9) AS metric_cost_usd,
    round(sum(event_cost), 9) AS event_cost_usd,
    round(sum(metric_cost) - sum(event_cost), 9) AS cost_difference_usd,
    toUInt64(round(sum(metric_input))) AS metric_input_tokens,
    sum(event_input) AS event_input_tokens,
    toUInt64(round(sum(metric_output))) AS metric_output_tokens,
    sum(event_output) AS event_output_tokens,
    toUInt64(round(sum(metric_cache_read))) AS metric_cache_read_tokens,
    sum(event_cache_read) AS event_cache_read_tokens,
    toUInt64(round(sum(metric_cache_creation))) AS metric_cache_creation_tokens,
    sum(event_cache_creation) AS event_cache_creation_tokens,
    toUInt64(sum(event_requests)) AS event_requests
FROM
(
    SELECT tenant, day, user_email,
        if(metric = 'claude_code.cost.usage', value, 0) AS metric_cost,
        if(metric = 'claude_code.token.usage' AND type = 'input', value, 0) AS metric_input,
        if(metric = 'claude_code.token.usage' AND type = 'output', value, 0) AS metric_output,
        if(metric = 'claude_code.token.usage' AND type = 'cacheRead', value, 0) AS metric_cache_read,
        if(metric = 'claude_code.token.usage' AND type = 'cacheCreation', value, 0) AS metric_cache_creation,
        toFloat64(0) AS event_cost, toUInt64(0) AS event_input, toUInt64(0) AS event_output,
        toUInt64(0) AS event_cache_read, toUInt64(0) AS event_cache_creation, toUInt64(0) AS event_requests
    FROM {database}.metrics_daily
    WHERE metric IN ('claude_code.cost.usage', 'claude_code.token.usage')
        AND (tenant, day, version) GLOBAL IN (SELECT tenant, day, max(version) FROM {database}.metrics_daily GROUP BY tenant, day)
    UNION ALL
    SELECT tenant, day, user_email,
        toFloat64(0) AS metric_cost, toFloat64(0) AS metric_input, toFloat64(0) AS metric_output,
        toFloat64(0) AS metric_cache_read, toFloat64(0) AS metric_cache_creation,
        toFloat64(cost_usd) AS event_cost, input_tokens AS event_input, output_tokens AS event_output,
        cache_read_tokens AS event_cache_read, cache_creation_tokens AS event_cache_creation,
        requests AS event_requests
    FROM {database}.cost_daily
    WHERE (tenant, day, version) GLOBAL IN (SELECT tenant, day, max(version) FROM {database}.cost_daily GROUP BY tenant, day)
)
GROUP BY tenant, day, user_email;
