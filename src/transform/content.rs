//! The content policy: what happens to prompts, responses, tool parameters and error text before
//! they are stored (keep, hash or drop), per tenant. A leaf the configuration deserializes into
//! and the row encoder applies.

use serde::Deserialize;

/// What happens to one kind of content before it is stored.
/// Ordered from the least to the most protective.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentAction {
    /// Store as sent (the default: the client decides what it sends).
    #[default]
    Keep,
    /// Store `sha256:<hex>` of the value: equal values stay comparable, the text is gone.
    Hash,
    /// Store nothing: typed columns NULL or empty, and the attribute left out of the arrays.
    Drop,
}

/// The content policy for one tenant: one action per kind of content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContentPolicy {
    /// `user_prompt.prompt`; on spans `user_prompt`, `user_system_prompt`,
    /// `system_prompt_preview` and `new_context`.
    pub prompt: ContentAction,
    /// `assistant_response.response`; on spans `response.model_output`.
    pub response: ContentAction,
    /// `tool_parameters` (tool_result, tool_decision) and the `bash_command` read from it; on
    /// spans and hook events `file_path`, `full_command`, `hook_definitions` and `hook_matcher`;
    /// an MCP connection's `server_name`.
    pub tool_parameters: ContentAction,
    /// `tool_input` (tool_result).
    pub tool_input: ContentAction,
    /// Error text: `error` on api_error, tool_result and the other events that carry one; a
    /// span's `error` and status message.
    pub error: ContentAction,
    /// `workspace.host_paths` (Cowork: the folders a session was given), in `events` and
    /// `workspace_paths_daily`. Keep by default; hash or drop for tenants that ask.
    pub host_paths: ContentAction,
}

impl ContentPolicy {
    /// True when every kind of content is stored as sent (the default): no key needs a lookup.
    pub fn keeps_all(&self) -> bool {
        *self == ContentPolicy::default()
    }
}

/// The content policy's action for an attribute, by its key.
pub fn action_for(key: &str, policy: &ContentPolicy) -> ContentAction {
    match key {
        // Span content (detailed beta tracing) follows the kind it carries.
        "prompt" | "user_prompt" | "user_system_prompt" | "system_prompt_preview" | "new_context" => policy.prompt,
        "response" | "response.model_output" => policy.response,
        "tool_parameters" | "file_path" | "full_command" | "hook_definitions" | "hook_matcher" | "server_name"
        | "bash_command" => policy.tool_parameters,
        "tool_input" => policy.tool_input,
        "error" | "error.message" => policy.error,
        // `api_request_body` / `api_response_body` events carry the raw API JSON, prompts and
        // responses included: the stricter of the two policies applies.
        "body" | "body_ref" => policy.prompt.max(policy.response),
        "workspace.host_paths" => policy.host_paths,
        _ => ContentAction::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_content_follows_the_kind_it_carries() {
        let policy = ContentPolicy {
            prompt: ContentAction::Drop,
            response: ContentAction::Hash,
            tool_parameters: ContentAction::Drop,
            ..ContentPolicy::default()
        };
        for key in [
            "prompt",
            "user_prompt",
            "user_system_prompt",
            "system_prompt_preview",
            "new_context",
        ] {
            assert_eq!(action_for(key, &policy), ContentAction::Drop, "{key}");
        }
        assert_eq!(action_for("response.model_output", &policy), ContentAction::Hash);
        for key in ["file_path", "full_command", "hook_definitions"] {
            assert_eq!(action_for(key, &policy), ContentAction::Drop, "{key}");
        }
        assert_eq!(action_for("ttft_ms", &policy), ContentAction::Keep);
        // Issue 12: hook matchers, MCP server names and body references are content too.
        for key in ["hook_matcher", "server_name", "bash_command"] {
            assert_eq!(action_for(key, &policy), ContentAction::Drop, "{key}");
        }
        assert_eq!(action_for("body_ref", &policy), ContentAction::Drop);
        assert_eq!(action_for("workspace.host_paths", &policy), ContentAction::Keep);
        let paths = ContentPolicy {
            host_paths: ContentAction::Hash,
            ..ContentPolicy::default()
        };
        assert_eq!(action_for("workspace.host_paths", &paths), ContentAction::Hash);
    }
}
