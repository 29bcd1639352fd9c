//! Rollups: tables the dashboards read instead of scanning history, kept exact under resends and
//! replays.
//!
//! Read a rollup with FINAL, or (faster on 18.16, where FINAL runs on one thread) keep only each
//! day's newest refresh: `(tenant, day, version) IN (SELECT tenant, day, max(version) FROM
//! <rollup> ... GROUP BY tenant, day)`. Both give the newest complete refresh of every day.
//!
//! The consumer marks each (tenant, day) it writes rows for in `rollup_dirty`, in the same step
//! as the rows and before their Kafka offsets are committed. A refresh re-aggregates a marked
//! (tenant, day) from the deduplicated base tables (FINAL, one day partition) and inserts the
//! result with the refresh's start time as the ReplacingMergeTree version, so the newest refresh
//! replaces every older one, and a replay rewrites the same figures instead of adding to them.
//! `rollup_state` records each refresh; a day whose newest mark is not older than its newest
//! refresh is refreshed again, which covers rows that landed while a refresh was reading. With a
//! settle time, a day is refreshed again until a refresh begins that long after its newest mark:
//! in cluster mode, a replica that had not fetched the rows yet has caught up by then.
//! Marks and versions come from the server's clock, so consumers on different hosts agree.
//!
//! A refresh costs what one day of one tenant costs, never what history costs.

use super::erasure::quote;
use super::store::{Store, StoreError};
use super::tables::{Rollup, ROLLUP_DIRTY, ROLLUP_STATE};

