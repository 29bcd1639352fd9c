// Emits one or more Claude Code / Cowork LOG EVENTS of every documented event kind, through
// the real OpenTelemetry JS SDK (LoggerProvider + BatchLogRecordProcessor, exporter-logs-otlp-
// proto or -http), from five "deployments" that identify users differently, and writes the rows
// a correct pipeline must store for them (tests of issue #12, design in src/transform/kinds.rs).
//
// node events.mjs --url http://127.0.0.1:4318/v1/logs --protocol proto|json [--seed 12]
//                 [--base-ms 1796115600000] [--header "Authorization=Bearer KEY"]
//                 [--compression none|gzip] [--expected expected.json]
//
// With --expected and no --url: write the expected file and exit without sending.
// With both: send, then write it. The records, ids and times depend only on --seed and
// --base-ms, never on the protocol, so a proto run and a json run send the same records.
//
// Everything comes from one definition: SCENARIO (below) lists every record (deployment,
// session, prompt, event name, attributes exactly as they go on the wire: JS strings become
// stringValue, integers intValue, other numbers doubleValue, booleans boolValue, arrays
// arrayValue). TABLES says, per table, which event(s) feed it and how each column is read from
// the record's attributes. The expected rows are computed from the same records that are sent.
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter as JsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import { writeFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const url = args.url;
const protocol = args.protocol ?? 'proto';
const seed = Number(args.seed ?? 12);
const baseMs = Number(args['base-ms'] ?? 1796115600000); // 2026-12-01T09:00:00Z
const compression = args.compression ?? 'none';
if (!['proto', 'json'].includes(protocol)) { console.error('--protocol must be proto|json'); process.exit(2); }
if (!url && !args.expected) { console.error('give --url (send) and/or --expected FILE'); process.exit(2); }
const headers = {};
for (const h of (args.header ? [args.header] : [])) {
  const i = h.indexOf('=');
  headers[h.slice(0, i)] = h.slice(i + 1);
}

// ---- deterministic randomness (mulberry32, as gen.mjs / signals.mjs) ----------------------
const mulberry = (seed0) => { let s = seed0 >>> 0; return () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; };
const rnd = mulberry(seed);
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const hex = (n) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join('');
const b62 = (n) => Array.from({ length: n }, () => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'[Math.floor(rnd() * 62)]).join('');
const uuid = () => 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
  const r = Math.floor(rnd() * 16); return (c === 'x' ? r : (r & 3) | 8).toString(16);
});
const toolUseId = () => `toolu_01${b62(22)}`;
const requestId = () => `req_011C${b62(20)}`;

// ---- deployments: one LoggerProvider (one resource) each ----------------------------------
// Resources carry service.name/service.version (never app.version) plus the
// OTEL_RESOURCE_ATTRIBUTES-style keys; `record` is what every record of the deployment carries
// besides session.id / terminal.type / event.*.
const orgId = uuid();
const DEPLOYMENTS = {
  a_1p: {
    description: '1P Claude account (CLI and Agent SDK): user.email and account ids on records; team.id, department, cost_center on the resource (OTEL_RESOURCE_ATTRIBUTES)',
    resource: { 'service.name': 'claude-code', 'service.version': '2.1.240', 'os.type': 'darwin', 'os.version': '25.5.0', 'host.arch': 'arm64', 'team.id': 'platform-eng', department: 'Engineering', cost_center: 'CC-1001' },
    identity_key: 'user.email',
  },
  b_bedrock: {
    description: 'Amazon Bedrock (no Claude account): user.id on records, enduser.id on the resource only (OTEL_RESOURCE_ATTRIBUTES), team on the record',
    resource: { 'service.name': 'claude-code', 'service.version': '2.1.238', 'os.type': 'linux', 'os.version': '6.8.0-110-generic', 'host.arch': 'amd64', 'enduser.id': 'jdoe@corp.example' },
    identity_key: 'enduser.id',
  },
  c_account: {
    description: 'Claude Desktop Code tab: user.account_id is the only identity key (records); team.name and dept on records, cost.center on the resource',
    resource: { 'service.name': 'claude-code-desktop', 'service.version': '2.1.239', 'os.type': 'windows', 'os.version': '10.0.26200', 'host.arch': 'amd64', 'cost.center': 'CC-2002' },
    identity_key: 'user.account_id',
  },
  d_cowork3p: {
    description: 'Cowork on a third-party deployment: process.owner on the resource only, no account attributes, no team/department/cost_center anywhere (the tests attribute it with a per-key default); traces on, so every record carries trace/span ids',
    resource: { 'service.name': 'cowork', 'service.version': '1.17420.0', 'os.type': 'darwin', 'os.version': '25.5.0', 'host.arch': 'arm64', 'process.owner': 'mfischer' },
    identity_key: 'process.owner',
  },
  e_userid: {
    description: 'API-key Claude Code 2.1.100 (before 2.1.122: api_request/api_error numbers are strings): user.id is the only identity key',
    resource: { 'service.name': 'claude-code', 'service.version': '2.1.100', 'os.type': 'linux', 'os.version': '6.1.0-28-amd64', 'host.arch': 'amd64' },
    identity_key: 'user.id',
  },
};

const users = {
  ana: { 'user.id': hex(64), 'organization.id': orgId, 'user.email': 'ana.müller@acme.example', 'user.account_uuid': uuid(), 'user.account_id': `user_01${b62(22)}` },
  bo: { 'user.id': hex(64), 'organization.id': orgId, 'user.email': "bo.o'neil@acme.example", 'user.account_uuid': uuid(), 'user.account_id': `user_01${b62(22)}` },
  bedrock: { 'user.id': hex(64) },
  desktop: { 'user.account_id': `user_01${b62(22)}` },
  apikey: { 'user.id': hex(64) },
};

