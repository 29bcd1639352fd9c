//! Normalized events as ClickHouse rows: RowBinary, encoded straight into one buffer per table.
//!
//! Encoding writes borrowed strings into the buffers: nothing is allocated per attribute (numbers
//! are formatted through one reused scratch string). The content policy is applied here, to the
//! typed columns and to the attribute arrays alike.
//!
//! Column lists are explicit, so a later migration may add columns with defaults without
//! breaking running consumers.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::tables::Table;
use crate::otlp::decode::{Attr, Id, Point, Record, Span, Value};
use crate::transform::content::{self, ContentAction, ContentPolicy};
use crate::transform::kinds::Type;
use crate::transform::normalize::{
    Cell, Detail, Event, Identity, Spend, ToolParameters, METRIC, NORMALIZER_VERSION, SPAN,
};
use crate::transform::signals::{self, MetricPoint, SpanRecord};

/// Where a payload came from: everything a row holds besides the event itself.
pub struct Origin<'p> {
    pub tenant: &'p str,
    pub received_at_ns: u64,
    pub partition: i32,
    pub offset: i64,
    pub policy: &'p ContentPolicy,
}

/// Positions in every buffer, to roll back a payload that failed half-way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    pub bytes: [usize; Table::COUNT],
    pub rows: [usize; Table::COUNT],
}

/// One RowBinary buffer per table.
#[derive(Debug, Default)]
pub struct Rows {
    bufs: [Vec<u8>; Table::COUNT],
    counts: [usize; Table::COUNT],
    scratch: String,
}

impl Rows {
    pub fn mark(&self) -> Mark {
        Mark {
            bytes: std::array::from_fn(|i| self.bufs[i].len()),
            rows: self.counts,
        }
    }

    pub fn rollback(&mut self, mark: Mark) {
        for i in 0..Table::COUNT {
            self.bufs[i].truncate(mark.bytes[i]);
        }
        self.counts = mark.rows;
    }

    /// The encoded rows of `table`.
    pub fn buf(&self, table: Table) -> &[u8] {
        &self.bufs[table.index()]
    }

    /// Records held: one `events` row per event, one `metric_points` row per data point, one
    /// `spans` row per span.
    pub fn records(&self) -> usize {
        self.counts[Table::Events as usize]
            + self.counts[Table::MetricPoints as usize]
            + self.counts[Table::Spans as usize]
    }

    pub fn bytes(&self) -> usize {
        self.bufs.iter().map(Vec::len).sum()
    }

    pub fn clear(&mut self) {
        for b in &mut self.bufs {
            b.clear();
        }
        self.counts = [0; Table::COUNT];
    }