/// The refresh of one rollup for one (tenant, day): `{db}`, `{tenant}`, `{day}` and `{version}`
/// are replaced. Every statement reads the base tables with FINAL over one day partition.
fn refresh_sql(rollup: Rollup) -> &'static str {
    match rollup {
        // Team columns: the telemetry's, else the person's user_directory entry ({directory}).
        Rollup::CostDaily => {
            "INSERT INTO {db}.cost_daily (tenant, day, user_identity, user_identity_source, user_email, team, \
             department, cost_center, model, query_source, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, requests, version) \
             SELECT tenant, day, user_identity, max(user_identity_source), max(user_email), r_team, r_department, \
             r_cost_center, model, query_source, sum(cost_usd), sum(input_tokens), sum(output_tokens), \
             sum(cache_read_tokens), sum(cache_creation_tokens), count(), {version} \
             FROM ( {resolve} ( \
                 SELECT tenant, event_day AS day, user_identity, user_identity_source, user_email, team, department, \
                 cost_center, model, query_source, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
                 cache_creation_tokens \
                 FROM {db}.api_requests FINAL WHERE tenant = {tenant} AND event_day = {day} \
             ) AS base {directory} \
             ) AS resolved \
             GROUP BY tenant, day, user_identity, r_team, r_department, r_cost_center, model, query_source"
        }
        Rollup::CostAttributionDaily => {
            "INSERT INTO {db}.cost_attribution_daily (tenant, day, user_identity, user_identity_source, team, department, \
             cost_center, model, query_source, agent_name, skill_name, plugin_name, marketplace_name, mcp_server_name, \
             mcp_tool_name, effort, workflow_name, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, requests, version) \
             SELECT tenant, day, user_identity, max(user_identity_source), r_team, r_department, r_cost_center, model, \
             query_source, agent_name, \
             skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, effort, workflow_name, \
             sum(cost_usd), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), \
             sum(cache_creation_tokens), count(), {version} \
             FROM ( {resolve} ( \
                 SELECT tenant, event_day AS day, user_identity, user_identity_source, team, department, cost_center, \
                 model, query_source, agent_name, skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, effort, \
                 workflow_name, cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens \
                 FROM {db}.api_requests FINAL WHERE tenant = {tenant} AND event_day = {day} \
             ) AS base {directory} \
             ) AS resolved \
             GROUP BY tenant, day, user_identity, r_team, r_department, r_cost_center, model, query_source, \
             agent_name, skill_name, plugin_name, marketplace_name, mcp_server_name, mcp_tool_name, effort, \
             workflow_name"
        }
        Rollup::ApiRequestsHourly => {
            "INSERT INTO {db}.api_requests_hourly (tenant, day, hour, user_identity, user_identity_source, user_email, \
             service_name, session_id, model, requests, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, duration_ms_sum, duration_ms_le, last_request, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, user_identity, max(user_identity_source), \
             max(user_email), service_name, session_id, model, count(), sum(cost_usd), sum(input_tokens), \
             sum(output_tokens), sum(cache_read_tokens), sum(cache_creation_tokens), sum(duration_ms), \
             sumForEach(arrayMap(b -> toUInt64(duration_ms <= b), {latency_bounds})), max(timestamp), {version} \
             FROM {db}.api_requests FINAL WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, hour, user_identity, service_name, session_id, model"
        }
        Rollup::ApiErrorsHourly => {
            "INSERT INTO {db}.api_errors_hourly (tenant, day, hour, user_identity, user_identity_source, user_email, \
             service_name, model, status, attempt, query_source, errors, duration_ms_sum, last_seen, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, user_identity, max(user_identity_source), \
             max(user_email), service_name, model, \
             if(isNull(status_code), 'none', toString(assumeNotNull(status_code))) AS status, attempt, query_source, \
             count(), sum(duration_ms), max(timestamp), {version} \
             FROM {db}.api_errors FINAL WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, hour, user_identity, service_name, model, status, attempt, query_source"
        }
        Rollup::ToolDecisionsHourly => {
            "INSERT INTO {db}.tool_decisions_hourly (tenant, day, hour, user_identity, user_identity_source, user_email, \
             tool_name, source, decision, mcp_server_name, decisions, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, user_identity, max(user_identity_source), \
             max(user_email), tool_name, source, decision, mcp_server_name, count(), {version} \
             FROM {db}.tool_decisions FINAL WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, hour, user_identity, tool_name, source, decision, mcp_server_name"
        }
        Rollup::ToolResultsHourly => {
            "INSERT INTO {db}.tool_results_hourly (tenant, day, hour, user_identity, user_identity_source, user_email, \
             tool_name, success, success_known, error_type, mcp_server_name, results, duration_ms_sum, \
             duration_ms_max, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, user_identity, max(user_identity_source), \
             max(user_email), tool_name, ifNull(success, 0) AS ok, toUInt8(isNotNull(success)) AS known, error_type, \
             mcp_server_name, count(), sum(duration_ms), max(duration_ms), {version} \
             FROM {db}.tool_results FINAL WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, hour, user_identity, tool_name, ok, known, error_type, mcp_server_name"
        }
        Rollup::SessionsHourly => {
            "INSERT INTO {db}.sessions_hourly (tenant, day, hour, session_id, user_identity, user_identity_source, \
             user_email, service_name, events, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, session_id, max(user_identity), \
             max(user_identity_source), max(user_email), max(service_name), count(), {version} \
             FROM {db}.events FINAL WHERE tenant = {tenant} AND event_day = {day} AND session_id != '' \
             GROUP BY tenant, event_day, hour, session_id"
        }
        Rollup::WorkspacePathsDaily => {
            "INSERT INTO {db}.workspace_paths_daily (tenant, day, path, user_identity, user_identity_source, user_email, \
             session_id, events, first_seen, last_seen, version) \
             SELECT tenant, event_day, path, user_identity, max(user_identity_source), max(user_email), session_id, \
             count(), min(timestamp), max(timestamp), {version} \
             FROM {db}.events FINAL ARRAY JOIN workspace_host_paths AS path \
             WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, path, user_identity, session_id"
        }
        // Every branch of a UNION ALL names every column: ClickHouse 18.16 merges same-named
        // columns.
        Rollup::SessionsDaily => {
            "INSERT INTO {db}.sessions_daily (tenant, day, session_id, first_seen, last_seen, user_identity, \
             user_identity_source, user_email, team, department, cost_center, service_name, terminal_type, \
             app_version, workspace_host_paths, events, prompts, api_requests, api_errors, cost_usd, input_tokens, \
             output_tokens, cache_read_tokens, cache_creation_tokens, tool_decisions, tool_rejects, tool_failures, \
             version) \
             SELECT tenant, day, session_id, first_seen, last_seen, user_identity, user_identity_source, user_email, \
             r_team, r_department, r_cost_center, service_name, terminal_type, app_version, workspace_host_paths, \
             events, prompts, api_requests, api_errors, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, tool_decisions, tool_rejects, tool_failures, {version} \
             FROM ( {resolve} ( \
             SELECT * FROM ( \
                 SELECT tenant, event_day AS day, session_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen, \
                 max(user_identity) AS user_identity, max(user_identity_source) AS user_identity_source, \
                 max(user_email) AS user_email, max(team) AS team, max(department) AS department, \
                 max(cost_center) AS cost_center, max(service_name) AS service_name, \
                 max(terminal_type) AS terminal_type, max(app_version) AS app_version, \
                 arraySort(groupUniqArrayArray(workspace_host_paths)) AS workspace_host_paths, count() AS events, \
                 countIf(event_name = 'user_prompt') AS prompts, countIf(event_name = 'api_request') AS api_requests, \
                 countIf(event_name = 'api_error') AS api_errors, countIf(event_name = 'tool_decision') AS tool_decisions \
                 FROM {db}.events FINAL WHERE tenant = {tenant} AND event_day = {day} AND session_id != '' \
                 GROUP BY tenant, day, session_id \
             ) AS activity \
             ANY LEFT JOIN ( \
                 SELECT tenant, day, session_id, sum(cost) AS cost_usd, sum(input) AS input_tokens, \
                 sum(output) AS output_tokens, sum(cache_read) AS cache_read_tokens, \
                 sum(cache_creation) AS cache_creation_tokens, sum(reject) AS tool_rejects, sum(failure) AS tool_failures \
                 FROM ( \
                     SELECT tenant, event_day AS day, session_id, cost_usd AS cost, input_tokens AS input, \
                     output_tokens AS output, cache_read_tokens AS cache_read, cache_creation_tokens AS cache_creation, \
                     toUInt64(0) AS reject, toUInt64(0) AS failure \
                     FROM {db}.api_requests FINAL WHERE tenant = {tenant} AND event_day = {day} \
                     UNION ALL \
                     SELECT tenant, event_day AS day, session_id, toDecimal64(0, 9) AS cost, toUInt64(0) AS input, \
                     toUInt64(0) AS output, toUInt64(0) AS cache_read, toUInt64(0) AS cache_creation, \
                     toUInt64(decision = 'reject') AS reject, toUInt64(0) AS failure \
                     FROM {db}.tool_decisions FINAL WHERE tenant = {tenant} AND event_day = {day} \
                     UNION ALL \
                     SELECT tenant, event_day AS day, session_id, toDecimal64(0, 9) AS cost, toUInt64(0) AS input, \
                     toUInt64(0) AS output, toUInt64(0) AS cache_read, toUInt64(0) AS cache_creation, \
                     toUInt64(0) AS reject, toUInt64(ifNull(success, 1) = 0) AS failure \
                     FROM {db}.tool_results FINAL WHERE tenant = {tenant} AND event_day = {day} \
                 ) AS parts \
                 GROUP BY tenant, day, session_id \
             ) AS totals USING (tenant, day, session_id) \
             ) AS base {directory} \
             ) AS resolved"
        }
        // Whole sessions, over all their days, for every session seen on the refreshed day.
        Rollup::Sessions => {
            "INSERT INTO {db}.sessions (tenant, session_id, first_seen, last_seen, user_identity, user_identity_source, \
             user_email, team, department, cost_center, service_name, terminal_type, app_version, workspace_host_paths, \
             days, events, prompts, api_requests, api_errors, cost_usd, input_tokens, output_tokens, cache_read_tokens, \
             cache_creation_tokens, tool_decisions, tool_rejects, tool_failures, version) \
             SELECT tenant, session_id, min(first_seen), max(last_seen), max(user_identity), max(user_identity_source), \
             max(user_email), max(team), max(department), max(cost_center), max(service_name), max(terminal_type), \
             max(app_version), arraySort(groupUniqArrayArray(workspace_host_paths)), toUInt32(count()), sum(events), \
             sum(prompts), sum(api_requests), sum(api_errors), sum(cost_usd), sum(input_tokens), sum(output_tokens), \
             sum(cache_read_tokens), sum(cache_creation_tokens), sum(tool_decisions), sum(tool_rejects), \
             sum(tool_failures), {version} \
             FROM {db}.sessions_daily FINAL \
             WHERE tenant = {tenant} AND session_id GLOBAL IN \
                 (SELECT session_id FROM {db}.sessions_daily WHERE tenant = {tenant} AND day = {day}) \
             GROUP BY tenant, session_id"
        }
        Rollup::SpansHourly => {
            "INSERT INTO {db}.spans_hourly (tenant, day, hour, user_identity, user_identity_source, user_email, \
             service_name, span_type, model, stop_reason, decision, source, status, spans, duration_ms_sum, ttft_ms_sum, \
             ttft_count, duration_ms_le, ttft_ms_le, version) \
             SELECT tenant, event_day, toStartOfHour(timestamp) AS hour, user_identity, max(user_identity_source), \
             max(user_email), service_name, span_type, model, stop_reason, decision, source, status, count(), \
             sum(duration_ms), sum(ifNull(ttft_ms, 0)), count(ttft_ms), \
             sumForEach(arrayMap(b -> toUInt64(duration_ms <= b), {latency_bounds})), \
             sumForEach(arrayMap(b -> toUInt64(isNotNull(ttft_ms) AND assumeNotNull(ttft_ms) <= b), {latency_bounds})), \
             {version} \
             FROM {db}.spans FINAL WHERE tenant = {tenant} AND event_day = {day} \
             GROUP BY tenant, event_day, hour, user_identity, service_name, span_type, model, stop_reason, decision, \
             source, status"
        }
        // Sum metrics only. DELTA points (FINAL: each copy once) are summed. A monotonic
        // CUMULATIVE series (its dimensions are attributes of the series, so constant within it)
        // counts its highest value of the day minus its highest value before the day (0 when it
        // started that day): its increase. Looking back only as far as the day's earliest series
        // start (at most a year; not at all on a day without cumulative points) bounds the read.
        // Both temporalities therefore give the same totals. A non-monotonic cumulative sum (an
        // up-down counter) has no increase to count and is left out.
        Rollup::MetricsDaily => {
            "INSERT INTO {db}.metrics_daily (tenant, day, user_identity, user_identity_source, user_email, team, \
             department, cost_center, service_name, metric, type, model, start_type, tool_name, decision, source, \
             language, query_source, value, points, sessions, version) \
             SELECT tenant, day, user_identity, max(user_identity_source), max(user_email), r_team, r_department, \
             r_cost_center, service_name, metric, type, model, start_type, tool_name, decision, source, language, \
             query_source, sum(increase), sum(n), uniqExact(session_id), {version} \
             FROM ( {resolve} ( \
             SELECT * FROM ( \
                 SELECT tenant, event_day AS day, user_identity, user_identity_source, user_email, team, department, \
                 cost_center, service_name, metric, type, model, start_type, tool_name, decision, source, language, \
                 query_source, session_id, value AS increase, toUInt64(1) AS n \
                 FROM {db}.metric_points FINAL \
                 WHERE tenant = {tenant} AND event_day = {day} AND kind = 'sum' AND temporality != 'cumulative' \
                 UNION ALL \
                 SELECT tenant, day, user_identity, user_identity_source, user_email, team, department, cost_center, \
                 service_name, metric, type, model, start_type, tool_name, decision, source, language, query_source, \
                 session_id, if(high > low, high - low, 0) AS increase, n \
                 FROM ( \
                     SELECT series_id, tenant, event_day AS day, user_identity, user_identity_source, user_email, team, \
                     department, cost_center, service_name, metric, type, model, start_type, tool_name, decision, \
                     source, language, query_source, session_id, max(value) AS high, uniqExact(point_id) AS n \
                     FROM {db}.metric_points FINAL \
                     WHERE tenant = {tenant} AND event_day = {day} AND kind = 'sum' AND temporality = 'cumulative' \
                     AND monotonic = 1 \
                     GROUP BY series_id, tenant, day, user_identity, user_identity_source, user_email, team, \
                     department, cost_center, service_name, metric, type, model, start_type, tool_name, decision, \
                     source, language, query_source, session_id \
                 ) AS today \
                 ANY LEFT JOIN ( \
                     SELECT series_id, max(value) AS low \
                     FROM {db}.metric_points \
                     WHERE tenant = {tenant} AND event_day < {day} AND kind = 'sum' AND temporality = 'cumulative' \
                     AND event_day >= (SELECT if(count() = 0, {day}, \
                         greatest(toDate(intDiv(min(start_time_unix_nano), 1000000000)), {day} - 366)) \
                         FROM {db}.metric_points WHERE tenant = {tenant} AND event_day = {day} \
                         AND kind = 'sum' AND temporality = 'cumulative') \
                     AND series_id GLOBAL IN (SELECT series_id FROM {db}.metric_points \
                         WHERE tenant = {tenant} AND event_day = {day} AND kind = 'sum' AND temporality = 'cumulative') \
                     GROUP BY series_id \
                 ) AS before USING (series_id) \
             ) AS increases \
             ) AS base {directory} \
             ) AS resolved \
             GROUP BY tenant, day, user_identity, r_team, r_department, r_cost_center, service_name, metric, type, \
             model, start_type, tool_name, decision, source, language, query_source"
        }
    }
}

