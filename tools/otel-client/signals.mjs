// Emits Claude Code / Cowork shaped METRICS (the 8 claude_code.* counters) and
// SPANS (interaction / llm_request / tool / tool.blocked_on_user /
// tool.execution) through the real OpenTelemetry JS SDK, and writes the
// aggregates a correct pipeline must reproduce.
//
// node signals.mjs --metrics-url http://127.0.0.1:4318/v1/metrics [--traces-url http://127.0.0.1:4318/v1/traces]
//                  --protocol proto|json --temporality delta|cumulative [--compression gzip|none]
//                  [--header "Authorization=Bearer KEY"] [--seed 7] [--sessions 8] [--intervals 3]
//                  [--base-ms EPOCH_MS] [--expected out.json]
//
// One simulated process per session: a MeterProvider (meter com.anthropic.claude_code,
// PeriodicExportingMetricReader with a 1 h interval, flushed by hand after each of
// --intervals intervals, the last one by shutdown) and, with --traces-url, a
// BasicTracerProvider + BatchSpanProcessor (tracer com.anthropic.claude_code.tracing,
// flushed with it; trace/span ids come from the seed too). Half way through
// the run one session's process restarts: its providers are shut down (which exports what
// they hold) and new ones start, so a cumulative series starts again from 0 with a new
// startTimeUnixNano, and the new process counts a session.count{start_type=resume}.
// The activity (every increment, attribute and span) depends only on --seed, --sessions
// and --intervals (span times also on --base-ms), never on protocol, temporality or whether spans
// are sent, so a delta run and a cumulative run must give the same totals.
// Metric timestamps are the SDK's wall clock; span times are explicit (from --base-ms).
// --expected: per-user and total sums (user keys below), breakdowns by start_type, model
// (metric labels with the [1m] suffix stripped), language, and span aggregates (ttft only
// over successful llm_request spans; errors = spans with status ERROR); spans is null
// without --traces-url. `sessions` is the number of sessions; users[].sessions/totals.sessions
// count session.count increments (the restart adds one start_type=resume).
import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { writeFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const metricsUrl = args['metrics-url'] ?? 'http://127.0.0.1:4318/v1/metrics';
const tracesUrl = args['traces-url'];
const protocol = args.protocol ?? 'proto';
const temporality = args.temporality ?? 'delta';
const compression = args.compression ?? 'none';
const seed = Number(args.seed ?? 7);
const nSessions = Number(args.sessions ?? 8);
const nIntervals = Number(args.intervals ?? 3);
const baseMs = Number(args['base-ms'] ?? (Date.now() - 3600_000));
if (!['proto', 'json'].includes(protocol) || !['delta', 'cumulative'].includes(temporality)) {
  console.error('--protocol must be proto|json and --temporality delta|cumulative'); process.exit(2);
}
const headers = {};
for (const h of (args.header ? [args.header] : [])) {
  const i = h.indexOf('=');
  headers[h.slice(0, i)] = h.slice(i + 1);
}

// Deterministic PRNG (mulberry32), as in gen.mjs. Span/trace ids come from a second
// stream so that turning spans on or off never shifts the activity.
const mulberry = (seed0) => { let s = seed0 >>> 0; return () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; };
const rnd = mulberry(seed);
const idRnd = mulberry(seed ^ 0x5bd1e995);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const weighted = (pairs) => { const r = rnd(); let acc = 0; for (const [v, p] of pairs) { acc += p; if (r < acc) return v; } return pairs[pairs.length - 1][0]; };
const hex = (n, r = rnd) => Array.from({ length: n }, () => Math.floor(r() * 16).toString(16)).join('');
const b62 = (n) => Array.from({ length: n }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 62)]).join('');
const uuid = () => 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
  const r = Math.floor(rnd() * 16); return (c === 'x' ? r : (r & 3) | 8).toString(16);
});

// Same org/user generation as gen.mjs, so a seed names the same people in both tools.
const orgs = [uuid(), uuid()];
const users = Array.from({ length: 12 }, (_, i) => ({
  email: `${['ana', 'bo', 'chen', 'dara', 'eli', 'fay', 'gus', 'hana', 'ivo', 'june', 'kai', 'lu'][i]}.${['müller', 'o\'neil', 'smith', 'nguyen'][i % 4]}@${i < 7 ? 'acme.example' : 'globex.example'}`,
  account_uuid: uuid(), org: orgs[i < 7 ? 0 : 1], user_id: Array.from({ length: 64 }, () => Math.floor(rnd() * 16).toString(16)).join(''),
}));
// [name, $/input token, $/output token, may carry the [1m] context suffix on metrics]
const models = [
  ['claude-opus-4-6', 15e-6, 75e-6, true], ['claude-sonnet-4-6', 3e-6, 15e-6, true], ['claude-haiku-4-5-20251001', 1e-6, 5e-6, false],
];
const editTools = ['Edit', 'Write', 'NotebookEdit', 'MultiEdit'];
const otherTools = ['Read', 'Bash', 'Grep'];
const languages = ['TypeScript', 'Python', 'Rust', 'Go', 'Markdown'];
const intervalMs = 600_000; // simulated span time between export intervals