    /// Encodes one event: its `events` row and, for a known kind, its typed row.
    pub fn push(&mut self, origin: &Origin<'_>, resource: &[Attr<'_>], record: &Record<'_>, ev: &Event<'_>) {
        let Rows { bufs, counts, scratch } = self;
        let policy = origin.policy;
        let id = ev.event_id.to_be_bytes();
        let ts = (ev.timestamp_ns / 1_000_000_000) as u32;
        let day = ev.event_day().to_le_bytes();

        let b = &mut bufs[Table::Events as usize];
        b.extend_from_slice(&id);
        put_str(b, origin.tenant);
        b.extend_from_slice(&ts.to_le_bytes());
        b.extend_from_slice(&day);
        b.extend_from_slice(&ev.timestamp_ns.to_le_bytes());
        put_str(b, ev.time_source.as_str());
        put_str(b, ev.event_name);
        let i = &ev.identity;
        put_str(b, i.service_name);
        put_str(b, i.terminal_type);
        put_str(b, i.session_id);
        put_str(b, i.prompt_id);
        match ev.sequence {
            Some(s) => {
                b.push(0);
                b.extend_from_slice(&s.to_le_bytes());
            }
            None => b.push(1),
        }
        put_str(b, i.user_email);
        put_str(b, i.user_id);
        put_str(b, i.user_account_uuid);
        put_str(b, i.organization_id);
        put_str(b, i.app_version);
        for v in [
            i.user_identity,
            i.user_identity_source,
            i.user_account_id,
            i.team,
            i.department,
            i.cost_center,
        ] {
            put_str(b, v);
        }
        for id in [ev.trace_id, ev.span_id] {
            put_id(b, scratch, id);
        }
        let paths = content::action_for("workspace.host_paths", policy);
        if paths == ContentAction::Drop {
            put_len(b, 0);
        } else {
            put_len(b, ev.workspace_host_paths.len());
            for p in &ev.workspace_host_paths {
                put_content(b, scratch, p, paths);
            }
        }
        match &record.body {
            Some(v) => put_value(b, scratch, v),
            None => put_str(b, ""),
        }
        put_attributes(b, scratch, &record.attributes, policy);
        put_attributes(b, scratch, resource, policy);
        put_origin(b, origin);
        counts[Table::Events as usize] += 1;

        let table = match &ev.detail {
            Detail::ApiRequest(_) => Table::ApiRequests,
            Detail::ApiError(_) => Table::ApiErrors,
            Detail::UserPrompt(_) => Table::UserPrompts,
            Detail::ToolDecision(_) => Table::ToolDecisions,
            Detail::ToolResult(_) => Table::ToolResults,
            Detail::Kind(k) => Table::of_kind(k.index),
            Detail::Other => return,
        };
        let b = &mut bufs[table as usize];
        b.extend_from_slice(&id);
        put_str(b, origin.tenant);
        b.extend_from_slice(&ts.to_le_bytes());
        b.extend_from_slice(&day);
        put_typed_identity(b, i);
        match &ev.detail {
            Detail::ApiRequest(r) => {
                put_str(b, r.model);
                b.extend_from_slice(&r.cost_nanos.unwrap_or(0).to_le_bytes());
                put_nullable_i64(b, r.cost_usd_micros);
                for n in [
                    r.input_tokens,
                    r.output_tokens,
                    r.cache_read_tokens,
                    r.cache_creation_tokens,
                    r.duration_ms,
                ] {
                    b.extend_from_slice(&n.unwrap_or(0).to_le_bytes());
                }
                put_str(b, r.speed);
                put_str(b, r.query_source);
                put_str(b, r.request_id);
                put_spend(b, &r.spend);
            }
            Detail::ApiError(r) => {
                put_str(b, r.model);
                put_content(b, scratch, r.error, policy.error);
                match r.status_code {
                    Some(c) => {
                        b.push(0);
                        b.extend_from_slice(&c.to_le_bytes());
                    }
                    None => b.push(1),
                }
                let attempt = r.attempt.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX));
                b.extend_from_slice(&attempt.to_le_bytes());
                b.extend_from_slice(&r.duration_ms.unwrap_or(0).to_le_bytes());
                put_str(b, r.request_id);
                put_str(b, r.query_source);
                put_str(b, r.speed);
                put_spend(b, &r.spend);
            }
            Detail::UserPrompt(r) => {
                b.extend_from_slice(&r.prompt_length.unwrap_or(0).to_le_bytes());
                match (r.prompt, policy.prompt) {
                    (Some(p), ContentAction::Keep | ContentAction::Hash) => {
                        b.push(0);
                        put_content(b, scratch, p, policy.prompt);
                    }
                    _ => b.push(1),
                }
                put_str(b, r.command_name);
            }
            Detail::ToolDecision(r) => {
                for s in [r.tool_name, r.tool_use_id, r.decision, r.source, r.tool_source] {
                    put_str(b, s);
                }
                put_tool_parameters(b, scratch, &r.params, policy);
            }
            Detail::ToolResult(r) => {
                put_str(b, r.tool_name);
                put_str(b, r.tool_use_id);
                put_nullable(b, r.success.map(|ok| [u8::from(ok)]));
                b.extend_from_slice(&r.duration_ms.unwrap_or(0).to_le_bytes());
                put_str(b, r.error_type);
                put_content(b, scratch, r.error, policy.error);
                put_str(b, r.decision_type);
                put_str(b, r.decision_source);
                b.extend_from_slice(&r.tool_input_size_bytes.unwrap_or(0).to_le_bytes());
                b.extend_from_slice(&r.tool_result_size_bytes.unwrap_or(0).to_le_bytes());
                put_tool_parameters(b, scratch, &r.params, policy);
            }
            Detail::Kind(k) => {
                if k.kind.variant.is_some() {
                    put_str(b, k.variant);
                }
                for (c, cell) in k.kind.columns.iter().zip(&k.cells) {
                    match (c.ty, *cell) {
                        (Type::Content, Cell::Text(t)) => {
                            put_content(b, scratch, t, content::action_for(c.keys[0], policy))
                        }
                        (Type::LongContent, Cell::Text(t)) => match content::action_for(c.keys[0], policy) {
                            ContentAction::Drop => b.push(1),
                            action => {
                                b.push(0);
                                put_content(b, scratch, t, action);
                            }
                        },
                        (Type::LongContent, Cell::Absent) => b.push(1),
                        (_, Cell::Text(t)) => put_str(b, t),
                        (_, Cell::Absent) => put_str(b, ""),
                        (Type::U16, Cell::Num(n)) => put_nullable(b, n.map(|n| (n as u16).to_le_bytes())),
                        (Type::U32, Cell::Num(n)) => put_nullable(b, n.map(|n| (n as u32).to_le_bytes())),
                        (_, Cell::Num(n)) => put_nullable(b, n.map(u64::to_le_bytes)),
                        (_, Cell::Bool(v)) => put_nullable(b, v.map(|v| [u8::from(v)])),
                    }
                }
            }
            Detail::Other => unreachable!("returned above"),
        }
        b.extend_from_slice(&NORMALIZER_VERSION.to_le_bytes());
        counts[table as usize] += 1;
    }
}