/// Opens the subquery whose `r_team`, `r_department` and `r_cost_center` are resolved: see
/// [`DIRECTORY_JOIN`].
const RESOLVE_TEAMS: &str = "SELECT *, if(team != '', team, dir_team) AS r_team, \
     if(department != '', department, dir_department) AS r_department, \
     if(cost_center != '', cost_center, dir_cost_center) AS r_cost_center FROM";

/// The join that resolves a refresh's team columns: `r_team`, `r_department` and
/// `r_cost_center` are the row's own (telemetry: record, resource or key default), else those
/// of the person's live `user_directory` entry. Follows a subquery aliased `base` that has
/// `user_identity`, `team`, `department` and `cost_center`.
const DIRECTORY_JOIN: &str = "GLOBAL ANY LEFT JOIN ( \
     SELECT user_identity, team AS dir_team, department AS dir_department, cost_center AS dir_cost_center \
     FROM {db}.user_directory FINAL WHERE tenant = {tenant} AND deleted = 0 \
 ) AS dir USING (user_identity)";

/// Upper bounds, in milliseconds, of `spans_hourly`'s cumulative latency histograms
/// (`duration_ms_le`, `ttft_ms_le`): roughly 1-2-5 steps from 50 ms to 10 minutes. A reader's
/// percentile is the first bound whose count reaches it.
pub const LATENCY_BOUNDS_MS: [u32; 20] = [
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 60_000,
    120_000, 300_000, 600_000,
];

