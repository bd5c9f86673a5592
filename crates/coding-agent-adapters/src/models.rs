//! Model recommendations from the available credentials: which agents can run with the keys at
//! hand, and with which model (`None`: the CLI's own default for that provider).

use serde::Serialize;

use crate::launch::Credentials;
use crate::{AgentManifest, AgentType, Provider, Registry};

/// How demanding the work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelTier {
    /// Demanding work.
    Powerful,
    /// Quick work.
    Fast,
}

/// A usable agent and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRecommendation {
    /// The agent.
    pub agent: AgentType,
    /// The provider whose credential enables it.
    pub provider: Provider,
    /// Model for demanding work (`None`: the CLI's default).
    pub powerful: Option<String>,
    /// Model for quick work (`None`: the CLI's default).
    pub fast: Option<String>,
}

/// The recommendation for one agent: its first model entry whose provider has a key.
pub fn recommend_for(manifest: &AgentManifest, creds: &Credentials) -> Option<ModelRecommendation> {
    manifest
        .models
        .iter()
        .find(|m| creds.has(m.provider))
        .map(|m| ModelRecommendation {
            agent: manifest.agent,
            provider: m.provider,
            powerful: m.powerful.clone(),
            fast: m.fast.clone(),
        })
}

/// Recommendations for every agent that the credentials can run.
pub fn recommend(registry: &Registry, creds: &Credentials) -> Vec<ModelRecommendation> {
    registry
        .iter()
        .filter_map(|m| recommend_for(m, creds))
        .collect()
}

/// The model for `agent` and `tier`: `PARALLAX_<TYPE>_MODEL_POWERFUL` / `…_FAST` from `env` if
/// set, else the recommendation.
pub fn model_for(
    manifest: &AgentManifest,
    tier: ModelTier,
    creds: &Credentials,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let suffix = match tier {
        ModelTier::Powerful => "POWERFUL",
        ModelTier::Fast => "FAST",
    };
    let var = format!(
        "PARALLAX_{}_MODEL_{suffix}",
        manifest.agent.as_str().to_uppercase()
    );
    if let Some(m) = env(&var).filter(|m| !m.trim().is_empty()) {
        return Some(m.trim().to_owned());
    }
    let r = recommend_for(manifest, creds)?;
    match tier {
        ModelTier::Powerful => r.powerful,
        ModelTier::Fast => r.fast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(ps: &[Provider]) -> Credentials {
        let mut c = Credentials::default();
        for p in ps {
            c.keys.insert(*p, "k".into());
        }
        c
    }

    #[test]
    fn recommendations_follow_the_keys() {
        let r = Registry::builtin().unwrap();
        let none = recommend(&r, &Credentials::default());
        assert!(none.is_empty());
        let anth = recommend(&r, &creds(&[Provider::Anthropic]));
        let agents: Vec<_> = anth.iter().map(|x| x.agent).collect();
        assert!(agents.contains(&AgentType::Claude) && agents.contains(&AgentType::Aider));
        assert!(!agents.contains(&AgentType::Codex) && !agents.contains(&AgentType::Gemini));
        let claude = anth.iter().find(|x| x.agent == AgentType::Claude).unwrap();
        assert_eq!(claude.powerful.as_deref(), Some("opus"));
        let openai = recommend(&r, &creds(&[Provider::Openai]));
        let aider = openai.iter().find(|x| x.agent == AgentType::Aider).unwrap();
        assert_eq!(aider.powerful.as_deref(), Some("4o"));
        let codex = openai.iter().find(|x| x.agent == AgentType::Codex).unwrap();
        assert_eq!(codex.powerful, None, "Codex keeps its own default");
    }

    #[test]
    fn environment_overrides_the_model() {
        let r = Registry::builtin().unwrap();
        let c = creds(&[Provider::Anthropic]);
        let env = |k: &str| (k == "PARALLAX_CLAUDE_MODEL_POWERFUL").then(|| "claude-x".to_owned());
        let claude = r.get(AgentType::Claude);
        assert_eq!(
            model_for(claude, ModelTier::Powerful, &c, env).as_deref(),
            Some("claude-x")
        );
        assert_eq!(
            model_for(claude, ModelTier::Fast, &c, env).as_deref(),
            Some("sonnet")
        );
        assert_eq!(
            model_for(claude, ModelTier::Fast, &Credentials::default(), |_| None),
            None
        );
    }
}