impl Rows {
    /// Encodes one metric data point's `metric_points` row.
    pub fn push_point(&mut self, origin: &Origin<'_>, resource: &[Attr<'_>], point: &Point<'_>, p: &MetricPoint<'_>) {
        let Rows { bufs, counts, scratch } = self;
        let b = &mut bufs[Table::MetricPoints as usize];
        b.extend_from_slice(&p.point_id.to_be_bytes());
        b.extend_from_slice(&p.series_id.to_be_bytes());
        put_str(b, origin.tenant);
        b.extend_from_slice(&((p.timestamp_ns / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&p.event_day().to_le_bytes());
        b.extend_from_slice(&point.time_unix_nano.to_le_bytes());
        b.extend_from_slice(&point.start_time_unix_nano.to_le_bytes());
        put_str(b, p.time_source.as_str());
        put_str(b, point.metric);
        put_str(b, point.unit);
        put_str(b, point.kind.as_str());
        put_str(b, point.temporality.as_str());
        b.push(u8::from(point.monotonic));
        b.extend_from_slice(&p.value.to_le_bytes());
        put_str(b, p.value_type);
        b.extend_from_slice(&point.count.to_le_bytes());
        for v in [point.sum, point.min, point.max] {
            put_nullable(b, v.map(f64::to_le_bytes));
        }
        put_len(b, point.bucket_counts.len());
        for c in &point.bucket_counts {
            b.extend_from_slice(&c.to_le_bytes());
        }
        put_len(b, point.explicit_bounds.len());
        for x in &point.explicit_bounds {
            b.extend_from_slice(&x.to_le_bytes());
        }
        b.extend_from_slice(&point.flags.to_le_bytes());
        let i = &p.identity;
        for v in [
            i.service_name,
            p.service_version,
            i.terminal_type,
            i.session_id,
            i.user_email,
            i.user_id,
            i.user_account_uuid,
            i.user_account_id,
            i.organization_id,
            i.app_version,
            i.user_identity,
            i.user_identity_source,
            i.team,
            i.department,
            i.cost_center,
            p.app_entrypoint,
            p.model,
            p.model_variant,
            p.kind_type,
            p.start_type,
            p.tool_name,
            p.decision,
            p.source,
            p.language,
            p.query_source,
            p.speed,
            p.effort,
            p.agent_name,
            p.skill_name,
            p.plugin_name,
            p.marketplace_name,
            p.mcp_server_name,
            p.mcp_tool_name,
        ] {
            put_str(b, v);
        }
        put_untyped(b, scratch, &point.attributes, origin.policy, METRIC);
        put_attributes(b, scratch, resource, origin.policy);
        put_str(b, point.scope_name);
        put_origin(b, origin);
        counts[Table::MetricPoints as usize] += 1;
    }

    /// Encodes one span's `spans` row, content under the tenant's policy.
    pub fn push_span(&mut self, origin: &Origin<'_>, resource: &[Attr<'_>], span: &Span<'_>, s: &SpanRecord<'_>) {
        let Rows { bufs, counts, scratch } = self;
        let policy = origin.policy;
        let b = &mut bufs[Table::Spans as usize];
        for id in [s.trace_id, s.span_id, s.parent_span_id] {
            put_id(b, scratch, id);
        }
        put_str(b, origin.tenant);
        b.extend_from_slice(&((s.timestamp_ns / 1_000_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&s.event_day().to_le_bytes());
        b.extend_from_slice(&s.start_ns.to_le_bytes());
        b.extend_from_slice(&s.end_ns.to_le_bytes());
        put_str(b, s.time_source.as_str());
        b.extend_from_slice(&s.duration_ms.to_le_bytes());
        put_str(b, s.name);
        put_str(b, s.span_type);
        put_str(b, s.kind);
        put_str(b, s.status);
        put_content(b, scratch, s.status_message, policy.error);
        let i = &s.identity;
        for v in [
            i.service_name,
            s.service_version,
            i.terminal_type,
            i.session_id,
            i.prompt_id,
            i.user_email,
            i.user_id,
            i.user_account_uuid,
            i.organization_id,
            i.app_version,
            i.user_identity,
            i.user_identity_source,
            i.user_account_id,
            i.team,
            i.department,
            i.cost_center,
            s.model,
            s.model_variant,
            s.query_source,
            s.speed,
        ] {
            put_str(b, v);
        }
        put_nullable(b, s.ttft_ms.map(f64::to_le_bytes));
        put_str(b, s.stop_reason);
        for n in [
            s.input_tokens,
            s.output_tokens,
            s.cache_read_tokens,
            s.cache_creation_tokens,
            s.result_tokens,
        ] {
            put_nullable(b, n.map(u64::to_le_bytes));
        }
        put_str(b, s.request_id);
        put_nullable(b, s.attempt.map(|a| u32::try_from(a).unwrap_or(u32::MAX).to_le_bytes()));
        put_nullable(b, s.success.map(|ok| [u8::from(ok)]));
        put_nullable(b, s.http_status_code.map(u16::to_le_bytes));
        put_content(b, scratch, s.error, policy.error);
        for v in [s.tool_name, s.tool_use_id, s.decision, s.source] {
            put_str(b, v);
        }
        put_nullable_i64(b, s.interaction_sequence);
        put_nullable(b, s.user_prompt_length.map(u64::to_le_bytes));
        match (s.user_prompt, policy.prompt) {
            (Some(p), ContentAction::Keep | ContentAction::Hash) => {
                b.push(0);
                put_content(b, scratch, p, policy.prompt);
            }
            _ => b.push(1),
        }
        for v in [s.agent_id, s.parent_agent_id, s.hook_event, s.hook_name] {
            put_str(b, v);
        }
        b.extend_from_slice(&s.events.to_le_bytes());
        b.extend_from_slice(&s.links.to_le_bytes());
        put_untyped(b, scratch, &span.attributes, policy, SPAN);
        put_attributes(b, scratch, resource, policy);
        put_str(b, span.scope_name);
        put_origin(b, origin);
        counts[Table::Spans as usize] += 1;
    }
}

/// A trace or span id as lowercase hex ('' when absent), through the reused scratch string.
fn put_id(b: &mut Vec<u8>, scratch: &mut String, id: Id<'_>) {
    scratch.clear();
    id.write_hex(scratch);
    put_str(b, scratch);
}

/// The identity columns every typed table has after its first four ([`Table::columns`]).
fn put_typed_identity(b: &mut Vec<u8>, i: &Identity<'_>) {
    for v in [
        i.session_id,
        i.prompt_id,
        i.user_email,
        i.service_name,
        i.terminal_type,
        i.user_identity,
        i.user_identity_source,
        i.user_account_id,
        i.app_version,
        i.team,
        i.department,
        i.cost_center,
    ] {
        put_str(b, v);
    }
}

fn put_spend(b: &mut Vec<u8>, s: &Spend<'_>) {
    for v in [
        s.agent_name,
        s.skill_name,
        s.plugin_name,
        s.marketplace_name,
        s.mcp_server_name,
        s.mcp_tool_name,
        s.effort,
        s.workflow_run_id,
        s.workflow_name,
        s.client_request_id,
    ] {
        put_str(b, v);
    }
}

/// What `tool_parameters` says; the command under the `tool_parameters` policy.
fn put_tool_parameters(b: &mut Vec<u8>, scratch: &mut String, p: &ToolParameters<'_>, policy: &ContentPolicy) {
    for v in [
        &p.mcp_server_name,
        &p.mcp_tool_name,
        &p.skill_name,
        &p.subagent_type,
        &p.git_commit_id,
    ] {
        put_str(b, v);
    }
    put_content(b, scratch, &p.bash_command, content::action_for("bash_command", policy));
}

/// The receive time, the Kafka coordinates and the normalizer version that end a base row.
fn put_origin(b: &mut Vec<u8>, origin: &Origin<'_>) {
    b.extend_from_slice(&((origin.received_at_ns / 1_000_000_000) as u32).to_le_bytes());
    b.extend_from_slice(&origin.partition.to_le_bytes());
    b.extend_from_slice(&origin.offset.to_le_bytes());
    b.extend_from_slice(&NORMALIZER_VERSION.to_le_bytes());
}

/// The attributes without a typed column ([`signals::is_typed`]), as [`put_attributes`] writes
/// them.
fn put_untyped(b: &mut Vec<u8>, scratch: &mut String, attrs: &[Attr<'_>], policy: &ContentPolicy, context: &str) {
    put_attributes_where(b, scratch, attrs, policy, |a| !signals::is_typed(a.key, context))
}

fn put_len(b: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            b.push(byte);
            return;
        }
        b.push(byte | 0x80);
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_len(b, s.len());
    b.extend_from_slice(s.as_bytes());
}

/// A `Nullable(T)`: the null flag, then the value's little-endian bytes when there is one.
fn put_nullable<const N: usize>(b: &mut Vec<u8>, v: Option<[u8; N]>) {
    match v {
        Some(bytes) => {
            b.push(0);
            b.extend_from_slice(&bytes);
        }
        None => b.push(1),
    }
}

fn put_nullable_i64(b: &mut Vec<u8>, v: Option<i64>) {
    put_nullable(b, v.map(i64::to_le_bytes))
}

/// A content string under its policy: as sent, `sha256:<hex>`, or empty.
fn put_content(b: &mut Vec<u8>, scratch: &mut String, s: &str, action: ContentAction) {
    match action {
        ContentAction::Keep => put_str(b, s),
        ContentAction::Drop => put_str(b, ""),
        ContentAction::Hash if s.is_empty() => put_str(b, ""),
        ContentAction::Hash => {
            scratch.clear();
            scratch.push_str("sha256:");
            for byte in Sha256::digest(s.as_bytes()) {
                let _ = write!(scratch, "{byte:02x}");
            }
            put_str(b, scratch);
        }
    }
}

/// An attribute value as text ([`Value::write_text`]), through the reused scratch string.
fn put_value(b: &mut Vec<u8>, scratch: &mut String, v: &Value<'_>) {
    if let Value::Str(s) = v {
        return put_str(b, s);
    }
    scratch.clear();
    v.write_text(scratch);
    put_str(b, scratch);
}

/// Two parallel arrays, keys and values, with the content policy applied: dropped content is
/// left out of both, hashed content is stored as its hash.
fn put_attributes(b: &mut Vec<u8>, scratch: &mut String, attrs: &[Attr<'_>], policy: &ContentPolicy) {
    put_attributes_where(b, scratch, attrs, policy, |_| true)
}

/// [`put_attributes`] of the attributes `wanted` keeps. One pass writes the keys and counts
/// them (the count's one-byte placeholder grows in place past 127), a second the values.
fn put_attributes_where(
    b: &mut Vec<u8>,
    scratch: &mut String,
    attrs: &[Attr<'_>],
    policy: &ContentPolicy,
    wanted: impl Fn(&Attr<'_>) -> bool,
) {
    let keep_all = policy.keeps_all();
    let action = |a: &Attr<'_>| {
        if !wanted(a) {
            ContentAction::Drop
        } else if keep_all {
            ContentAction::Keep
        } else {
            content::action_for(a.key, policy)
        }
    };
    let at = b.len();
    b.push(0);
    let mut n = 0;
    for a in attrs {
        if action(a) != ContentAction::Drop {
            put_str(b, a.key);
            n += 1;
        }
    }
    if n < 0x80 {
        b[at] = n as u8;
    } else {
        let mut len = Vec::with_capacity(4);
        put_len(&mut len, n);
        b.splice(at..at + 1, len);
    }
    put_len(b, n);
    for a in attrs {
        match action(a) {
            ContentAction::Drop => {}
            ContentAction::Keep => put_value(b, scratch, &a.value),
            ContentAction::Hash => match &a.value {
                Value::Str(s) => put_content(b, scratch, s, ContentAction::Hash),
                other => put_content(b, scratch, &other.to_text(), ContentAction::Hash),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_leb128() {
        let mut b = Vec::new();
        put_len(&mut b, 0);
        put_len(&mut b, 127);
        put_len(&mut b, 128);
        put_len(&mut b, 300);
        assert_eq!(b, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
    }

    #[test]
    fn values_render_like_to_text() {
        let mut scratch = String::new();
        for v in [
            Value::Int(-42),
            Value::Double(0.0995565),
            Value::Bool(true),
            Value::Str("x"),
            Value::Empty,
            Value::Bytes(&[0xab, 0x01]),
            Value::Array(vec![Value::Str("/a \"b\""), Value::Int(1)]),
        ] {
            let mut b = Vec::new();
            put_value(&mut b, &mut scratch, &v);
            let mut want = Vec::new();
            put_str(&mut want, &v.to_text());
            assert_eq!(b, want, "{v:?}");
        }
    }

    #[test]
    fn raw_api_bodies_follow_the_stricter_of_prompt_and_response() {
        let policy = ContentPolicy {
            prompt: ContentAction::Drop,
            response: ContentAction::Hash,
            ..ContentPolicy::default()
        };
        assert_eq!(content::action_for("body", &policy), ContentAction::Drop);
        assert_eq!(
            content::action_for("body", &ContentPolicy::default()),
            ContentAction::Keep
        );
    }

    #[test]
    fn content_policy_hashes_and_drops_in_the_attribute_arrays() {
        let attrs = [
            Attr {
                key: "prompt",
                value: Value::Str("secret"),
            },
            Attr {
                key: "tool_input",
                value: Value::Str("{}"),
            },
            Attr {
                key: "model",
                value: Value::Str("m"),
            },
        ];
        let policy = ContentPolicy {
            prompt: ContentAction::Hash,
            tool_input: ContentAction::Drop,
            ..ContentPolicy::default()
        };
        let mut b = Vec::new();
        put_attributes(&mut b, &mut String::new(), &attrs, &policy);
        let mut want = Vec::new();
        put_len(&mut want, 2);
        put_str(&mut want, "prompt");
        put_str(&mut want, "model");
        put_len(&mut want, 2);
        put_str(
            &mut want,
            "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
        );
        put_str(&mut want, "m");
        assert_eq!(b, want);
    }

    #[test]
    fn attribute_arrays_past_127_entries_grow_their_length_in_place() {
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let attrs: Vec<Attr<'_>> = keys
            .iter()
            .map(|k| Attr {
                key: k,
                value: Value::Int(7),
            })
            .collect();
        let mut b = vec![0xee];
        put_attributes(&mut b, &mut String::new(), &attrs, &ContentPolicy::default());
        let mut want = vec![0xee];
        put_len(&mut want, 300);
        for k in &keys {
            put_str(&mut want, k);
        }
        put_len(&mut want, 300);
        for _ in &keys {
            put_str(&mut want, "7");
        }
        assert_eq!(b, want);
    }
}
