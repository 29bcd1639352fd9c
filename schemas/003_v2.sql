-- cowork-ingest schema, migration 003 (schema v2): sort and partition keys made of the event as
-- sent, and rollup tables kept current by the consumer.
--
-- A template: `cowork-ingest migrate` renders it for the server at hand, and
-- `cowork-ingest migrate --print-sql [--server-version X.Y]` shows the result.
--   {database}    the `clickhouse.database`
--   {lc}          LowCardinality(String) on servers that have it, else String
--   {codec_time}  CODEC(DoubleDelta, ZSTD(1)) on servers with codecs, else nothing (also
--   {codec_int}   CODEC(T64, ZSTD(1)), {codec_text} CODEC(ZSTD(3)))
--   {index ...}   a skip index, on servers that have them; dropped elsewhere
--   {replacing V} ReplacingMergeTree(V), or its Replicated form in cluster mode
--   SHARD BY e    the Distributed table's sharding key in cluster mode; dropped elsewhere
--   {on_cluster}  ON CLUSTER name in cluster mode (for statements other than CREATE TABLE)
--   {local:NAME}  NAME_local in cluster mode, else NAME
-- In cluster mode (`clickhouse.cluster`) each table becomes NAME_local (replicated, ON CLUSTER)
-- plus NAME, a Distributed table over it: every query and insert names NAME, as on one server.
--
-- Exactness: every key column is a deterministic function of the event as sent, so every copy
-- of an event (client resend, Kafka replay, redrive) has the same partition, the same sort key
-- and the same shard, and ReplacingMergeTree collapses them. `event_day` is the day of the
-- event's own time; 1970-01-01 when it sent none (time_source `received` or `clamped`).
--
-- Rollups are ReplacingMergeTree tables versioned by the refresh that wrote them.
-- The consumer re-aggregates each (tenant, day) it touched from the deduplicated base tables
-- (`rollup_dirty` says which; `rollup_state` says when each was last refreshed), so a replay
-- rewrites the same figures instead of adding to them. Read them with FINAL.

CREATE TABLE IF NOT EXISTS {database}.events
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT if(time_source IN ('received', 'clamped'), toDate('1970-01-01'), toDate(timestamp)),
    timestamp_ns UInt64{codec_time},
    time_source {lc},
    event_name {lc},
    service_name {lc},
    terminal_type {lc},
    session_id String,
    prompt_id String,
    event_sequence Nullable(Int64),
    user_email String,
    user_id String,
    user_account_uuid String,
    organization_id {lc},
    app_version {lc},
    workspace_host_paths Array(String),
    body String{codec_text},
    attribute_keys Array(String){codec_text},
    attribute_values Array(String){codec_text},
    resource_keys Array(String){codec_text},
    resource_values Array(String){codec_text},
    received_at DateTime('UTC'){codec_time},
    kafka_partition Int32,
    kafka_offset Int64{codec_int},
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4},
    {index idx_user_email user_email TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

CREATE TABLE IF NOT EXISTS {database}.api_requests
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT toDate(timestamp),
    session_id String,
    prompt_id String,
    user_email String,
    service_name {lc},
    terminal_type {lc},
    model {lc},
    cost_usd Decimal(18, 9),
    cost_usd_micros Nullable(Int64),
    input_tokens UInt64{codec_int},
    output_tokens UInt64{codec_int},
    cache_read_tokens UInt64{codec_int},
    cache_creation_tokens UInt64{codec_int},
    duration_ms UInt64{codec_int},
    speed {lc},
    query_source {lc},
    request_id String,
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

CREATE TABLE IF NOT EXISTS {database}.api_errors
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT toDate(timestamp),
    session_id String,
    prompt_id String,
    user_email String,
    service_name {lc},
    terminal_type {lc},
    model {lc},
    error String{codec_text},
    status_code Nullable(UInt16),
    attempt UInt32,
    duration_ms UInt64{codec_int},
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

CREATE TABLE IF NOT EXISTS {database}.user_prompts
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT toDate(timestamp),
    session_id String,
    prompt_id String,
    user_email String,
    service_name {lc},
    terminal_type {lc},
    prompt_length UInt64{codec_int},
    prompt Nullable(String){codec_text},
    command_name {lc},
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

CREATE TABLE IF NOT EXISTS {database}.tool_decisions
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT toDate(timestamp),
    session_id String,
    prompt_id String,
    user_email String,
    service_name {lc},
    terminal_type {lc},
    tool_name {lc},
    tool_use_id String,
    decision {lc},
    source {lc},
    tool_source {lc},
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

CREATE TABLE IF NOT EXISTS {database}.tool_results
(
    event_id FixedString(16),
    tenant {lc},
    timestamp DateTime('UTC'){codec_time},
    event_day Date DEFAULT toDate(timestamp),
    session_id String,
    prompt_id String,
    user_email String,
    service_name {lc},
    terminal_type {lc},
    tool_name {lc},
    tool_use_id String,
    success UInt8,
    duration_ms UInt64{codec_int},
    error_type {lc},
    error String{codec_text},
    decision_type {lc},
    decision_source {lc},
    tool_input_size_bytes UInt64{codec_int},
    tool_result_size_bytes UInt64{codec_int},
    normalizer_version UInt32,
    {index idx_prompt_id prompt_id TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- Rollups. `version` is the refresh's start time (server clock in seconds x 10^6, plus the
-- refreshing host's microseconds): the newest refresh of a (tenant, day) wins. Read with FINAL,
-- or keep each day's newest version: (tenant, day, version) IN (SELECT tenant, day,
-- max(version) ... GROUP BY tenant, day). Rows of one (tenant, day) share a shard.

CREATE TABLE IF NOT EXISTS {database}.cost_daily
(
    tenant {lc},
    day Date,
    user_email String,
    model {lc},
    cost_usd Decimal(18, 9),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_creation_tokens UInt64,
    requests UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, user_email, model)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.api_requests_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_email String,
    service_name {lc},
    session_id String,
    model {lc},
    requests UInt64,
    cost_usd Decimal(18, 9),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_creation_tokens UInt64,
    last_request DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_email, service_name, session_id, model)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.api_errors_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_email String,
    service_name {lc},
    model {lc},
    status {lc},
    attempt UInt32,
    errors UInt64,
    duration_ms_sum UInt64,
    last_seen DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_email, service_name, model, status, attempt)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.tool_decisions_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_email String,
    tool_name {lc},
    source {lc},
    decision {lc},
    decisions UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_email, tool_name, source, decision)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.tool_results_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_email String,
    tool_name {lc},
    success UInt8,
    error_type {lc},
    results UInt64,
    duration_ms_sum UInt64,
    duration_ms_max UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_email, tool_name, success, error_type)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.sessions_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    session_id String,
    user_email String,
    service_name {lc},
    events UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, session_id)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.workspace_paths_daily