/// `LATENCY_BOUNDS_MS` as a ClickHouse array literal.
pub fn latency_bounds_sql() -> String {
    let items: Vec<String> = LATENCY_BOUNDS_MS.iter().map(|b| format!("{b}.")).collect();
    format!("[{}]", items.join(", "))
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01, as `event_day` is encoded).
pub fn day_text(day: u16) -> String {
    let date = time::Date::from_julian_day(2_440_588 + i32::from(day)).expect("a u16 day is a valid date");
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// Every statement one refresh of (`tenant`, `day`) runs, in order, with `version`.
pub fn refresh_statements(database: &str, tenant: &str, day: &str, version: u64) -> Vec<String> {
    let day = format!("toDate({})", quote(day));
    let bounds = latency_bounds_sql();
    Rollup::ALL
        .iter()
        .map(|r| {
            refresh_sql(*r)
                .replace("{db}", database)
                .replace("{tenant}", &quote(tenant))
                .replace("{day}", &day)
                .replace("{version}", &version.to_string())
                .replace("{latency_bounds}", &bounds)
                .replace("{resolve}", RESOLVE_TEAMS)
                .replace("{directory}", DIRECTORY_JOIN)
                .replace("{db}", database)
                .replace("{tenant}", &quote(tenant))
        })
        .collect()
}

async fn server_now(store: &Store) -> Result<u64, StoreError> {
    store
        .scalar("SELECT toUInt64(now())")
        .await?
        .parse()
        .ok()
        .ok_or_else(|| StoreError::Retry("the server did not say what time it is".into()))
}

/// Marks (tenant, day)s as holding new rows. Written before the rows' offsets are committed, so
/// a crash after it leaves the mark for the next refresh, by any consumer.
pub async fn mark(store: &Store, touched: &[(&str, u16)]) -> Result<(), StoreError> {
    if touched.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = touched
        .iter()
        .map(|(tenant, day)| format!("({}, toDate({}))", quote(tenant), quote(&day_text(*day))))
        .collect();
    store
        .execute(&format!(
            "INSERT INTO {}.{ROLLUP_DIRTY} (tenant, day) VALUES {}",
            store.database(),
            values.join(", ")
        ))
        .await
}

/// A refresh's version: the server's clock in seconds (so that refreshes on different hosts order
/// by when they began), then microseconds of this host's clock, so that two refreshes of one day
/// never share a version.
pub fn version_at(server_s: u64, sub_micros: u32) -> u64 {
    server_s * 1_000_000 + u64::from(sub_micros % 1_000_000)
}

/// A new version ([`version_at`]) from the server's clock now, and that clock in seconds: for
/// rows that must replace every older copy (a refresh, a directory import, a budget edit).
pub async fn version_now(store: &Store) -> Result<(u64, u64), StoreError> {
    let server_s = server_now(store).await?;
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros());
    Ok((version_at(server_s, micros), server_s))
}