// Sessions: deployment, record-level identity/attribution, terminal, host paths, tracing.
// tracing: 'none'; 'prompt' (each prompt has its own interaction span; records outside a
// prompt carry no ids); 'inbound' (Agent SDK with TRACEPARENT: every record carries the
// inbound W3C trace/span ids); 'all' (Cowork 3P with otlpTracesEnabled: every record in a span).
const SESSIONS = {
  A1: { dep: 'a_1p', record: users.ana, terminal: 'vscode', tracing: 'prompt' },
  A2: { dep: 'a_1p', record: { ...users.bo, department: 'Research' }, terminal: 'non-interactive', tracing: 'inbound',
    inbound: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' } },
  B1: { dep: 'b_bedrock', record: { ...users.bedrock, team: 'ml-infra' }, terminal: 'tmux', tracing: 'none' },
  C1: { dep: 'c_account', record: { ...users.desktop, 'team.name': 'payments', dept: 'Finance' }, terminal: 'non-interactive', tracing: 'none',
    hostPaths: ['C:\\Users\\lwong\\source\\payments-api'] },
  D1: { dep: 'd_cowork3p', record: {}, terminal: 'non-interactive', tracing: 'all',
    hostPaths: ['/Users/mfischer/Documents', '/Volumes/Shared/Q3 Reports'] },
  E1: { dep: 'e_userid', record: users.apikey, terminal: 'xterm-256color', tracing: 'none' },
};
for (const s of Object.values(SESSIONS)) s.id = uuid();

// ---- the records ------------------------------------------------------------------------
// Each entry: [session, promptKey|null, event name, wire attributes]. promptKey groups records
// under one prompt.id (and one interaction span when the session traces per prompt).
const json = (o) => JSON.stringify(o);
const money = (usd) => ({ cost_usd: usd, cost_usd_micros: Math.round(usd * 1e6) }); // 6-decimal costs: both forms agree
const attribution = { 'agent.name': 'general-purpose', 'skill.name': 'pdf', 'plugin.name': 'document-skills', 'marketplace.name': 'anthropic-agent-skills', 'mcp_server.name': 'github', 'mcp_tool.name': 'create_pull_request' };
const workflow = { 'workflow.run_id': `wf_${b62(20)}`, 'workflow.name': 'custom' };
const hash = () => hex(16);
const pluginHashOfficial = hash(); const pluginHashAcme = hash(); const pluginHashThird = hash();
const tu = { mcp: toolUseId(), bashHook: toolUseId(), bashCommit: toolUseId(), agent: toolUseId(), skill: toolUseId(), bashB: toolUseId(), mcpC: toolUseId(), readD: toolUseId(), writeD: toolUseId(), editE: toolUseId() };
const rq = { a1: requestId(), a2: requestId(), a3: requestId(), a4: requestId(), b1: requestId(), b2: requestId(), c1: requestId(), d1: requestId(), e1: requestId() };
const commitSha = hex(40);
const appearance = uuid();
const tpMcp = json({ mcp_server_name: 'github', mcp_tool_name: 'create_pull_request' });
const tpBashBlocked = json({ bash_command: 'rm -rf ~/.ssh', full_command: 'rm -rf ~/.ssh', timeout: 120000, description: 'Remove SSH directory', dangerouslyDisableSandbox: false });
const tpBashCommitDecision = json({ bash_command: 'git commit -m "fix: flaky payments test"', full_command: 'git commit -m "fix: flaky payments test"', timeout: 120000, description: 'Commit the fix', dangerouslyDisableSandbox: false });
const tpBashCommitResult = json({ bash_command: 'git commit -m "fix: flaky payments test"', full_command: 'git commit -m "fix: flaky payments test"', timeout: 120000, description: 'Commit the fix', dangerouslyDisableSandbox: false, git_commit_id: commitSha });
const tpAgent = json({ subagent_type: 'Explore' });
const tpSkill = json({ skill_name: 'xlsx' });
const tpBashB = json({ bash_command: 'npm test -- payments', full_command: 'cd /srv/repo && npm test -- payments', timeout: 600000, description: 'Run the payments tests', dangerouslyDisableSandbox: false });
const tpMcpC = json({ mcp_server_name: 'Claude in Chrome', mcp_tool_name: 'navigate' });
const hookDefsSessionStart = json([{ type: 'command', command: '~/.claude/hooks/session-start.sh', timeout: 30 }]);
const hookDefsPreToolUse = json([{ type: 'command', command: '/Library/Application Support/ClaudeCode/hooks/deny-secrets.sh' }, { type: 'command', command: 'npx audit-bash' }]);
const reqBody = json({ model: 'claude-opus-4-6', max_tokens: 32000, system: [{ type: 'text', text: 'You are Claude Code.' }], messages: [{ role: 'user', content: 'Plan the payments retry refactor' }], tools: [{ name: 'Bash' }, { name: 'Read' }] });
const respBody = json({ id: 'msg_01' + b62(22), type: 'message', role: 'assistant', content: [{ type: 'text', text: 'Here is the plan: 1. extract the retry policy…' }], stop_reason: 'end_turn', usage: { input_tokens: 4120, output_tokens: 388 } });
const prompts = {
  a1: 'Fix the flaky test in payments/ and open a PR',
  a2: 'Plan the payments retry refactor',
  a3: 'Summarise sales.xlsx into a table',
  d1: 'Summarise the Q3 board deck',
};
const responses = { a1: "I'll look at the payments test first.", a3: '| region | total |\n|---|---|\n| EMEA | 1.2M |', d1: 'The Q3 board deck covers revenue (+12%), hiring and the EMEA launch.' };

const SCENARIO = [
  // ---------------- A1: 1P CLI session, tracing per prompt, OTEL_LOG_TOOL_DETAILS=1 ----------------
  ['A1', null, 'plugin_loaded', { 'plugin.name': 'code-review', 'marketplace.name': 'claude-plugins-official', 'plugin.version': '1.2.0', 'plugin.scope': 'official', enabled_via: 'user-install', plugin_id_hash: pluginHashOfficial, has_hooks: true, has_mcp: false, host_owned_mcp: false, skill_path_count: 1, command_path_count: 2, agent_path_count: 0, safe_mode: 'false' }],
  ['A1', null, 'hook_registered', { hook_event: 'PreToolUse', hook_type: 'command', hook_source: 'policySettings', safe_mode: 'false', hook_matcher: 'Bash' }],
  ['A1', null, 'hook_registered', { hook_event: 'Stop', hook_type: 'command', hook_source: 'pluginHook', safe_mode: 'false', 'plugin.name': 'code-review', plugin_id_hash: pluginHashOfficial }],
  ['A1', null, 'mcp_server_connection', { status: 'connected', transport_type: 'stdio', server_scope: 'project', duration_ms: '1050', is_plugin: false, server_name: 'github' }],
  ['A1', null, 'mcp_server_connection', { status: 'failed', transport_type: 'http', server_scope: 'user', duration_ms: '30012', error_code: 'ETIMEDOUT', is_plugin: true, plugin_id_hash: pluginHashAcme, 'plugin.name': 'acme-lint', server_name: 'acme-lint-mcp', error: 'MCP server "acme-lint-mcp" connection timed out after 30000ms' }],
  ['A1', null, 'hook_execution_start', { hook_event: 'SessionStart', hook_name: 'SessionStart:startup', num_hooks: '1', managed_only: 'false', hook_source: 'merged', safe_mode: 'false', hook_definitions: hookDefsSessionStart }],
  ['A1', null, 'hook_execution_complete', { hook_event: 'SessionStart', hook_name: 'SessionStart:startup', num_hooks: '1', num_success: '1', num_blocking: '0', num_non_blocking_error: '0', num_cancelled: '0', total_duration_ms: '84', managed_only: 'false', hook_source: 'merged', safe_mode: 'false', hook_definitions: hookDefsSessionStart }],
  ['A1', null, 'retention_sweep', { result: 'complete', period_days: 30, used_default: 'true', transcripts_deleted: 12, transcripts_exempted_desktop: 0, session_files_deleted: 31, artifacts_deleted: 40, files_retained_fresh: 118, files_past_cutoff: 0, error_count: 0 }],
  ['A1', null, 'auth', { action: 'login', success: 'false', auth_method: 'oauth', error_category: 'http_error', status_code: '401' }],
  ['A1', null, 'auth', { action: 'login', success: 'false', auth_method: 'oauth', error_category: 'http_error', status_code: '403' }],
  ['A1', null, 'auth', { action: 'login', success: 'false', auth_method: 'oauth', error_category: 'network' }],
  ['A1', null, 'auth', { action: 'login', success: 'true', auth_method: 'oauth' }],
  ['A1', null, 'plugin_installed', { 'marketplace.is_official': 'true', 'install.trigger': 'ui', 'plugin.name': 'code-review', 'plugin.version': '1.2.0', 'marketplace.name': 'claude-plugins-official' }],
  ['A1', null, 'plugin_installed', { 'marketplace.is_official': 'false', 'install.trigger': 'cli', 'plugin.name': 'acme-lint', 'plugin.version': '0.4.1', 'marketplace.name': 'acme-internal' }],
  ['A1', 'a1', 'user_prompt', { prompt_length: String(prompts.a1.length), prompt: prompts.a1, 'message.uuid': uuid() }],
  ['A1', 'a1', 'at_mention', { mention_type: 'file', success: 'true' }],
  ['A1', 'a1', 'skill_activated', { 'skill.name': 'pdf', invocation_trigger: 'claude-proactive', 'skill.source': 'plugin', 'plugin.name': 'document-skills', 'marketplace.name': 'anthropic-agent-skills' }],
  ['A1', 'a1', 'api_request', { model: 'claude-opus-4-6', ...money(0.148215), input_tokens: 3, output_tokens: 412, cache_read_tokens: 18230, cache_creation_tokens: 4096, duration_ms: 6123, request_id: rq.a1, client_request_id: uuid(), speed: 'normal', query_source: 'repl_main_thread', effort: 'high', ...attribution, ...workflow }],
  ['A1', 'a1', 'assistant_response', { response_length: responses.a1.length, response: responses.a1, model: 'claude-opus-4-6', request_id: rq.a1, 'message.uuid': uuid(), query_source: 'repl_main_thread' }],
  ['A1', 'a1', 'tool_decision', { tool_name: 'mcp__github__create_pull_request', tool_use_id: tu.mcp, decision: 'accept', source: 'config', tool_source: 'mcp', tool_parameters: tpMcp }],
  ['A1', 'a1', 'tool_result', { tool_name: 'mcp__github__create_pull_request', tool_use_id: tu.mcp, success: 'true', duration_ms: '812', decision_type: 'accept', decision_source: 'config', tool_input_size_bytes: '164', tool_result_size_bytes: '2310', mcp_server_scope: 'project', tool_parameters: tpMcp, tool_input: json({ title: 'Fix flaky payments test', base: 'main' }) }],
  ['A1', 'a1', 'hook_execution_start', { hook_event: 'PreToolUse', hook_name: 'PreToolUse:Bash', num_hooks: '2', managed_only: 'true', hook_source: 'policySettings', safe_mode: 'false', hook_definitions: hookDefsPreToolUse }],
  ['A1', 'a1', 'hook_execution_complete', { hook_event: 'PreToolUse', hook_name: 'PreToolUse:Bash', num_hooks: '2', num_success: '1', num_blocking: '1', num_non_blocking_error: '0', num_cancelled: '0', total_duration_ms: '37', managed_only: 'true', hook_source: 'policySettings', safe_mode: 'false', hook_definitions: hookDefsPreToolUse }],
  ['A1', 'a1', 'tool_decision', { tool_name: 'Bash', tool_use_id: tu.bashHook, decision: 'reject', source: 'hook', tool_source: 'builtin', tool_parameters: tpBashBlocked }],
  ['A1', 'a1', 'tool_decision', { tool_name: 'Bash', tool_use_id: tu.bashCommit, decision: 'accept', source: 'user_temporary', tool_source: 'builtin', tool_parameters: tpBashCommitDecision }],
  ['A1', 'a1', 'tool_result', { tool_name: 'Bash', tool_use_id: tu.bashCommit, success: 'true', duration_ms: '402', decision_type: 'accept', decision_source: 'user_temporary', tool_input_size_bytes: '117', tool_result_size_bytes: '316', tool_parameters: tpBashCommitResult }],
  ['A1', null, 'permission_mode_changed', { from_mode: 'default', to_mode: 'plan', trigger: 'shift_tab' }], // between prompts: no prompt.id, no span
  ['A1', 'a2', 'user_prompt', { prompt_length: String(prompts.a2.length), prompt: prompts.a2, 'message.uuid': uuid() }],
  ['A1', 'a2', 'api_request_body', { body: reqBody, body_length: reqBody.length, model: 'claude-opus-4-6', query_source: 'repl_main_thread' }],
  ['A1', 'a2', 'api_request', { model: 'claude-opus-4-6', ...money(0.091845), input_tokens: 4120, output_tokens: 388, cache_read_tokens: 0, cache_creation_tokens: 0, duration_ms: 9870, request_id: rq.a2, client_request_id: uuid(), speed: 'normal', query_source: 'repl_main_thread', effort: 'medium' }],
  ['A1', 'a2', 'api_response_body', { body: respBody, body_length: 71342, body_truncated: 'true', model: 'claude-opus-4-6', query_source: 'repl_main_thread', request_id: rq.a2 }],
  ['A1', 'a2', 'api_refusal', { model: 'claude-opus-4-6', request_id: rq.a3, query_source: 'repl_main_thread', speed: 'normal', attempt: 1, effort: 'medium', server_fallback_hop: false, has_category: true, has_explanation: true, category: 'cyber', 'skill.name': 'pdf', 'plugin.name': 'document-skills', 'marketplace.name': 'anthropic-agent-skills' }],
  ['A1', 'a2', 'permission_mode_changed', { from_mode: 'plan', to_mode: 'acceptEdits', trigger: 'exit_plan_mode' }],
  ['A1', 'a2', 'permission_mode_changed', { from_mode: 'acceptEdits', to_mode: 'bypassPermissions', trigger: 'shift_tab' }],
  ['A1', 'a2', 'tool_decision', { tool_name: 'Agent', tool_use_id: tu.agent, decision: 'accept', source: 'config', tool_source: 'builtin', tool_parameters: tpAgent }],
  ['A1', 'a2', 'subagent_completed', { agent_type: 'Explore', 'agent.source': 'built-in', is_built_in: true, is_async: false, total_tokens: 18234, total_tool_uses: 7, duration_ms: 40211, model: 'claude-haiku-4-5-20251001', final_model: 'claude-haiku-4-5-20251001', model_swapped: false }],
  ['A1', 'a2', 'tool_result', { tool_name: 'Agent', tool_use_id: tu.agent, success: 'true', duration_ms: '40390', decision_type: 'accept', decision_source: 'config', tool_input_size_bytes: '342', tool_result_size_bytes: '5120', tool_parameters: tpAgent }],
  ['A1', 'a2', 'compaction', { trigger: 'auto', success: 'true', duration_ms: '5400', pre_tokens: '155000', post_tokens: '31000' }],
  ['A1', 'a2', 'api_error', { model: 'claude-opus-4-6', error: 'Overloaded', status_code: 529, duration_ms: 184002, attempt: 11, request_id: rq.a4, client_request_id: uuid(), speed: 'normal', query_source: 'repl_main_thread', effort: 'medium', ...attribution, ...workflow }],
  ['A1', 'a2', 'api_retries_exhausted', { model: 'claude-opus-4-6', error: 'Overloaded', status_code: 529, total_attempts: 11, total_retry_duration_ms: 184002, speed: 'normal', query_source: 'repl_main_thread', effort: 'medium' }],
  ['A1', 'a2', 'internal_error', { error_name: 'Error', error_code: 'ENOENT' }],
  ['A1', 'a2', 'hook_plugin_metrics', { plugin_id: 'code-review@claude-plugins-official', hook_event: 'Stop', findings: 3, high_severity: 1, review_cost_usd: 0.0123, blocked: false }],
  ['A1', 'a2', 'feedback_survey', { event_type: 'appeared', appearance_id: appearance, survey_type: 'session', enabled_via_override: true }],
  ['A1', 'a2', 'feedback_survey', { event_type: 'responded', appearance_id: appearance, survey_type: 'session', response: 'good', enabled_via_override: true }],
  ['A1', 'a2', 'some_future_event', { future_mode: 'experimental', future_count: '3', future_flag: true }],
  // ---------------- A2: 1P Agent SDK (-p) session, inbound TRACEPARENT, department on records ----------------
  ['A2', null, 'permission_mode_changed', { from_mode: 'default', to_mode: 'bypassPermissions' }], // from the SDK: no trigger
  ['A2', 'a3', 'user_prompt', { prompt_length: String(prompts.a3.length), prompt: prompts.a3, 'message.uuid': uuid() }],
  ['A2', 'a3', 'api_request', { model: 'claude-sonnet-4-6', ...money(0.021537), input_tokens: 1820, output_tokens: 977, cache_read_tokens: 0, cache_creation_tokens: 0, duration_ms: 14230, request_id: requestId(), client_request_id: uuid(), speed: 'fast', query_source: 'sdk', effort: 'low', 'skill.name': 'xlsx', 'plugin.name': 'document-skills', 'marketplace.name': 'anthropic-agent-skills' }],
  ['A2', 'a3', 'tool_decision', { tool_name: 'Skill', tool_use_id: tu.skill, decision: 'accept', source: 'user_permanent', tool_source: 'builtin', tool_parameters: tpSkill }],
  ['A2', 'a3', 'tool_result', { tool_name: 'Skill', tool_use_id: tu.skill, duration_ms: '2210', decision_type: 'accept', decision_source: 'user_permanent', tool_input_size_bytes: '41', tool_result_size_bytes: '880', tool_parameters: tpSkill }], // no `success`
  ['A2', 'a3', 'assistant_response', { response_length: responses.a3.length, response: responses.a3, model: 'claude-sonnet-4-6', 'message.uuid': uuid(), query_source: 'sdk' }],
  // ---------------- B1: Bedrock, identity on the resource (enduser.id), team on records, tool details off ----------------
  ['B1', null, 'hook_registered', { hook_event: 'UserPromptSubmit', hook_type: 'http', hook_source: 'userSettings', safe_mode: 'false' }],
  ['B1', null, 'plugin_loaded', { 'plugin.name': 'third-party', 'marketplace.name': 'third-party', 'plugin.scope': 'user-local', enabled_via: 'user-install', plugin_id_hash: pluginHashThird, has_hooks: false, has_mcp: true, host_owned_mcp: false, skill_path_count: 2, command_path_count: 0, agent_path_count: 1, safe_mode: 'false' }],
  ['B1', null, 'mcp_server_connection', { status: 'connected', transport_type: 'sse', server_scope: 'user', duration_ms: '1502', is_plugin: true, plugin_id_hash: pluginHashThird, 'plugin.name': 'third-party' }],
  ['B1', 'b1', 'user_prompt', { prompt_length: '58', prompt: '<REDACTED>' }],
  ['B1', 'b1', 'skill_activated', { 'skill.name': 'custom_skill', invocation_trigger: 'user-slash', 'skill.source': 'userSettings', 'skill.kind': 'workflow' }],
  ['B1', 'b1', 'at_mention', { mention_type: 'directory', success: 'false' }],
  ['B1', 'b1', 'api_request_body', { body_ref: `/var/log/claude-bodies/${uuid()}.request.json`, body_length: 48211, model: 'claude-sonnet-4-6', query_source: 'repl_main_thread' }],
  ['B1', 'b1', 'api_request', { model: 'claude-sonnet-4-6', ...money(0.035112), input_tokens: 9, output_tokens: 1204, cache_read_tokens: 40210, cache_creation_tokens: 1820, duration_ms: 21877, request_id: rq.b1, speed: 'normal', query_source: 'repl_main_thread', effort: 'high', 'agent.name': 'custom' }],
  ['B1', 'b1', 'api_response_body', { body_ref: `/var/log/claude-bodies/${rq.b1}.response.json`, body_length: 6733, model: 'claude-sonnet-4-6', query_source: 'repl_main_thread', request_id: rq.b1 }],
  ['B1', 'b1', 'api_refusal', { model: 'claude-sonnet-4-6', request_id: rq.b2, query_source: 'repl_main_thread', speed: 'normal', attempt: 1, effort: 'high', server_fallback_hop: true }],
  ['B1', 'b1', 'tool_decision', { tool_name: 'Bash', tool_use_id: tu.bashB, decision: 'accept', source: 'config', tool_source: 'builtin', tool_parameters: tpBashB }],
  ['B1', 'b1', 'tool_result', { tool_name: 'Bash', tool_use_id: tu.bashB, success: 'false', duration_ms: '61230', error_type: 'ShellError', decision_type: 'accept', decision_source: 'config', tool_input_size_bytes: '98', tool_result_size_bytes: '14022', tool_parameters: tpBashB }],
  ['B1', 'b1', 'subagent_completed', { agent_type: 'custom', 'agent.source': 'plugin', is_built_in: false, is_async: true, total_tokens: 64012, total_tool_uses: 23, duration_ms: 312450, model: 'claude-opus-4-6', final_model: 'claude-sonnet-4-6', model_swapped: true, plugin_id_hash: pluginHashThird, 'plugin.name': 'third-party' }],
  ['B1', 'b1', 'api_error', { model: 'claude-sonnet-4-6', error: 'Connection error.', duration_ms: 12007, attempt: 3, speed: 'normal', query_source: 'repl_main_thread', effort: 'high' }], // non-HTTP: no status_code
  ['B1', 'b1', 'api_retries_exhausted', { model: 'claude-sonnet-4-6', error: 'Connection error.', total_attempts: 3, total_retry_duration_ms: 12007, speed: 'normal', query_source: 'repl_main_thread', effort: 'high' }],
  ['B1', 'b2', 'compaction', { trigger: 'manual', success: 'true', duration_ms: '3120', pre_tokens: '120400', post_tokens: '22010', precompute_reuse: 'hit' }],
  ['B1', 'b2', 'compaction', { trigger: 'auto', success: 'false', duration_ms: '950', pre_tokens: '198000', error: 'Conversation too long to compact' }],
  ['B1', 'b2', 'permission_mode_changed', { from_mode: 'default', to_mode: 'auto', trigger: 'auto_opt_in' }],
  // ---------------- C1: Desktop Code tab, user.account_id only; team.name/dept on records, cost.center on the resource ----------------
  ['C1', null, 'plugin_loaded', { 'plugin.name': 'frontend-design', 'marketplace.name': 'claude-plugins-official', 'plugin.version': '2.0.3', 'plugin.scope': 'default-bundle', enabled_via: 'default-enable', plugin_id_hash: hash(), has_hooks: false, has_mcp: false, host_owned_mcp: true, skill_path_count: 1, command_path_count: 0, agent_path_count: 0, safe_mode: 'true' }],
  ['C1', null, 'plugin_installed', { 'marketplace.is_official': 'false', 'install.trigger': 'cli' }], // third-party, names gated off
  ['C1', null, 'retention_sweep', { result: 'skipped', skip_reason: 'settings_unknowable', period_days: 30, used_default: 'false' }],
  ['C1', null, 'mcp_server_connection', { status: 'disconnected', transport_type: 'claudeai-proxy', server_scope: 'user', duration_ms: '0', is_plugin: false }],
  ['C1', 'c1', 'user_prompt', { prompt_length: '7', prompt: '<REDACTED>', command_name: 'review', command_source: 'builtin' }],
  ['C1', 'c1', 'hook_execution_start', { hook_event: 'UserPromptSubmit', hook_name: 'UserPromptSubmit', num_hooks: '1', managed_only: 'false', hook_source: 'merged', safe_mode: 'false' }],
  ['C1', 'c1', 'hook_execution_complete', { hook_event: 'UserPromptSubmit', hook_name: 'UserPromptSubmit', num_hooks: '1', num_success: '0', num_blocking: '0', num_non_blocking_error: '1', num_cancelled: '0', total_duration_ms: '1200', managed_only: 'false', hook_source: 'merged', safe_mode: 'false' }],
  ['C1', 'c1', 'api_request', { model: 'claude-sonnet-4-6', ...money(0.004933), input_tokens: 387, output_tokens: 45, cache_read_tokens: 0, cache_creation_tokens: 0, duration_ms: 2218, request_id: rq.c1, client_request_id: uuid(), speed: 'normal', query_source: 'repl_main_thread' }],
  ['C1', 'c1', 'assistant_response', { response_length: 212, response: '<REDACTED>', model: 'claude-sonnet-4-6', request_id: rq.c1, 'message.uuid': uuid(), query_source: 'repl_main_thread' }],
  ['C1', 'c1', 'tool_decision', { tool_name: 'mcp__Claude_in_Chrome__navigate', tool_use_id: tu.mcpC, decision: 'accept', source: 'user_temporary', tool_source: 'sdk_host_builtin_mcp', tool_parameters: tpMcpC }],
  ['C1', 'c1', 'tool_result', { tool_name: 'mcp__Claude_in_Chrome__navigate', tool_use_id: tu.mcpC, success: 'true', duration_ms: '1877', decision_type: 'accept', decision_source: 'user_temporary', tool_input_size_bytes: '52', tool_result_size_bytes: '731', mcp_server_scope: 'dynamic', tool_parameters: tpMcpC }],
  ['C1', 'c1', 'internal_error', { error_name: 'SyntaxError' }],
  ['C1', null, 'feedback_survey', { event_type: 'transcript_prompt_appeared', appearance_id: uuid(), survey_type: 'session', enabled_via_override: false }],
  ['C1', null, 'auth', { action: 'logout', success: 'true', auth_method: 'oauth' }],
  // ---------------- D1: Cowork 3P, process.owner on the resource, no team anywhere, traces on ----------------
  ['D1', 'd1', 'user_prompt', { prompt_length: String(prompts.d1.length), prompt: prompts.d1 }],
  ['D1', 'd1', 'api_request', { model: 'claude-sonnet-4-6', ...money(0.062118), input_tokens: 12033, output_tokens: 1502, cache_read_tokens: 0, cache_creation_tokens: 8811, duration_ms: 18004, request_id: rq.d1, speed: 'normal', query_source: 'repl_main_thread' }],
  ['D1', 'd1', 'tool_decision', { tool_name: 'Read', tool_use_id: tu.readD, decision: 'accept', source: 'config', tool_source: 'builtin' }],
  ['D1', 'd1', 'tool_result', { tool_name: 'Read', tool_use_id: tu.readD, success: 'true', duration_ms: '62', decision_type: 'accept', decision_source: 'config', tool_input_size_bytes: '88', tool_result_size_bytes: '40211' }],
  ['D1', 'd1', 'tool_decision', { tool_name: 'Write', tool_use_id: tu.writeD, decision: 'reject', source: 'user_reject', tool_source: 'builtin' }],
  ['D1', 'd1', 'assistant_response', { response_length: responses.d1.length, response: responses.d1, model: 'claude-sonnet-4-6', request_id: rq.d1, query_source: 'repl_main_thread' }],
  ['D1', 'd1', 'api_error', { model: 'claude-sonnet-4-6', error: 'Request was aborted.', status_code: 'undefined', duration_ms: 3002, attempt: 1, speed: 'normal', query_source: 'repl_main_thread' }], // Cowork doc: string or "undefined"
  // ---------------- E1: API key, Claude Code 2.1.100, user.id only, numbers as strings ----------------
  ['E1', 'e1', 'user_prompt', { prompt_length: '22', prompt: '<REDACTED>' }],
  ['E1', 'e1', 'api_request', { model: 'claude-haiku-4-5-20251001', cost_usd: '0.018432', input_tokens: '3', output_tokens: '13', cache_read_tokens: '0', cache_creation_tokens: '14720', duration_ms: '2504', request_id: rq.e1, speed: 'normal' }],
  ['E1', 'e1', 'tool_decision', { tool_name: 'Edit', tool_use_id: tu.editE, decision: 'accept', source: 'user_permanent' }],
  ['E1', 'e1', 'tool_result', { tool_name: 'Edit', tool_use_id: tu.editE, success: 'true', duration_ms: '35', decision_type: 'accept', decision_source: 'user_permanent', tool_input_size_bytes: '733', tool_result_size_bytes: '457' }],
  ['E1', 'e1', 'api_error', { model: 'claude-haiku-4-5-20251001', error: 'Request failed with status 429', status_code: '429', attempt: '4', duration_ms: '31022' }],
];

// ---- the typed tables: which events feed each, and how each column is read -------------
// Column types: s = String ('' when absent); S = Nullable(String); u = UInt, 0 when absent;
// n = Nullable number; b = Nullable boolean (true/false/null); d = Decimal (cost_usd).
// A source is an attribute key, `tp:<key>` (a key of the tool_parameters JSON) or a function.
const ATTRIBUTION_COLS = { agent_name: ['s', 'agent.name'], skill_name: ['s', 'skill.name'], plugin_name: ['s', 'plugin.name'], marketplace_name: ['s', 'marketplace.name'], mcp_server_name: ['s', 'mcp_server.name'], mcp_tool_name: ['s', 'mcp_tool.name'] };
const API_EXTRA_COLS = { ...ATTRIBUTION_COLS, effort: ['s', 'effort'], workflow_run_id: ['s', 'workflow.run_id'], workflow_name: ['s', 'workflow.name'], client_request_id: ['s', 'client_request_id'] };
const TOOL_PARAM_COLS = { mcp_server_name: ['s', 'tp:mcp_server_name'], mcp_tool_name: ['s', 'tp:mcp_tool_name'], skill_name: ['s', 'tp:skill_name'], subagent_type: ['s', 'tp:subagent_type'], git_commit_id: ['s', 'tp:git_commit_id'], bash_command: ['s', 'tp:bash_command'] };
const TABLES = {
  api_requests: { events: ['api_request'], cols: { model: ['s', 'model'], cost_usd: ['d', 'cost_usd'], cost_usd_micros: ['n', 'cost_usd_micros'], input_tokens: ['u', 'input_tokens'], output_tokens: ['u', 'output_tokens'], cache_read_tokens: ['u', 'cache_read_tokens'], cache_creation_tokens: ['u', 'cache_creation_tokens'], duration_ms: ['u', 'duration_ms'], speed: ['s', 'speed'], query_source: ['s', 'query_source'], request_id: ['s', 'request_id'], ...API_EXTRA_COLS } },
  api_errors: { events: ['api_error'], cols: { model: ['s', 'model'], error: ['s', 'error'], status_code: ['n', 'status_code'], attempt: ['u', 'attempt'], duration_ms: ['u', 'duration_ms'], request_id: ['s', 'request_id'], query_source: ['s', 'query_source'], speed: ['s', 'speed'], ...API_EXTRA_COLS } },
  user_prompts: { events: ['user_prompt'], cols: { prompt_length: ['u', 'prompt_length'], prompt: ['P', 'prompt'], command_name: ['s', 'command_name'] } },
  tool_decisions: { events: ['tool_decision'], cols: { tool_name: ['s', 'tool_name'], tool_use_id: ['s', 'tool_use_id'], decision: ['s', 'decision'], source: ['s', 'source'], tool_source: ['s', 'tool_source'], ...TOOL_PARAM_COLS } },
  tool_results: { events: ['tool_result'], cols: { tool_name: ['s', 'tool_name'], tool_use_id: ['s', 'tool_use_id'], success: ['b', 'success'], duration_ms: ['u', 'duration_ms'], error_type: ['s', 'error_type'], error: ['s', 'error'], decision_type: ['s', 'decision_type'], decision_source: ['s', 'decision_source'], tool_input_size_bytes: ['u', 'tool_input_size_bytes'], tool_result_size_bytes: ['u', 'tool_result_size_bytes'], ...TOOL_PARAM_COLS } },
  assistant_responses: { events: ['assistant_response'], cols: { model: ['s', 'model'], request_id: ['s', 'request_id'], message_uuid: ['s', 'message.uuid'], query_source: ['s', 'query_source'], response_length: ['n', 'response_length'], response: ['S', 'response'] } },
  api_refusals: { events: ['api_refusal'], cols: { model: ['s', 'model'], request_id: ['s', 'request_id'], query_source: ['s', 'query_source'], speed: ['s', 'speed'], attempt: ['n', 'attempt'], effort: ['s', 'effort'], server_fallback_hop: ['b', 'server_fallback_hop'], has_category: ['b', 'has_category'], has_explanation: ['b', 'has_explanation'], category: ['s', 'category'], ...ATTRIBUTION_COLS } },
  permission_mode_changes: { events: ['permission_mode_changed'], cols: { from_mode: ['s', 'from_mode'], to_mode: ['s', 'to_mode'], trigger: ['s', 'trigger'] } },
  auth_events: { events: ['auth'], cols: { action: ['s', 'action'], success: ['b', 'success'], auth_method: ['s', 'auth_method'], error_category: ['s', 'error_category'], status_code: ['n', 'status_code'] } },
  mcp_server_connections: { events: ['mcp_server_connection'], cols: { status: ['s', 'status'], transport_type: ['s', 'transport_type'], server_scope: ['s', 'server_scope'], duration_ms: ['n', 'duration_ms'], error_code: ['s', 'error_code'], is_plugin: ['b', 'is_plugin'], plugin_id_hash: ['s', 'plugin_id_hash'], plugin_name: ['s', 'plugin.name'], server_name: ['s', 'server_name'], error: ['s', 'error'] } },
  plugin_installs: { events: ['plugin_installed'], cols: { plugin_name: ['s', 'plugin.name'], plugin_version: ['s', 'plugin.version'], marketplace_name: ['s', 'marketplace.name'], marketplace_is_official: ['b', 'marketplace.is_official'], install_trigger: ['s', 'install.trigger'] } },
  plugin_loads: { events: ['plugin_loaded'], cols: { plugin_name: ['s', 'plugin.name'], plugin_version: ['s', 'plugin.version'], marketplace_name: ['s', 'marketplace.name'], plugin_scope: ['s', 'plugin.scope'], enabled_via: ['s', 'enabled_via'], plugin_id_hash: ['s', 'plugin_id_hash'], has_hooks: ['b', 'has_hooks'], has_mcp: ['b', 'has_mcp'], host_owned_mcp: ['b', 'host_owned_mcp'], skill_path_count: ['n', 'skill_path_count'], command_path_count: ['n', 'command_path_count'], agent_path_count: ['n', 'agent_path_count'], safe_mode: ['b', 'safe_mode'] } },
  skill_activations: { events: ['skill_activated'], cols: { skill_name: ['s', 'skill.name'], skill_source: ['s', 'skill.source'], skill_kind: ['s', 'skill.kind'], invocation_trigger: ['s', 'invocation_trigger'], plugin_name: ['s', 'plugin.name'], marketplace_name: ['s', 'marketplace.name'] } },
  hook_registrations: { events: ['hook_registered'], cols: { hook_event: ['s', 'hook_event'], hook_type: ['s', 'hook_type'], hook_source: ['s', 'hook_source'], safe_mode: ['b', 'safe_mode'], hook_matcher: ['s', 'hook_matcher'], plugin_name: ['s', 'plugin.name'], plugin_id_hash: ['s', 'plugin_id_hash'] } },
  hook_executions: { events: ['hook_execution_start', 'hook_execution_complete'], cols: { phase: ['s', (name) => (name === 'hook_execution_start' ? 'start' : 'complete')], hook_event: ['s', 'hook_event'], hook_name: ['s', 'hook_name'], hook_source: ['s', 'hook_source'], num_hooks: ['n', 'num_hooks'], managed_only: ['b', 'managed_only'], safe_mode: ['b', 'safe_mode'], num_success: ['n', 'num_success'], num_blocking: ['n', 'num_blocking'], num_non_blocking_error: ['n', 'num_non_blocking_error'], num_cancelled: ['n', 'num_cancelled'], total_duration_ms: ['n', 'total_duration_ms'], hook_definitions: ['S', 'hook_definitions'] } },
  compactions: { events: ['compaction'], cols: { trigger: ['s', 'trigger'], success: ['b', 'success'], duration_ms: ['n', 'duration_ms'], pre_tokens: ['n', 'pre_tokens'], post_tokens: ['n', 'post_tokens'], precompute_reuse: ['s', 'precompute_reuse'], error: ['s', 'error'] } },
  subagent_runs: { events: ['subagent_completed'], cols: { agent_type: ['s', 'agent_type'], agent_source: ['s', 'agent.source'], is_built_in: ['b', 'is_built_in'], is_async: ['b', 'is_async'], model: ['s', 'model'], final_model: ['s', 'final_model'], model_swapped: ['b', 'model_swapped'], total_tokens: ['n', 'total_tokens'], total_tool_uses: ['n', 'total_tool_uses'], duration_ms: ['n', 'duration_ms'], plugin_name: ['s', 'plugin.name'], plugin_id_hash: ['s', 'plugin_id_hash'] } },
  api_retries_exhausted: { events: ['api_retries_exhausted'], cols: { model: ['s', 'model'], speed: ['s', 'speed'], status_code: ['n', 'status_code'], total_attempts: ['n', 'total_attempts'], total_retry_duration_ms: ['n', 'total_retry_duration_ms'], query_source: ['s', 'query_source'], effort: ['s', 'effort'], error: ['s', 'error'] } },
  internal_errors: { events: ['internal_error'], cols: { error_name: ['s', 'error_name'], error_code: ['s', 'error_code'] } },
  feedback_surveys: { events: ['feedback_survey'], cols: { event_type: ['s', 'event_type'], survey_type: ['s', 'survey_type'], appearance_id: ['s', 'appearance_id'], response: ['s', 'response'], enabled_via_override: ['b', 'enabled_via_override'] } },
  retention_sweeps: { events: ['retention_sweep'], cols: { result: ['s', 'result'], skip_reason: ['s', 'skip_reason'], period_days: ['n', 'period_days'], used_default: ['b', 'used_default'], transcripts_deleted: ['n', 'transcripts_deleted'], session_files_deleted: ['n', 'session_files_deleted'], artifacts_deleted: ['n', 'artifacts_deleted'], files_retained_fresh: ['n', 'files_retained_fresh'], files_past_cutoff: ['n', 'files_past_cutoff'], error_count: ['n', 'error_count'] } },
  at_mentions: { events: ['at_mention'], cols: { mention_type: ['s', 'mention_type'], success: ['b', 'success'] } },
  api_bodies: { events: ['api_request_body', 'api_response_body'], cols: { direction: ['s', (name) => (name === 'api_request_body' ? 'request' : 'response')], model: ['s', 'model'], query_source: ['s', 'query_source'], request_id: ['s', 'request_id'], body_length: ['n', 'body_length'], body_truncated: ['b', 'body_truncated'], body: ['S', 'body'], body_ref: ['s', 'body_ref'] } },
};
const EVENTS_ONLY = ['hook_plugin_metrics', 'some_future_event'];
const UNDOCUMENTED = ['some_future_event'];

// ---- identity and attribution (issue 12 "Identity and team columns") ----------------------
const IDENTITY_KEYS = ['user.email', 'enduser.id', 'user.account_id', 'process.owner', 'user.id'];
const ATTR_KEYS = { team: ['team', 'team.id', 'team.name', 'team_name'], department: ['department', 'dept'], cost_center: ['cost_center', 'cost.center', 'costcenter'] };
const text = (v) => (v === undefined || v === null ? '' : String(v));
function identity(rec, res) {
  for (const k of IDENTITY_KEYS) {
    const v = text(rec[k]) || text(res[k]);
    if (v) return [v, k];
  }
  return ['', ''];
}
function attributed(keys, rec, res) {
  // Layer first (any key on the record, then any on the resource). The corpus is built so
  // that "key first, record before resource" gives the same answer; that is checked below.
  let layerFirst = '';
  for (const layer of [rec, res]) { for (const k of keys) if (!layerFirst && text(layer[k])) layerFirst = text(layer[k]); }
  let keyFirst = '';
  for (const k of keys) if (!keyFirst) keyFirst = text(rec[k]) || text(res[k]);
  if (layerFirst !== keyFirst) throw new Error(`ambiguous attribution ${keys}: ${layerFirst} vs ${keyFirst}`);
  return layerFirst;
}

// ---- coercion of a wire value to the stored value ----------------------------------------
function coerce(type, v) {
  const absent = v === undefined;
  switch (type) {
    case 's': return absent ? '' : String(v);
    case 'S': return absent ? null : String(v);
    // user_prompts.prompt: the client's `<REDACTED>` (prompts not logged) is stored as NULL.
    case 'P': return absent || v === '<REDACTED>' ? null : String(v);
    case 'u': case 'n': case 'd': {
      let x = null;
      if (typeof v === 'number') x = v;
      else if (typeof v === 'boolean') x = v ? 1 : 0;
      else if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) x = Number(v);
      if (x === null) return type === 'n' ? null : 0;
      return x;
    }
    case 'b': {
      if (typeof v === 'boolean') return v;
      if (v === 'true') return true;
      if (v === 'false') return false;
      return null;
    }
    default: throw new Error(`type ${type}`);
  }
}

