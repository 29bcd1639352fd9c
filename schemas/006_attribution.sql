-- cowork-ingest schema, migration 006: who, which team, what happened.
--
-- A template in 003_v2.sql's language, plus {tables:NAME}: NAME on one server; NAME_local and
-- then NAME (its Distributed table) in cluster mode, each ON CLUSTER. `migrate` runs an ALTER's
-- ADD COLUMN clauses only for columns the table does not have yet (ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS), so every statement can be run again after an interruption.
--
-- 1. Every typed table, events, metric_points and spans gain the person (user_identity and the
--    attribute it came from), user_account_id, app_version and the team columns (team,
--    department, cost_center); see the README's "Attribution" for the rules.
-- 2. api_requests and api_errors gain the spend attribution; tool_decisions and tool_results
--    what tool_parameters says; events gains its trace context; tool_results.success is NULL
--    when the client did not say.
-- 3. A typed table for every documented event kind (generated from src/transform/kinds.rs; a
--    unit test keeps the two equal).
-- 4. Every rollup is rebuilt keyed by user_identity (dropped, created anew, and every day
--    marked for refresh: the consumer re-aggregates each (tenant, day) from the base tables).

-- 1 and 2: new columns on the existing tables. Rows stored before this migration read the person
-- from what they have (user_email, else user_id); new rows always carry every column.