/// Re-aggregates every rollup of one (tenant, day) (`day` as `YYYY-MM-DD`). Returns the version
/// written.
///
/// Each rollup gets its day in one INSERT (one part while a day has fewer groups than
/// `min_insert_block_size_rows`), so a reader that picks the newest version of a day in a rollup
/// sees one whole refresh.
pub async fn refresh(store: &Store, tenant: &str, day: &str) -> Result<u64, StoreError> {
    let (version, started) = version_now(store).await?;
    for sql in refresh_statements(store.database(), tenant, day, version) {
        store.execute(&sql).await?;
    }
    store
        .execute(&format!(
            "INSERT INTO {}.{ROLLUP_STATE} (tenant, day, refreshed_at) VALUES ({}, toDate({}), {started})",
            store.database(),
            quote(tenant),
            quote(day)
        ))
        .await?;
    Ok(version)
}

/// The (tenant, day)s due for a refresh, oldest first: marked since `settle_s` before their last
/// refresh began (with `settle_s` 0, marked since it began). Days before `kept_since`
/// (`YYYY-MM-DD`, from [`super::retention::kept_since`]) are left alone: retention has dropped
/// some of their rows, and a refresh would overwrite their rollups with what is left.
pub async fn pending(
    store: &Store,
    settle_s: u64,
    kept_since: Option<&str>,
) -> Result<Vec<(String, String)>, StoreError> {
    let db = store.database();
    let rows = store
        .rows(&format!(
            "SELECT tenant, toString(day) FROM \
             (SELECT tenant, day, max(marked_at) AS marked FROM {db}.{ROLLUP_DIRTY} GROUP BY tenant, day) AS d \
             ANY LEFT JOIN \
             (SELECT tenant, day, max(refreshed_at) AS refreshed FROM {db}.{ROLLUP_STATE} GROUP BY tenant, day) AS s \
             USING (tenant, day) \
             WHERE marked + {settle_s} >= refreshed AND {} ORDER BY day, tenant",
            kept(kept_since, "day")
        ))
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let mut it = r.into_iter();
            Some((it.next()?, it.next()?))
        })
        .collect())
}

