//! Auto-response policy (BEHAVIOR.md §4.3) and audit records (§4.5).

use serde::{Deserialize, Serialize};

use crate::explain::PromptHit;
use crate::rules::{PromptType, Response};

/// Audit ring size per session.
pub const AUDIT_CAPACITY: usize = 200;

/// Which answers a session may give by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoResponsePolicy {
    /// Adapter rules only report; session rules still answer (set when a coordinator supervises).
    pub skip_adapter_auto_response: bool,
    /// Approval categories the session's preset auto-approves (`file_read`, `file_write`, `shell`,
    /// `web`, `agent`, `planning`, `user_interaction`). A `permission` rule with a category outside
    /// this list only reports. Empty = no preset: every category-gated rule reports.
    pub approved_categories: Vec<String>,
    /// Whether a classifier's suggested answer may be typed (default off).
    pub classifier_auto_respond: bool,
}

impl AutoResponsePolicy {
    /// Whether the preset auto-approves this category.
    pub fn approves(&self, category: &str) -> bool {
        self.approved_categories.iter().any(|c| c == category)
    }
}

/// Why a matched prompt was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    /// The rule has no response.
    NoResponse,
    /// The rule is not marked `safe: true`.
    NotSafe,
    /// A `once` rule already answered in this session.
    OnceUsed,
    /// `skip_adapter_auto_response` is set and this is an adapter rule.
    AdapterResponsesOff,
    /// The preset does not auto-approve the rule's category.
    PresetGate,
}

/// Decide whether a matched prompt is answered (policy steps 3–5 of §4.3; ordering is the
/// caller's: the first matching rule is the one passed in).
pub fn decide(
    policy: &AutoResponsePolicy,
    prompt: &PromptHit,
    once_used: bool,
) -> Result<Response, ReportReason> {
    let Some(response) = prompt.response.clone() else {
        return Err(ReportReason::NoResponse);
    };
    if !prompt.safe {
        return Err(ReportReason::NotSafe);
    }
    if prompt.once && once_used {
        return Err(ReportReason::OnceUsed);
    }
    if policy.skip_adapter_auto_response && !prompt.session_rule {
        return Err(ReportReason::AdapterResponsesOff);
    }
    if prompt.prompt_type == PromptType::Permission
        && let Some(cat) = &prompt.category
        && !policy.approves(cat)
    {
        return Err(ReportReason::PresetGate);
    }
    Ok(response)
}

/// Who decided an automatic input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSource {
    /// A session (runtime) rule.
    Session,
    /// An adapter manifest rule.
    Adapter,
    /// The stall classifier's suggestion.
    Classifier,
    /// A supervising coordinator.
    Supervisor,
    /// A hook decision.
    Hook,
}

/// One automatic input, as kept in the per-session audit ring and sent as `auto_response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Wall-clock time, ms since the Unix epoch.
    pub at_ms: u64,
    /// Session id (empty in the bare state machine; the manager fills it in).
    pub session_id: String,
    /// The turn it happened in.
    pub turn: u64,
    /// Rule id, or `classifier`, `supervisor:<decision>`, `hook:<event>`.
    pub rule_id: String,
    /// Who decided.
    pub source: AuditSource,
    /// Prompt type.
    pub prompt_type: PromptType,
    /// The prompt text, ≤ 200 chars.
    pub prompt_excerpt: String,
    /// What was sent (`text:y`, `keys:down,enter`; `<redacted>` when secret).
    pub sent: String,
}

/// Cut to at most `max` chars, whitespace collapsed.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let collapsed = collapse_ws(text);
    collapsed.chars().take(max).collect()
}

/// Whitespace runs (incl. newlines) to one space, trimmed.
pub(crate) fn collapse_ws(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(safe: bool, once: bool, session: bool, cat: Option<&str>) -> PromptHit {
        PromptHit {
            rule_id: "r".into(),
            prompt_type: if cat.is_some() {
                PromptType::Permission
            } else {
                PromptType::Config
            },
            kind: None,
            text: "Q?".into(),
            matched: "Q?".into(),
            response: Some(Response::Keys(vec!["enter".into()])),
            safe,
            once,
            category: cat.map(str::to_owned),
            secret: false,
            description: None,
            session_rule: session,
        }
    }

    #[test]
    fn policy_table() {
        let none = AutoResponsePolicy::default();
        let skip = AutoResponsePolicy {
            skip_adapter_auto_response: true,
            ..Default::default()
        };
        let permissive = AutoResponsePolicy {
            approved_categories: vec!["file_read".into(), "file_write".into()],
            ..Default::default()
        };
        use ReportReason::*;
        let cases: Vec<(
            &AutoResponsePolicy,
            PromptHit,
            bool,
            Result<(), ReportReason>,
        )> = vec![
            (&none, hit(true, false, false, None), false, Ok(())),
            (&none, hit(false, false, false, None), false, Err(NotSafe)),
            (&none, hit(true, true, false, None), true, Err(OnceUsed)),
            (&none, hit(true, true, false, None), false, Ok(())),
            (
                &skip,
                hit(true, false, false, None),
                false,
                Err(AdapterResponsesOff),
            ),
            (&skip, hit(true, false, true, None), false, Ok(())),
            (
                &none,
                hit(true, false, false, Some("file_write")),
                false,
                Err(PresetGate),
            ),
            (
                &permissive,
                hit(true, false, false, Some("file_write")),
                false,
                Ok(()),
            ),
            (
                &permissive,
                hit(true, false, false, Some("shell")),
                false,
                Err(PresetGate),
            ),
        ];
        for (i, (policy, h, once_used, want)) in cases.into_iter().enumerate() {
            assert_eq!(decide(policy, &h, once_used).map(|_| ()), want, "case {i}");
        }
        let mut no_resp = hit(true, false, false, None);
        no_resp.response = None;
        assert_eq!(decide(&none, &no_resp, false), Err(NoResponse));
    }
}