// ---- build the records (ids, times, sequence, trace context) -----------------------------
const sessionState = {};
let clock = 0;
const built = [];
for (const [sk, pk, name, attrs] of SCENARIO) {
  const sess = SESSIONS[sk];
  const dep = DEPLOYMENTS[sess.dep];
  const st = (sessionState[sk] ??= { seq: 0, prompts: {} });
  let prompt = null;
  if (pk) prompt = (st.prompts[pk] ??= { id: uuid(), traceId: hex(32), spanId: hex(16) });
  // One record per second of corpus time, so `timestamp` (DateTime, seconds) is unique and
  // serves as the join key between the expected rows and the stored ones.
  const t = baseMs + clock++ * 1000 + int(0, 899);
  let span = null;
  if (sess.tracing === 'inbound') span = sess.inbound;
  else if (prompt && (sess.tracing === 'prompt' || sess.tracing === 'all')) span = prompt;
  const rec = {
    ...sess.record,
    'session.id': sess.id,
    'terminal.type': sess.terminal,
    'event.name': name,
    'event.timestamp': new Date(t).toISOString(),
    'event.sequence': st.seq++,
    ...(prompt ? { 'prompt.id': prompt.id } : {}),
    ...(sess.hostPaths ? { 'workspace.host_paths': sess.hostPaths } : {}),
    ...attrs,
  };
  built.push({ sk, name, t, rec, res: dep.resource, dep: sess.dep, span });
}