(
    tenant {lc},
    day Date,
    path String,
    user_email String,
    session_id String,
    events UInt64,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, path, user_email, session_id)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.sessions_daily
(
    tenant {lc},
    day Date,
    session_id String,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    user_email String,
    service_name {lc},
    terminal_type {lc},
    workspace_host_paths Array(String),
    events UInt64,
    prompts UInt64,
    api_requests UInt64,
    api_errors UInt64,
    cost_usd Decimal(18, 9),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_creation_tokens UInt64,
    tool_decisions UInt64,
    tool_rejects UInt64,
    tool_failures UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, session_id)
SHARD BY cityHash64(tenant, day);

-- One row per session over all its days, re-aggregated from sessions_daily for each session
-- seen on a refreshed day. Rows of one session share a shard.
CREATE TABLE IF NOT EXISTS {database}.sessions
(
    tenant {lc},
    session_id String,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    user_email String,
    service_name {lc},
    terminal_type {lc},
    workspace_host_paths Array(String),
    days UInt32,
    events UInt64,
    prompts UInt64,
    api_requests UInt64,
    api_errors UInt64,
    cost_usd Decimal(18, 9),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_creation_tokens UInt64,
    tool_decisions UInt64,
    tool_rejects UInt64,
    tool_failures UInt64,
    version UInt64,
    {index idx_last_seen last_seen TYPE minmax GRANULARITY 1}
)
ENGINE = {replacing version}
PARTITION BY tuple()
ORDER BY (tenant, session_id)
SHARD BY cityHash64(tenant, session_id);

-- Bookkeeping: which (tenant, day) received rows (written with the rows, before their Kafka
-- offsets are committed), and when each was last refreshed.
CREATE TABLE IF NOT EXISTS {database}.rollup_dirty
(
    tenant {lc},
    day Date,
    marked_at UInt64 DEFAULT toUInt64(now())
)
ENGINE = {replacing marked_at}
PARTITION BY tuple()
ORDER BY (tenant, day)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.rollup_state
(
    tenant {lc},
    day Date,
    refreshed_at UInt64
)
ENGINE = {replacing refreshed_at}
PARTITION BY tuple()
ORDER BY (tenant, day)
SHARD BY cityHash64(tenant, day);

-- Where each prompt ran: (tenant, prompt_id) to its day and session, for the prompt replay (a
-- point lookup, where a scan of user_prompts for one prompt_id reads a month). Kept by a
-- materialized view on user_prompts' inserts: an index, not a count, so a copy adds nothing.
CREATE TABLE IF NOT EXISTS {database}.prompt_sessions
(
    tenant {lc},
    prompt_id String,
    event_day Date,
    session_id String
)
ENGINE = {replacing}
PARTITION BY toYYYYMM(event_day)
ORDER BY (tenant, prompt_id, event_day, session_id)
SHARD BY cityHash64(tenant, prompt_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.prompt_sessions_mv{on_cluster} TO {database}.prompt_sessions AS
SELECT tenant, prompt_id, event_day, session_id
FROM {database}.{local:user_prompts}
WHERE prompt_id != '';