/// Cluster mode: how many replicas of the pipeline's tables, on any reachable node, may lack
/// rows already committed elsewhere: read-only (no ZooKeeper session), fetching new parts, or
/// behind on the replication log. A refresh waits until this is 0, so that whichever replica it
/// reads has every row written before it began. Always 0 on one server.
pub async fn replicas_behind(store: &Store) -> Result<u64, StoreError> {
    let Some(cluster) = store.cluster() else {
        return Ok(0);
    };
    let nodes: Vec<String> = store
        .rows(&format!(
            "SELECT concat(host_address, ':', toString(port)) FROM system.clusters WHERE cluster = {}",
            quote(cluster)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    if nodes.is_empty() {
        return Err(StoreError::Retry(format!(
            "cluster {cluster} is not in system.clusters"
        )));
    }
    Ok(store
        .scalar(&format!(
            "SELECT count() FROM remote({}, system, replicas) \
             WHERE database = {} AND (is_readonly OR inserts_in_queue > 0 OR (log_max_index > 0 AND log_pointer <= log_max_index)) \
             SETTINGS skip_unavailable_shards = 1",
            quote(&nodes.join(",")),
            quote(store.database())
        ))
        .await?
        .parse()
        .unwrap_or(0))
}

/// Day 0 (no time of its own, never expired), or a day from `kept_since` on.
fn kept(kept_since: Option<&str>, column: &str) -> String {
    match kept_since {
        Some(day) => format!(
            "({column} = toDate('1970-01-01') OR {column} >= toDate({}))",
            quote(day)
        ),
        None => "1 = 1".into(),
    }
}

/// `rollups rebuild`: refreshes every (tenant, day) the base tables hold, optionally from `since`
/// (`YYYY-MM-DD`) and for one tenant, and never a day before `kept_since` (see [`pending`]). For backfills, after a redrive, and after an upgrade.
pub async fn rebuild(
    store: &Store,
    since: Option<&str>,
    tenant: Option<&str>,
    kept_since: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<usize, StoreError> {
    let db = store.database();
    let mut filter = vec![kept(kept_since, "event_day")];
    if let Some(since) = since {
        filter.push(format!("event_day >= toDate({})", quote(since)));
    }
    if let Some(tenant) = tenant {
        filter.push(format!("tenant = {}", quote(tenant)));
    }
    for _ in 0..120 {
        match replicas_behind(store).await? {
            0 => break,
            n => {
                progress(&format!("waiting for {n} replica(s) to catch up"));
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
    let days = store
        .rows(&format!(
            "SELECT DISTINCT tenant, day FROM (\
             SELECT tenant, toString(event_day) AS day FROM {db}.events WHERE {filter} \
             UNION ALL SELECT tenant, toString(event_day) AS day FROM {db}.metric_points WHERE {filter} \
             UNION ALL SELECT tenant, toString(event_day) AS day FROM {db}.spans WHERE {filter}) \
             ORDER BY day, tenant",
            filter = filter.join(" AND ")
        ))
        .await?;
    for (i, row) in days.iter().enumerate() {
        let (Some(t), Some(d)) = (row.first(), row.get(1)) else {
            continue;
        };
        let started = std::time::Instant::now();
        refresh(store, t, d).await?;
        progress(&format!(
            "{t} {d}: refreshed in {:.2} s ({} of {})",
            started.elapsed().as_secs_f64(),
            i + 1,
            days.len()
        ));
    }
    Ok(days.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_the_server_second_and_never_tie_within_it() {
        assert!(version_at(100, 999_999) < version_at(101, 0));
        assert_ne!(version_at(100, 1), version_at(100, 2));
        assert_eq!(version_at(100, 1_000_001), version_at(100, 1));
    }

    #[test]
    fn days_are_rendered_as_dates() {
        assert_eq!(day_text(0), "1970-01-01");
        assert_eq!(day_text(20_776), "2026-11-19");
    }

    #[test]
    fn every_rollup_refreshes_one_tenant_day() {
        let s = refresh_statements("db1", "ac'me", "2026-11-19", 42);
        assert_eq!(s.len(), Rollup::ALL.len());
        for (sql, r) in s.iter().zip(Rollup::ALL) {
            assert!(sql.starts_with(&format!("INSERT INTO db1.{} (", r.name())), "{sql}");
            assert!(sql.contains(r"tenant = 'ac\'me'") && sql.contains(", 42"), "{sql}");
            assert!(!sql.contains('{'), "{sql}");
        }
    }
}