// ---- expected rows ------------------------------------------------------------------------
const dateTime = (ms) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
function common(b) {
  const { rec, res } = b;
  const [who, whoKey] = identity(rec, res);
  return {
    timestamp: dateTime(b.t),
    session_id: text(rec['session.id']),
    prompt_id: text(rec['prompt.id']),
    user_email: text(rec['user.email']),
    service_name: text(res['service.name']),
    terminal_type: text(rec['terminal.type']),
    user_identity: who,
    user_identity_source: whoKey,
    user_account_id: text(rec['user.account_id']),
    team: attributed(ATTR_KEYS.team, rec, res),
    department: attributed(ATTR_KEYS.department, rec, res),
    cost_center: attributed(ATTR_KEYS.cost_center, rec, res),
    app_version: text(rec['app.version']) || text(res['app.version']) || text(res['service.version']),
  };
}
const expected = { seed, base_ms: baseMs };
for (const [table, def] of Object.entries(TABLES)) {
  expected[table] = built.filter((b) => def.events.includes(b.name)).map((b) => {
    const row = common(b);
    const tp = b.rec.tool_parameters ? JSON.parse(b.rec.tool_parameters) : {};
    for (const [col, [type, src]] of Object.entries(def.cols)) {
      let v;
      if (typeof src === 'function') v = src(b.name);
      else if (src.startsWith('tp:')) v = tp[src.slice(3)];
      else v = b.rec[src];
      row[col] = coerce(type, v);
    }
    return row;
  });
}
expected.events = built.map((b) => {
  const { rec } = b;
  const c = common(b);
  return {
    event_name: b.name,
    body: `claude_code.${b.name}`,
    timestamp: c.timestamp,
    time_source: 'record',
    service_name: c.service_name,
    terminal_type: c.terminal_type,
    session_id: c.session_id,
    prompt_id: c.prompt_id,
    event_sequence: rec['event.sequence'],
    user_email: c.user_email,
    user_id: text(rec['user.id']),
    user_account_uuid: text(rec['user.account_uuid']),
    organization_id: text(rec['organization.id']),
    app_version: c.app_version,
    workspace_host_paths: rec['workspace.host_paths'] ?? [],
    user_identity: c.user_identity,
    user_identity_source: c.user_identity_source,
    user_account_id: c.user_account_id,
    team: c.team,
    department: c.department,
    cost_center: c.cost_center,
    trace_id: b.span ? b.span.traceId : '',
    span_id: b.span ? b.span.spanId : '',
  };
});
// Every event name of the corpus must land somewhere on purpose.
const typedEvents = new Set(Object.values(TABLES).flatMap((d) => d.events));
for (const b of built) if (!typedEvents.has(b.name) && !EVENTS_ONLY.includes(b.name)) throw new Error(`no table for ${b.name}`);
expected.deployments = Object.fromEntries(Object.entries(DEPLOYMENTS).map(([id, d]) => {
  const sessions = Object.entries(SESSIONS).filter(([, s]) => s.dep === id);
  const mine = built.filter((b) => b.dep === id);
  const byEvent = {};
  for (const b of mine) byEvent[b.name] = (byEvent[b.name] ?? 0) + 1;
  return [id, {
    description: d.description,
    service_name: d.resource['service.name'],
    service_version: d.resource['service.version'],
    identity_key: d.identity_key,
    identity_on: IDENTITY_KEYS.filter((k) => d.resource[k] !== undefined).length ? 'resource' : 'record',
    resource_attributes: d.resource,
    sessions: sessions.map(([sk, s]) => ({ session_id: s.id, terminal_type: s.terminal, tracing: s.tracing, record_attributes: s.record, ...(s.hostPaths ? { workspace_host_paths: s.hostPaths } : {}) })),
    records: mine.length,
    by_event: byEvent,
  }];
}));
expected.notes = [
  'Rows hold the values stored with no per-key default attributes. team/department/cost_center are "" exactly when neither record nor resource carried any key of that list, so with a key created with --attr team=X every "" team becomes X (same for department, cost_center).',
  'timestamp (DateTime, seconds, UTC) is unique over the whole corpus: use it to pair expected and stored rows. events rows can also be paired on (session_id, event_sequence).',
  'Booleans are true/false/null; on a server without Bool, a Nullable(UInt8) column stores them as 1/0/NULL (tool_results.success included).',
  'api_requests.cost_usd: every record carrying cost_usd_micros carries a 6-decimal cost_usd equal to micros/1e6, so both readings agree.',
];
expected.undocumented = UNDOCUMENTED;
expected.events_only = EVENTS_ONLY;
expected.table_events = Object.fromEntries(Object.entries(TABLES).map(([t, d]) => [t, d.events]));
expected.counts = { records: built.length, ...Object.fromEntries(Object.keys(TABLES).map((t) => [t, expected[t].length])) };

