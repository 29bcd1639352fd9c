-- cowork-ingest schema, migration 002: rollups as views over the deduplicated tables.
--
-- Every branch of a UNION ALL names every column: ClickHouse 18.16 merges same-named columns.
--
-- A materialized view fires on every insert, so a replay or a client resend would be counted
-- twice. Views read the typed tables with FINAL instead: every replay leaves them exact.

CREATE VIEW IF NOT EXISTS {database}.sessions AS
SELECT
    tenant, session_id, first_seen, last_seen, user_email, service_name, terminal_type,
    workspace_host_paths, prompts, api_requests, api_errors, cost_usd, input_tokens, output_tokens,
    cache_read_tokens, cache_creation_tokens, tool_decisions, tool_rejects, tool_failures
FROM
(
    SELECT
        tenant,
        session_id,
        min(timestamp) AS first_seen,
        max(timestamp) AS last_seen,
        max(user_email) AS user_email,
        max(service_name) AS service_name,
        max(terminal_type) AS terminal_type,
        arraySort(groupUniqArrayArray(workspace_host_paths)) AS workspace_host_paths,
        countIf(event_name = 'user_prompt') AS prompts,
        countIf(event_name = 'api_request') AS api_requests,
        countIf(event_name = 'api_error') AS api_errors,
        countIf(event_name = 'tool_decision') AS tool_decisions
    FROM {database}.events FINAL
    WHERE session_id != ''
    GROUP BY tenant, session_id
) AS activity
ANY LEFT JOIN
(
    SELECT
        tenant,
        session_id,
        sum(cost) AS cost_usd,
        sum(input) AS input_tokens,
        sum(output) AS output_tokens,
        sum(cache_read) AS cache_read_tokens,
        sum(cache_creation) AS cache_creation_tokens,
        sum(reject) AS tool_rejects,
        sum(failure) AS tool_failures
    FROM
    (
        SELECT tenant, session_id, cost_usd AS cost, input_tokens AS input, output_tokens AS output,
            cache_read_tokens AS cache_read, cache_creation_tokens AS cache_creation,
            toUInt64(0) AS reject, toUInt64(0) AS failure
        FROM {database}.api_requests FINAL
        UNION ALL
        SELECT tenant, session_id, toDecimal64(0, 9) AS cost, toUInt64(0) AS input, toUInt64(0) AS output,
            toUInt64(0) AS cache_read, toUInt64(0) AS cache_creation,
            toUInt64(decision = 'reject') AS reject, toUInt64(0) AS failure
        FROM {database}.tool_decisions FINAL
        UNION ALL
        SELECT tenant, session_id, toDecimal64(0, 9) AS cost, toUInt64(0) AS input, toUInt64(0) AS output,
            toUInt64(0) AS cache_read, toUInt64(0) AS cache_creation,
            toUInt64(0) AS reject, toUInt64(success = 0) AS failure
        FROM {database}.tool_results FINAL
    ) AS parts
    GROUP BY tenant, session_id
) AS totals USING (tenant, session_id);

CREATE VIEW IF NOT EXISTS {database}.cost_daily AS
SELECT
    tenant,
    toDate(timestamp) AS day,
    user_email,
    model,
    sum(cost_usd) AS cost_usd,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cache_creation_tokens) AS cache_creation_tokens,
    count() AS requests
FROM {database}.api_requests FINAL
GROUP BY tenant, day, user_email, model;
