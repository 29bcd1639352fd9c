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
    /// `user_prompt.prompt`.
    pub prompt: ContentAction,
    /// `assistant_response.response`.
    pub response: ContentAction,
    /// `tool_parameters` (tool_result, tool_decision).
    pub tool_parameters: ContentAction,
    /// `tool_input` (tool_result).
    pub tool_input: ContentAction,
    /// Error text: `error` on api_error and tool_result.
    pub error: ContentAction,
}

/// The content policy's action for an attribute, by its key.
pub fn action_for(key: &str, policy: &ContentPolicy) -> ContentAction {
    match key {
        "prompt" => policy.prompt,
        "response" => policy.response,
        "tool_parameters" => policy.tool_parameters,
        "tool_input" => policy.tool_input,
        "error" | "error.message" => policy.error,
        // `api_request_body` / `api_response_body` events carry the raw API JSON, prompts and
        // responses included: the stricter of the two policies applies.
        "body" => policy.prompt.max(policy.response),
        _ => ContentAction::Keep,
    }
}