// ---- expected aggregates -------------------------------------------------------------
const userKeys = ['lines_added', 'lines_removed', 'commits', 'pull_requests', 'active_time_user_s', 'active_time_cli_s', 'sessions',
  'edits_accepted', 'edits_rejected', 'cost_usd', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens'];
const zeroAgg = () => Object.fromEntries(userKeys.map((k) => [k, 0]));
const expected = {
  seed, temporality, protocol, sessions: nSessions, intervals: nIntervals, restarted_session: null,
  users: {}, totals: zeroAgg(), sessions_by_start_type: {}, lines_by_model: {}, edits_by_language: {}, cost_by_model: {}, tokens_by_model: {},
  spans: { count: 0, by_name: {}, ttft_ms_by_model: {}, blocked_on_user_ms: 0, stop_reasons: {}, errors: 0 },
};
const bump = (o, k, v = 1) => { o[k] = (o[k] ?? 0) + v; };
const bumpUser = (email, k, v) => { expected.users[email] ??= zeroAgg(); expected.users[email][k] += v; expected.totals[k] += v; };

// ---- exporters, counted like gen.mjs ---------------------------------------------------
let failedExports = 0; let lastError = ''; let points = 0; let spansSent = 0;
function counting(inner, size, onOk) {
  return {
    export(items, done) {
      inner.export(items, (result) => {
        if (result.code !== 0) { failedExports++; lastError = String(result.error?.message ?? result.error); } else onOk(size(items));
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
    // The metric reader asks the exporter for temporality/aggregation: a wrapper that
    // dropped these would silently turn a delta run into a cumulative one.
    ...(inner.selectAggregationTemporality ? { selectAggregationTemporality: (t) => inner.selectAggregationTemporality(t) } : {}),
    ...(inner.selectAggregation ? { selectAggregation: (t) => inner.selectAggregation(t) } : {}),
  };
}
const settle = async (ps) => { for (const r of await Promise.allSettled(ps)) if (r.status === 'rejected') lastError ||= String(r.reason?.message ?? r.reason); };
const countPoints = (rm) => rm.scopeMetrics.reduce((n, sm) => n + sm.metrics.reduce((m, md) => m + md.dataPoints.length, 0), 0);

const counterDefs = {
  session: ['claude_code.session.count', '', 'Count of CLI sessions started'],
  lines: ['claude_code.lines_of_code.count', '', 'Count of lines of code modified, with the \'type\' attribute indicating whether lines were added or removed'],
  pr: ['claude_code.pull_request.count', '', 'Number of pull requests created'],
  commit: ['claude_code.commit.count', '', 'Number of git commits created'],
  cost: ['claude_code.cost.usage', 'USD', 'Cost of the Claude Code session'],
  token: ['claude_code.token.usage', 'tokens', 'Number of tokens used'],
  decision: ['claude_code.code_edit_tool.decision', '', 'Count of code editing tool permission decisions (accept/reject) for Edit, Write, and NotebookEdit tools'],
  active: ['claude_code.active_time.total', 's', 'Total active time in seconds'],
};

// A simulated Claude Code process for one session: meter + optional tracer.
function startProcess(sess) {
  const resource = resourceFromAttributes(sess.resource);
  const version = sess.resource['service.version'];
  const mOpts = { url: metricsUrl, headers, compression, temporalityPreference: temporality === 'delta' ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE };
  const mInner = protocol === 'json' ? new JsonMetricExporter(mOpts) : new ProtoMetricExporter(mOpts);
  const reader = new PeriodicExportingMetricReader({ exporter: counting(mInner, countPoints, (n) => { points += n; }), exportIntervalMillis: 3600_000 });
  const meterProvider = new MeterProvider({ resource, readers: [reader] });
  const meter = meterProvider.getMeter('com.anthropic.claude_code', version);
  const counters = Object.fromEntries(Object.entries(counterDefs).map(([k, [name, unit, description]]) => [k, meter.createCounter(name, { unit, description })]));
  let tracerProvider = null; let tracer = null;
  if (tracesUrl) {
    const tOpts = { url: tracesUrl, headers, compression };
    const tInner = protocol === 'json' ? new JsonTraceExporter(tOpts) : new ProtoTraceExporter(tOpts);
    tracerProvider = new BasicTracerProvider({
      resource,
      idGenerator: { generateTraceId: () => hex(32, idRnd), generateSpanId: () => hex(16, idRnd) },
      // Long delay: batches are cut only by the explicit flush after each interval.
      spanProcessors: [new BatchSpanProcessor(counting(tInner, (s) => s.length, (n) => { spansSent += n; }), { maxExportBatchSize: 4096, maxQueueSize: 100000, scheduledDelayMillis: 3600_000 })],
    });
    tracer = tracerProvider.getTracer('com.anthropic.claude_code.tracing', version);
  }
  return {
    counters, tracer, seq: 0,
    // A failed span export also rejects the flush; it is already counted, so carry on.
    flush: () => settle([meterProvider.forceFlush(), tracerProvider?.forceFlush()]),
    shutdown: () => settle([meterProvider.shutdown(), tracerProvider?.shutdown()]),
  };
}

// ---- sessions ------------------------------------------------------------------------
const sessions = Array.from({ length: nSessions }, (_, si) => {
  const service = weighted([['claude-code', 0.7], ['cowork', 0.3]]);
  const user = pick(users);
  const sess = {
    si, service, user, sessionId: uuid(),
    terminal: service === 'cowork' ? 'non-interactive' : pick(['vscode', 'iTerm.app', 'tmux', 'cursor']),
    startType: weighted([['fresh', 0.5], ['resume', 0.2], ['continue', 0.15], ['agents_view', 0.15]]),
    model: weighted([[models[0], 0.45], [models[1], 0.45], [models[2], 0.1]]),
    ctx1m: rnd() < 0.5, // this process sends opus/sonnet metric labels as e.g. claude-opus-4-6[1m]
    effort: rnd() < 0.5 ? pick(['low', 'medium', 'high']) : null, // a session setting, sent on cost/token points
    resource: {
      'service.name': service, 'service.version': service === 'cowork' ? '1.17420.0' : '2.1.240',
      'os.type': pick(['darwin', 'linux', 'windows']), 'os.version': '25.5.0', 'host.arch': pick(['arm64', 'amd64']),
    },
    t: baseMs + si * 45_000 + int(0, 5000), // span clock
  };
  sess.std = {
    'session.id': sess.sessionId, 'user.email': user.email, 'user.account_uuid': user.account_uuid,
    'organization.id': user.org, 'user.id': user.user_id, 'terminal.type': sess.terminal,
  };
  return sess;
});
// The restart: first session that does real work, half way through the run.
const restartSess = nIntervals >= 2 ? sessions.find((s) => s.startType !== 'agents_view') : undefined;
const restartAt = Math.floor(nIntervals / 2);
if (restartSess) expected.restarted_session = { session_id: restartSess.sessionId, interval: restartAt, user: restartSess.user.email };

function countSession(sess, startType) {
  sess.proc.counters.session.add(1, { ...sess.std, start_type: startType });
  bumpUser(sess.user.email, 'sessions', 1); bump(expected.sessions_by_start_type, startType);
}

// A span with explicit times; `parent` is a span or null. Spans are built whether or not
// they are sent, so the PRNG stream is the same either way.
function span(sess, parent, name, startMs, endMs, attrs, error) {
  expected.spans.count++; bump(expected.spans.by_name, name); if (error) expected.spans.errors++;
  if (!sess.proc.tracer) return null;
  const ctx = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  const sp = sess.proc.tracer.startSpan(name, { startTime: new Date(startMs), attributes: { ...sess.std, 'span.type': name.replace(/^claude_code\./, ''), ...attrs } }, ctx);
  if (error) sp.setStatus({ code: SpanStatusCode.ERROR, message: error });
  return { sp, end: () => sp.end(new Date(endMs)) };
}

// One user prompt: active time, 1-3 API requests, tool calls; metrics and spans.
function prompt(sess) {
  const { counters: c } = sess.proc; const email = sess.user.email; const std = sess.std;
  const seq = ++sess.proc.seq;
  const userS = int(4, 120) * 0.5; const cliS = int(1, 400) * 0.25; // binary-exact fractions
  c.active.add(userS, { ...std, type: 'user' }); bumpUser(email, 'active_time_user_s', userS);
  c.active.add(cliS, { ...std, type: 'cli' }); bumpUser(email, 'active_time_cli_s', cliS);

  const t0 = sess.t; let t = t0 + int(5, 50);
  const children = []; // [parentIndex|-1, name, start, end, attrs, error]
  const nReq = int(1, 3);
  for (let q = 0; q < nReq; q++) {
    // Main-thread requests use the session's model, auxiliary ones (titles, summaries) haiku.
    const qs = weighted([['main', 0.7], ['subagent', 0.2], ['auxiliary', 0.1]]);
    const [model, inP, outP, may1m] = qs === 'main' ? sess.model : qs === 'auxiliary' ? models[2] : pick([sess.model, models[1], models[2]]);
    const label = may1m && sess.ctx1m ? `${model}[1m]` : model;
    const extra = sess.effort ? { effort: sess.effort } : {};
    if (rnd() < 0.1) extra['skill.name'] = pick(['pdf', 'xlsx', 'frontend-design']);
    const failed = rnd() < 0.08;
    const inTok = int(3, 40_000); const outTok = int(1, 4_000); const cr = int(0, 100_000); const cc = int(0, 20_000);
    const ttft = int(200, 3000); const dur = ttft + int(100, 30_000);
    const stop = q < nReq - 1 ? 'tool_use' : (rnd() < 0.1 ? 'max_tokens' : 'end_turn');
    const attrs = {
      model, 'gen_ai.system': 'anthropic', 'gen_ai.request.model': model, query_source: qs, 'llm_request.context': 'interaction',
      duration_ms: failed ? dur - ttft : dur, attempt: 1, request_id: `req_011C${b62(20)}`,
    };
    if (qs === 'subagent') { attrs.agent_id = `a${hex(16)}`; if (rnd() < 0.3) attrs.parent_agent_id = `a${hex(16)}`; }
    const reqEnd = t + attrs.duration_ms;
    if (failed) {
      Object.assign(attrs, { success: false, status_code: 529, error: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' });
      children.push([-1, 'claude_code.llm_request', t, reqEnd, attrs, 'API Error: 529 Overloaded']);
      t = reqEnd + int(5, 200);
      continue; // a failed request bills nothing and calls no tool
    }
    Object.assign(attrs, { ttft_ms: ttft, input_tokens: inTok, output_tokens: outTok, cache_read_tokens: cr, cache_creation_tokens: cc, stop_reason: stop, success: true, 'response.has_tool_call': stop === 'tool_use' });
    children.push([-1, 'claude_code.llm_request', t, reqEnd, attrs, null]);
    const tt = (expected.spans.ttft_ms_by_model[model] ??= { count: 0, sum: 0 }); tt.count++; tt.sum += ttft;
    bump(expected.spans.stop_reasons, stop);

    const cost = Math.round((inTok * inP + outTok * outP + cr * inP * 0.1 + cc * inP * 1.25) * 1e6) / 1e6;
    c.cost.add(cost, { ...std, model: label, query_source: qs, ...extra });
    bumpUser(email, 'cost_usd', cost); bump(expected.cost_by_model, model, cost);
    const tm = (expected.tokens_by_model[model] ??= { input: 0, output: 0, cache_read: 0, cache_creation: 0 });
    for (const [type, v, key, mk] of [['input', inTok, 'input_tokens', 'input'], ['output', outTok, 'output_tokens', 'output'], ['cacheRead', cr, 'cache_read_tokens', 'cache_read'], ['cacheCreation', cc, 'cache_creation_tokens', 'cache_creation']]) {
      if (v === 0) continue; // the client records only non-zero usage
      c.token.add(v, { ...std, type, model: label, query_source: qs, ...extra });
      bumpUser(email, key, v); tm[mk] += v;
    }
    t = reqEnd + int(5, 200);

    if (stop !== 'tool_use') continue;
    for (let k = int(1, 2); k > 0; k--) {
      const tool = rnd() < 0.6 ? pick(editTools) : pick(otherTools);
      const toolUseId = `toolu_01${b62(22)}`;
      const accept = rnd() < 0.85;
      const source = accept ? pick(['config', 'user_temporary', 'user_permanent', 'hook']) : pick(['user_reject', 'config', 'hook']);
      const blocked = source.startsWith('user') ? int(400, 45_000) : 0; // a permission prompt was shown
      const ti = children.length; const tStart = t;
      children.push([-1, 'claude_code.tool', tStart, 0, { tool_name: tool, tool_use_id: toolUseId, 'gen_ai.tool.call.id': toolUseId }, null]);
      let tc = tStart + 1;
      if (blocked) {
        children.push([ti, 'claude_code.tool.blocked_on_user', tc, tc + blocked, { duration_ms: blocked, decision: accept ? 'accept' : 'reject', source }, null]);
        expected.spans.blocked_on_user_ms += blocked; tc += blocked + 1;
      }
      let ok = false;
      if (accept) {
        const exec = int(5, 20_000); ok = rnd() < 0.92;
        const ea = { duration_ms: exec, tool_use_id: toolUseId, 'gen_ai.tool.call.id': toolUseId, success: ok };
        if (!ok) ea.error = 'Error: ENOENT: no such file or directory';
        children.push([ti, 'claude_code.tool.execution', tc, tc + exec, ea, ok ? null : ea.error]);
        tc += exec + 1;
      }
      const ta = children[ti]; ta[3] = tc; Object.assign(ta[4], { duration_ms: tc - tStart, result_tokens: accept ? int(10, 5000) : 12 });
      t = tc + int(5, 100);

      if (editTools.includes(tool)) {
        const language = pick(languages); const decision = accept ? 'accept' : 'reject';
        c.decision.add(1, { ...std, tool_name: tool, decision, source, language });
        bumpUser(email, accept ? 'edits_accepted' : 'edits_rejected', 1);
        (expected.edits_by_language[language] ??= { accept: 0, reject: 0 })[decision]++;
        if (ok) {
          const added = int(1, 120); const removed = int(0, 60);
          const lm = (expected.lines_by_model[model] ??= { added: 0, removed: 0 });
          c.lines.add(added, { ...std, type: 'added', model: label }); bumpUser(email, 'lines_added', added); lm.added += added;
          if (removed) { c.lines.add(removed, { ...std, type: 'removed', model: label }); bumpUser(email, 'lines_removed', removed); lm.removed += removed; }
        }
      } else if (tool === 'Bash' && ok) {
        if (rnd() < 0.5) { c.commit.add(1, { ...std }); bumpUser(email, 'commits', 1); }
        if (rnd() < 0.3) { c.pr.add(1, { ...std }); bumpUser(email, 'pull_requests', 1); }
      }
    }
  }
  const tEnd = t + int(5, 200);
  const promptLen = int(10, 2000);
  const root = span(sess, null, 'claude_code.interaction', t0, tEnd, { user_prompt: '<REDACTED>', user_prompt_length: promptLen, 'interaction.sequence': seq, 'interaction.duration_ms': tEnd - t0 }, null);
  const made = [];
  for (const [pi, name, s0, s1, attrs, err] of children) made.push(span(sess, pi < 0 ? root?.sp : made[pi]?.sp, name, s0, s1, attrs, err));
  for (const m of made.reverse()) m?.end();
  root?.end();
  sess.t = tEnd + int(1000, 30_000);
}

// ---- run -----------------------------------------------------------------------------
for (const sess of sessions) { sess.proc = startProcess(sess); countSession(sess, sess.startType); }
for (let iv = 0; iv < nIntervals; iv++) {
  for (const sess of sessions) {
    sess.t = Math.max(sess.t, baseMs + sess.si * 45_000 + iv * intervalMs);
    if (sess.startType === 'agents_view') continue; // agents-view launches do no work
    // Some intervals are idle: a delta export then has nothing new for that session.
    const nPrompts = rnd() < 0.2 ? 0 : int(1, 2);
    for (let p = 0; p <= nPrompts; p++) {
      if (sess === restartSess && iv === restartAt && p === Math.floor(nPrompts / 2)) {
        await sess.proc.shutdown(); // exports what the old process still holds
        sess.proc = startProcess(sess);
        countSession(sess, 'resume');
      }
      if (p < nPrompts) prompt(sess);
    }
  }
  // The last interval is exported by the shutdown below (a cumulative reader would
  // otherwise send the same values twice).
  if (iv < nIntervals - 1) await Promise.all(sessions.map((sess) => sess.proc.flush()));
}
await Promise.all(sessions.map((sess) => sess.proc.shutdown()));

const r6 = (v) => Math.round(v * 1e6) / 1e6;
for (const agg of [...Object.values(expected.users), expected.totals]) agg.cost_usd = r6(agg.cost_usd);
for (const k of Object.keys(expected.cost_by_model)) expected.cost_by_model[k] = r6(expected.cost_by_model[k]);
if (!tracesUrl) expected.spans = null;
if (args.expected) writeFileSync(args.expected, JSON.stringify(expected, null, 2));
console.log(`emitted ${points} points (${temporality}) in ${nSessions} sessions over ${nIntervals} intervals via ${protocol} to ${metricsUrl}`
  + `${tracesUrl ? `, ${spansSent} spans to ${tracesUrl}` : ''}; failed exports: ${failedExports}${lastError ? `, last error: ${lastError}` : ''}`);
if (failedExports > 0) process.exitCode = 1;
