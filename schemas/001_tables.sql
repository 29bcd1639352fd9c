-- cowork-ingest schema, migration 001: the raw events table and one typed table per event kind.
--
-- Runs unchanged on ClickHouse 18.16 and current releases (23.8+). `{database}` is replaced by
-- `clickhouse.database` when `cowork-ingest migrate` renders it.
--
-- Exactness: every table is a ReplacingMergeTree keyed on `event_id` (a deterministic hash of the
-- event as sent) with `normalizer_version` as the replacing version, partitioned by event date.
-- Replays and client resends therefore collapse to one row; read with FINAL, or through the
-- views in migration 002.

CREATE TABLE IF NOT EXISTS {database}.events
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    timestamp_ns UInt64,
    time_source String,
    event_name String,
    service_name String,
    terminal_type String,
    session_id String,
    prompt_id String,
    event_sequence Nullable(Int64),
    user_email String,
    user_id String,
    user_account_uuid String,
    organization_id String,
    app_version String,
    workspace_host_paths Array(String),
    body String,
    attribute_keys Array(String),
    attribute_values Array(String),
    resource_keys Array(String),
    resource_values Array(String),
    received_at DateTime('UTC'),
    kafka_partition Int32,
    kafka_offset Int64,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_name, event_id);

CREATE TABLE IF NOT EXISTS {database}.api_requests
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    session_id String,
    prompt_id String,
    user_email String,
    service_name String,
    terminal_type String,
    model String,
    cost_usd Decimal(18, 9),
    cost_usd_micros Nullable(Int64),
    input_tokens UInt64,
    output_tokens UInt64,
    cache_read_tokens UInt64,
    cache_creation_tokens UInt64,
    duration_ms UInt64,
    speed String,
    query_source String,
    request_id String,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_id);

CREATE TABLE IF NOT EXISTS {database}.api_errors
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    session_id String,
    prompt_id String,
    user_email String,
    service_name String,
    terminal_type String,
    model String,
    error String,
    status_code Nullable(UInt16),
    attempt UInt32,
    duration_ms UInt64,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_id);

CREATE TABLE IF NOT EXISTS {database}.user_prompts
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    session_id String,
    prompt_id String,
    user_email String,
    service_name String,
    terminal_type String,
    prompt_length UInt64,
    prompt Nullable(String),
    command_name String,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_id);

CREATE TABLE IF NOT EXISTS {database}.tool_decisions
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    session_id String,
    prompt_id String,
    user_email String,
    service_name String,
    terminal_type String,
    tool_name String,
    tool_use_id String,
    decision String,
    source String,
    tool_source String,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_id);

CREATE TABLE IF NOT EXISTS {database}.tool_results
(
    event_id FixedString(16),
    tenant String,
    timestamp DateTime('UTC'),
    session_id String,
    prompt_id String,
    user_email String,
    service_name String,
    terminal_type String,
    tool_name String,
    tool_use_id String,
    success UInt8,
    duration_ms UInt64,
    error_type String,
    error String,
    decision_type String,
    decision_source String,
    tool_input_size_bytes UInt64,
    tool_result_size_bytes UInt64,
    normalizer_version UInt32
)
ENGINE = ReplacingMergeTree(normalizer_version)
PARTITION BY toDate(timestamp)
ORDER BY (tenant, event_id);