ALTER TABLE {database}.{tables:events}
    ADD COLUMN user_identity String DEFAULT if(user_email != '', user_email, user_id) AFTER app_version,
    ADD COLUMN user_identity_source {lc} DEFAULT multiIf(user_email != '', 'user.email', user_id != '', 'user.id', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN team {lc} AFTER user_account_id,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department,
    ADD COLUMN trace_id String AFTER cost_center,
    ADD COLUMN span_id String AFTER trace_id;

ALTER TABLE {database}.{tables:api_requests}
    ADD COLUMN user_identity String DEFAULT user_email AFTER terminal_type,
    ADD COLUMN user_identity_source {lc} DEFAULT if(user_email != '', 'user.email', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN app_version {lc} AFTER user_account_id,
    ADD COLUMN team {lc} AFTER app_version,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department,
    ADD COLUMN agent_name {lc} AFTER request_id,
    ADD COLUMN skill_name {lc} AFTER agent_name,
    ADD COLUMN plugin_name {lc} AFTER skill_name,
    ADD COLUMN marketplace_name {lc} AFTER plugin_name,
    ADD COLUMN mcp_server_name {lc} AFTER marketplace_name,
    ADD COLUMN mcp_tool_name {lc} AFTER mcp_server_name,
    ADD COLUMN effort {lc} AFTER mcp_tool_name,
    ADD COLUMN workflow_run_id String AFTER effort,
    ADD COLUMN workflow_name String AFTER workflow_run_id,
    ADD COLUMN client_request_id String AFTER workflow_name;

ALTER TABLE {database}.{tables:api_errors}
    ADD COLUMN user_identity String DEFAULT user_email AFTER terminal_type,
    ADD COLUMN user_identity_source {lc} DEFAULT if(user_email != '', 'user.email', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN app_version {lc} AFTER user_account_id,
    ADD COLUMN team {lc} AFTER app_version,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department,
    ADD COLUMN request_id String AFTER duration_ms,
    ADD COLUMN query_source {lc} AFTER request_id,
    ADD COLUMN speed {lc} AFTER query_source,
    ADD COLUMN agent_name {lc} AFTER speed,
    ADD COLUMN skill_name {lc} AFTER agent_name,
    ADD COLUMN plugin_name {lc} AFTER skill_name,
    ADD COLUMN marketplace_name {lc} AFTER plugin_name,
    ADD COLUMN mcp_server_name {lc} AFTER marketplace_name,
    ADD COLUMN mcp_tool_name {lc} AFTER mcp_server_name,
    ADD COLUMN effort {lc} AFTER mcp_tool_name,
    ADD COLUMN workflow_run_id String AFTER effort,
    ADD COLUMN workflow_name String AFTER workflow_run_id,
    ADD COLUMN client_request_id String AFTER workflow_name;

ALTER TABLE {database}.{tables:user_prompts}
    ADD COLUMN user_identity String DEFAULT user_email AFTER terminal_type,
    ADD COLUMN user_identity_source {lc} DEFAULT if(user_email != '', 'user.email', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN app_version {lc} AFTER user_account_id,
    ADD COLUMN team {lc} AFTER app_version,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department;

ALTER TABLE {database}.{tables:tool_decisions}
    ADD COLUMN user_identity String DEFAULT user_email AFTER terminal_type,
    ADD COLUMN user_identity_source {lc} DEFAULT if(user_email != '', 'user.email', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN app_version {lc} AFTER user_account_id,
    ADD COLUMN team {lc} AFTER app_version,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department,
    ADD COLUMN mcp_server_name {lc} AFTER tool_source,
    ADD COLUMN mcp_tool_name {lc} AFTER mcp_server_name,
    ADD COLUMN skill_name {lc} AFTER mcp_tool_name,
    ADD COLUMN subagent_type {lc} AFTER skill_name,
    ADD COLUMN git_commit_id String AFTER subagent_type,
    ADD COLUMN bash_command String{codec_text} AFTER git_commit_id;

ALTER TABLE {database}.{tables:tool_results}
    ADD COLUMN user_identity String DEFAULT user_email AFTER terminal_type,
    ADD COLUMN user_identity_source {lc} DEFAULT if(user_email != '', 'user.email', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN app_version {lc} AFTER user_account_id,
    ADD COLUMN team {lc} AFTER app_version,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department,
    ADD COLUMN mcp_server_name {lc} AFTER tool_result_size_bytes,
    ADD COLUMN mcp_tool_name {lc} AFTER mcp_server_name,
    ADD COLUMN skill_name {lc} AFTER mcp_tool_name,
    ADD COLUMN subagent_type {lc} AFTER skill_name,
    ADD COLUMN git_commit_id String AFTER subagent_type,
    ADD COLUMN bash_command String{codec_text} AFTER git_commit_id;

ALTER TABLE {database}.{tables:tool_results}
    MODIFY COLUMN success Nullable(UInt8);

ALTER TABLE {database}.{tables:metric_points}
    ADD COLUMN user_identity String DEFAULT if(user_email != '', user_email, user_id) AFTER app_version,
    ADD COLUMN user_identity_source {lc} DEFAULT multiIf(user_email != '', 'user.email', user_id != '', 'user.id', '') AFTER user_identity,
    ADD COLUMN team {lc} AFTER user_identity_source,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department;

ALTER TABLE {database}.{tables:spans}
    ADD COLUMN user_identity String DEFAULT if(user_email != '', user_email, user_id) AFTER app_version,
    ADD COLUMN user_identity_source {lc} DEFAULT multiIf(user_email != '', 'user.email', user_id != '', 'user.id', '') AFTER user_identity,
    ADD COLUMN user_account_id String AFTER user_identity_source,
    ADD COLUMN team {lc} AFTER user_account_id,
    ADD COLUMN department {lc} AFTER team,
    ADD COLUMN cost_center {lc} AFTER department;

-- 3: one table per documented event kind.

-- assistant_response: one model reply (Cowork and Claude Code v2.1.193+).
CREATE TABLE IF NOT EXISTS {database}.assistant_responses
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    model {lc},
    request_id String,
    message_uuid String,
    query_source {lc},
    response_length Nullable(UInt64),
    response Nullable(String){codec_text},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- api_refusal: a request the API refused on safety grounds (no api_error fires for it).
CREATE TABLE IF NOT EXISTS {database}.api_refusals
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    model {lc},
    request_id String,
    query_source {lc},
    speed {lc},
    attempt Nullable(UInt32),
    effort {lc},
    server_fallback_hop Nullable(UInt8),
    has_category Nullable(UInt8),
    has_explanation Nullable(UInt8),
    category {lc},
    agent_name {lc},
    skill_name {lc},
    plugin_name {lc},
    marketplace_name {lc},
    mcp_server_name {lc},
    mcp_tool_name {lc},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- permission_mode_changed: a switch between default, plan, acceptEdits, auto and bypassPermissions.
CREATE TABLE IF NOT EXISTS {database}.permission_mode_changes
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    from_mode {lc},
    to_mode {lc},
    trigger {lc},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- auth: a login or logout, and whether it worked.
CREATE TABLE IF NOT EXISTS {database}.auth_events
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    action {lc},
    success Nullable(UInt8),
    auth_method {lc},
    error_category {lc},
    status_code Nullable(UInt16),
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- mcp_server_connection: an MCP server connected, failed or disconnected.
CREATE TABLE IF NOT EXISTS {database}.mcp_server_connections
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    status {lc},
    transport_type {lc},
    server_scope {lc},
    duration_ms Nullable(UInt64),
    error_code {lc},
    is_plugin Nullable(UInt8),
    plugin_id_hash String,
    plugin_name {lc},
    server_name String,
    error String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- plugin_installed: a plugin installed, from which marketplace.
CREATE TABLE IF NOT EXISTS {database}.plugin_installs
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    plugin_name {lc},
    plugin_version {lc},
    marketplace_name {lc},
    marketplace_is_official Nullable(UInt8),
    install_trigger {lc},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- plugin_loaded: a plugin loaded at session start (the fleet's plugin inventory).
CREATE TABLE IF NOT EXISTS {database}.plugin_loads
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    plugin_name {lc},
    plugin_version {lc},
    marketplace_name {lc},
    plugin_scope {lc},
    enabled_via {lc},
    plugin_id_hash String,
    has_hooks Nullable(UInt8),
    has_mcp Nullable(UInt8),
    host_owned_mcp Nullable(UInt8),
    skill_path_count Nullable(UInt32),
    command_path_count Nullable(UInt32),
    agent_path_count Nullable(UInt32),
    safe_mode Nullable(UInt8),
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- skill_activated: a skill used, by the user (slash command) or by Claude.
CREATE TABLE IF NOT EXISTS {database}.skill_activations
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    skill_name {lc},
    skill_source {lc},
    skill_kind {lc},
    invocation_trigger {lc},
    plugin_name {lc},
    marketplace_name {lc},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- hook_registered: a hook configured (including hooks from policySettings).
CREATE TABLE IF NOT EXISTS {database}.hook_registrations
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    hook_event {lc},
    hook_type {lc},
    hook_source {lc},
    safe_mode Nullable(UInt8),
    hook_matcher String,
    plugin_name {lc},
    plugin_id_hash String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- hook_execution_start (phase start) and hook_execution_complete (complete): hooks run for one hook event; num_blocking > 0 is a hook that blocked an action.
CREATE TABLE IF NOT EXISTS {database}.hook_executions
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    phase {lc},
    hook_event {lc},
    hook_name {lc},
    hook_source {lc},
    num_hooks Nullable(UInt32),
    managed_only Nullable(UInt8),
    safe_mode Nullable(UInt8),
    num_success Nullable(UInt32),
    num_blocking Nullable(UInt32),
    num_non_blocking_error Nullable(UInt32),
    num_cancelled Nullable(UInt32),
    total_duration_ms Nullable(UInt64),
    hook_definitions Nullable(String){codec_text},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- compaction: the context compacted, automatically or by /compact.
CREATE TABLE IF NOT EXISTS {database}.compactions
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    trigger {lc},
    success Nullable(UInt8),
    duration_ms Nullable(UInt64),
    pre_tokens Nullable(UInt64),
    post_tokens Nullable(UInt64),
    precompute_reuse {lc},
    error String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- subagent_completed: one subagent run, its tokens, tool uses and time.
CREATE TABLE IF NOT EXISTS {database}.subagent_runs
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    agent_type {lc},
    agent_source {lc},
    is_built_in Nullable(UInt8),
    is_async Nullable(UInt8),
    model {lc},
    final_model {lc},
    model_swapped Nullable(UInt8),
    total_tokens Nullable(UInt64),
    total_tool_uses Nullable(UInt32),
    duration_ms Nullable(UInt64),
    plugin_name {lc},
    plugin_id_hash String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- api_retries_exhausted: a request that failed after its last retry.
CREATE TABLE IF NOT EXISTS {database}.api_retries_exhausted
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    model {lc},
    speed {lc},
    status_code Nullable(UInt16),
    total_attempts Nullable(UInt32),
    total_retry_duration_ms Nullable(UInt64),
    query_source {lc},
    effort {lc},
    error String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- internal_error: a client-side error (stability by version).
CREATE TABLE IF NOT EXISTS {database}.internal_errors
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    error_name {lc},
    error_code {lc},
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- feedback_survey: a session-quality survey shown or answered.
CREATE TABLE IF NOT EXISTS {database}.feedback_surveys
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    event_type {lc},
    survey_type {lc},
    appearance_id String,
    response {lc},
    enabled_via_override Nullable(UInt8),
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- retention_sweep: the client's data-retention cleanup ran (v2.1.227+).
CREATE TABLE IF NOT EXISTS {database}.retention_sweeps
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    result {lc},
    skip_reason {lc},
    period_days Nullable(UInt32),
    used_default Nullable(UInt8),
    transcripts_deleted Nullable(UInt64),
    session_files_deleted Nullable(UInt64),
    artifacts_deleted Nullable(UInt64),
    files_retained_fresh Nullable(UInt64),
    files_past_cutoff Nullable(UInt64),
    error_count Nullable(UInt64),
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- at_mention: an @-mention in a prompt.
CREATE TABLE IF NOT EXISTS {database}.at_mentions
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    mention_type {lc},
    success Nullable(UInt8),
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- api_request_body (direction request) and api_response_body (response): raw API bodies, under the body policy.
CREATE TABLE IF NOT EXISTS {database}.api_bodies
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
    user_identity String,
    user_identity_source {lc},
    user_account_id String,
    app_version {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    direction {lc},
    model {lc},
    query_source {lc},
    request_id String,
    body_length Nullable(UInt64),
    body_truncated Nullable(UInt8),
    body Nullable(String){codec_text},
    body_ref String,
    normalizer_version UInt32,
    {index idx_user_identity user_identity TYPE bloom_filter(0.01) GRANULARITY 4}
)
ENGINE = {replacing normalizer_version}
PARTITION BY event_day
ORDER BY (tenant, event_day, session_id, event_id)
SHARD BY cityHash64(event_id);

-- 4: the rollups, keyed by the person. They hold nothing that the base tables do not: each is
-- dropped and created anew, and every day is marked for refresh below.
DROP TABLE IF EXISTS {database}.productivity_daily{on_cluster};
DROP TABLE IF EXISTS {database}.cost_reconciliation{on_cluster};
DROP TABLE IF EXISTS {database}.{tables:cost_daily};
DROP TABLE IF EXISTS {database}.{tables:api_requests_hourly};
DROP TABLE IF EXISTS {database}.{tables:api_errors_hourly};
DROP TABLE IF EXISTS {database}.{tables:tool_decisions_hourly};
DROP TABLE IF EXISTS {database}.{tables:tool_results_hourly};
DROP TABLE IF EXISTS {database}.{tables:sessions_hourly};
DROP TABLE IF EXISTS {database}.{tables:workspace_paths_daily};
DROP TABLE IF EXISTS {database}.{tables:sessions_daily};
DROP TABLE IF EXISTS {database}.{tables:sessions};
DROP TABLE IF EXISTS {database}.{tables:metrics_daily};
DROP TABLE IF EXISTS {database}.{tables:spans_hourly};

-- Spend per person, team and model per day. team, department and cost_center are resolved: the
-- telemetry's (record, resource or key default), else the person's user_directory entry.
CREATE TABLE IF NOT EXISTS {database}.cost_daily
(
    tenant {lc},
    day Date,
    user_identity String,
    user_identity_source {lc},
    user_email String,
    team {lc},
    department {lc},
    cost_center {lc},
    model {lc},
    query_source {lc},
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
ORDER BY (tenant, day, user_identity, team, department, cost_center, model, query_source)
SHARD BY cityHash64(tenant, day);

-- Spend by what it served: subagent, skill, plugin, MCP server and tool, effort, workflow.
CREATE TABLE IF NOT EXISTS {database}.cost_attribution_daily
(
    tenant {lc},
    day Date,
    user_identity String,
    user_identity_source {lc},
    team {lc},
    department {lc},
    cost_center {lc},
    model {lc},
    query_source {lc},
    agent_name {lc},
    skill_name {lc},
    plugin_name {lc},
    marketplace_name {lc},
    mcp_server_name {lc},
    mcp_tool_name {lc},
    effort {lc},
    workflow_name String,
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
ORDER BY (tenant, day, user_identity, team, department, cost_center, model, query_source, agent_name, skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, effort, workflow_name)
SHARD BY cityHash64(tenant, day);

-- duration_ms_le[i]: requests that took at most rollups::LATENCY_BOUNDS_MS[i] milliseconds.
CREATE TABLE IF NOT EXISTS {database}.api_requests_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
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
    duration_ms_sum UInt64,
    duration_ms_le Array(UInt64),
    last_request DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_identity, service_name, session_id, model)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.api_errors_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
    user_email String,
    service_name {lc},
    model {lc},
    status {lc},
    attempt UInt32,
    query_source {lc},
    errors UInt64,
    duration_ms_sum UInt64,
    last_seen DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_identity, service_name, model, status, attempt, query_source)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.tool_decisions_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
    user_email String,
    tool_name {lc},
    source {lc},
    decision {lc},
    mcp_server_name {lc},
    decisions UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_identity, tool_name, source, decision, mcp_server_name)
SHARD BY cityHash64(tenant, day);

-- success_known = 0: the client did not say whether the tool call worked (success is then 0).
CREATE TABLE IF NOT EXISTS {database}.tool_results_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
    user_email String,
    tool_name {lc},
    success UInt8,
    success_known UInt8,
    error_type {lc},
    mcp_server_name {lc},
    results UInt64,
    duration_ms_sum UInt64,
    duration_ms_max UInt64,
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, hour, user_identity, tool_name, success, success_known, error_type, mcp_server_name)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.sessions_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    session_id String,
    user_identity String,
    user_identity_source {lc},
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
    user_identity String,
    user_identity_source {lc},
    user_email String,
    session_id String,
    events UInt64,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    version UInt64
)
ENGINE = {replacing version}
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, day, path, user_identity, session_id)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.sessions_daily
(
    tenant {lc},
    day Date,
    session_id String,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
    user_email String,
    team {lc},
    department {lc},
    cost_center {lc},
    service_name {lc},
    terminal_type {lc},
    app_version {lc},
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

CREATE TABLE IF NOT EXISTS {database}.sessions
(
    tenant {lc},
    session_id String,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
    user_email String,
    team {lc},
    department {lc},
    cost_center {lc},
    service_name {lc},
    terminal_type {lc},
    app_version {lc},
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

CREATE TABLE IF NOT EXISTS {database}.metrics_daily
(
    tenant {lc},
    day Date,
    user_identity String,
    user_identity_source {lc},
    user_email String,
    team {lc},
    department {lc},
    cost_center {lc},
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
ORDER BY (tenant, day, user_identity, team, department, cost_center, service_name, metric, type, model, start_type, tool_name, decision, source, language, query_source)
SHARD BY cityHash64(tenant, day);

CREATE TABLE IF NOT EXISTS {database}.spans_hourly
(
    tenant {lc},
    day Date,
    hour DateTime('UTC'),
    user_identity String,
    user_identity_source {lc},
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
ORDER BY (tenant, day, hour, user_identity, service_name, span_type, model, stop_reason, decision, source, status)
SHARD BY cityHash64(tenant, day);

CREATE VIEW IF NOT EXISTS {database}.productivity_daily{on_cluster} AS
SELECT
    tenant,
    day,
    user_identity,
    team,
    department,
    cost_center,
    any(user_email) AS user_email,
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
GROUP BY tenant, day, user_identity, team, department, cost_center;

CREATE VIEW IF NOT EXISTS {database}.cost_reconciliation{on_cluster} AS
SELECT
    tenant,
    day,
    user_identity,
    any(user_email) AS user_email,
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
    SELECT tenant, day, user_identity, user_email,
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
    SELECT tenant, day, user_identity, user_email,
        toFloat64(0) AS metric_cost, toFloat64(0) AS metric_input, toFloat64(0) AS metric_output,
        toFloat64(0) AS metric_cache_read, toFloat64(0) AS metric_cache_creation,
        toFloat64(cost_usd) AS event_cost, input_tokens AS event_input, output_tokens AS event_output,
        cache_read_tokens AS event_cache_read, cache_creation_tokens AS event_cache_creation,
        requests AS event_requests
    FROM {database}.cost_daily
    WHERE (tenant, day, version) GLOBAL IN (SELECT tenant, day, max(version) FROM {database}.cost_daily GROUP BY tenant, day)
)
GROUP BY tenant, day, user_identity;

-- Every day that holds rows is refreshed into the new rollups.
INSERT INTO {database}.rollup_dirty (tenant, day) SELECT DISTINCT tenant, event_day FROM {database}.events;
INSERT INTO {database}.rollup_dirty (tenant, day) SELECT DISTINCT tenant, event_day FROM {database}.metric_points;
INSERT INTO {database}.rollup_dirty (tenant, day) SELECT DISTINCT tenant, event_day FROM {database}.spans;