function writeExpected() {
  // One row per line: small, and diffs stay readable.
  const keys = Object.keys(expected);
  const parts = keys.map((k) => {
    const v = expected[k];
    if (Array.isArray(v) && v.length && typeof v[0] === 'object') return `${JSON.stringify(k)}: [\n  ${v.map((r) => JSON.stringify(r)).join(',\n  ')}\n]`;
    return `${JSON.stringify(k)}: ${JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ')}`;
  });
  writeFileSync(args.expected, `{\n${parts.join(',\n')}\n}\n`);
}

// ---- send ----------------------------------------------------------------------------------
if (url) {
  let failedExports = 0; let lastError = ''; let sent = 0;
  const providers = {};
  for (const [id, d] of Object.entries(DEPLOYMENTS)) {
    const inner = protocol === 'json' ? new JsonExporter({ url, headers, compression }) : new ProtoExporter({ url, headers, compression });
    const exporter = {
      export(records, done) {
        inner.export(records, (result) => {
          if (result.code !== 0) { failedExports++; lastError = String(result.error?.message ?? result.error); } else sent += records.length;
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    };
    const provider = new LoggerProvider({
      resource: resourceFromAttributes(d.resource),
      // Flushed by hand once per deployment, so each deployment is one request body.
      processors: [new BatchLogRecordProcessor({ exporter, maxExportBatchSize: 512, scheduledDelayMillis: 3_600_000, maxQueueSize: 2048 })],
    });
    providers[id] = { provider, logger: provider.getLogger('com.anthropic.claude_code.events', d.resource['service.version']) };
  }
  for (const b of built) {
    const context = b.span
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: b.span.traceId, spanId: b.span.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: b.sk === 'A2' })
      : ROOT_CONTEXT;
    providers[b.dep].logger.emit({ timestamp: b.t, observedTimestamp: b.t, body: `claude_code.${b.name}`, attributes: b.rec, context });
  }
  // In deployment order, one at a time, so the capture numbers files deterministically.
  for (const { provider } of Object.values(providers)) {
    await provider.forceFlush();
    await provider.shutdown();
  }
  console.log(`sent ${sent}/${built.length} records from ${Object.keys(DEPLOYMENTS).length} deployments via ${protocol} to ${url}; failed exports: ${failedExports}${lastError ? `, last error: ${lastError}` : ''}`);
  if (failedExports > 0 || sent !== built.length) process.exitCode = 1;
}
if (args.expected) {
  writeExpected();
  console.log(`wrote ${args.expected}: ${built.length} records, ${Object.keys(TABLES).length} typed tables`);
}
