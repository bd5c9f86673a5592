//! Which agent a spawn without `agentType` gets (BEHAVIOR.md §10.1):
//! `PARALLAX_AGENT_SELECTION_STRATEGY=fixed` (default) takes `PARALLAX_DEFAULT_AGENT_TYPE`
//! (default `claude`); `ranked` takes the installed agent with the best score on this process's
//! per-type metrics.
//!
//! The score of a type is its success rate minus a stall penalty and a speed penalty:
//!
//! - success rate = (completed + 1) / (finished + 2), finished = completed + errored + stopped.
//!   The +1/+2 (Laplace smoothing) gives an untried agent 0.5 rather than 0 or 1, so one lucky
//!   or unlucky session does not decide everything;
//! - stall penalty = 0.05 per stall per session, at most 0.25;
//! - speed penalty = 0.15 × (mean minutes from start to completion ÷ 60), at most 0.15 (an agent
//!   that needs an hour or more per task loses the full 0.15).
//!
//! Ties go to the configured default type, then to the order of the installed list.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::agent_types::resolve_agent_type;
use crate::runtime::{Runtime, RuntimeExt};
use crate::services::{PlainStatus, PtyService, SessionInfo};
use crate::{Error, Result};

/// Most a stall penalty can take off.
pub const MAX_STALL_PENALTY: f64 = 0.25;
/// Penalty per stall per session.
pub const STALL_PENALTY_PER_STALL: f64 = 0.05;
/// Most a speed penalty can take off.
pub const MAX_SPEED_PENALTY: f64 = 0.15;
/// Mean completion time that earns the full speed penalty.
pub const SLOW_COMPLETION_MS: f64 = 60.0 * 60_000.0;

/// What this process has seen of one agent type.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentMetrics {
    /// Sessions started.
    pub sessions: u64,
    /// Running now (starting, idle, working).
    pub running: u64,
    /// Waiting for a person now.
    pub blocked: u64,
    /// Stopped after completing their task.
    pub completed: u64,
    /// Stopped without completing.
    pub stopped: u64,
    /// Failed.
    pub error: u64,
    /// Stalls detected (BEHAVIOR.md §5).
    pub stalls: u64,
    /// Sum of start-to-last-activity times of completed sessions (ms).
    pub completion_ms_total: u64,
}

impl AgentMetrics {
    /// Sessions that ended.
    pub fn finished(&self) -> u64 {
        self.completed + self.error + self.stopped
    }

    /// Mean start-to-completion time (ms) of completed sessions.
    pub fn mean_completion_ms(&self) -> Option<f64> {
        (self.completed > 0).then(|| self.completion_ms_total as f64 / self.completed as f64)
    }

    /// The ranking score (see the module docs).
    pub fn score(&self) -> f64 {
        let success = (self.completed as f64 + 1.0) / (self.finished() as f64 + 2.0);
        let stall = if self.sessions == 0 {
            0.0
        } else {
            (STALL_PENALTY_PER_STALL * self.stalls as f64 / self.sessions as f64)
                .min(MAX_STALL_PENALTY)
        };
        let speed = self
            .mean_completion_ms()
            .map(|ms| (MAX_SPEED_PENALTY * ms / SLOW_COMPLETION_MS).min(MAX_SPEED_PENALTY))
            .unwrap_or(0.0);
        success - stall - speed
    }
}

/// Per-type metrics of `sessions`, with each session's stall count from `stalls`.
pub fn metrics_of(
    sessions: &[SessionInfo],
    stalls: &dyn Fn(&str) -> u64,
) -> BTreeMap<String, AgentMetrics> {
    let mut out: BTreeMap<String, AgentMetrics> = BTreeMap::new();
    for s in sessions {
        let m = out.entry(s.agent_type.clone()).or_default();
        m.sessions += 1;
        m.stalls += stalls(&s.id);
        match s.plain_status() {
            PlainStatus::Running => m.running += 1,
            PlainStatus::Blocked => m.blocked += 1,
            PlainStatus::Completed => {
                m.completed += 1;
                m.completion_ms_total += s.last_activity_ms.saturating_sub(s.created_at_ms);
            }
            PlainStatus::Stopped => m.stopped += 1,
            PlainStatus::Error => m.error += 1,
        }
    }
    out
}

/// Per-type metrics of a PTY service's sessions.
pub fn service_metrics(pty: &dyn PtyService) -> BTreeMap<String, AgentMetrics> {
    metrics_of(&pty.list_sessions(), &|id| pty.stall_count(id))
}

/// The best-scoring type of `installed` (canonical names, in preference order); ties go to
/// `default`, then to the earlier entry. `None` when nothing is installed.
pub fn pick_ranked<'a>(
    installed: &'a [String],
    metrics: &BTreeMap<String, AgentMetrics>,
    default: &str,
) -> Option<&'a str> {
    let score = |t: &str| metrics.get(t).cloned().unwrap_or_default().score();
    let mut best: Option<(&str, f64)> = None;
    for t in installed {
        let s = score(t);
        let better = match best {
            None => true,
            Some((b, bs)) => {
                s > bs + f64::EPSILON
                    || ((s - bs).abs() <= f64::EPSILON && t == default && b != default)
            }
        };
        if better {
            best = Some((t, s));
        }
    }
    best.map(|(t, _)| t)
}

/// How agents are chosen when a spawn names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default type.
    Fixed,
    /// The best-scoring installed type.
    Ranked,
}

/// `PARALLAX_AGENT_SELECTION_STRATEGY` (`fixed` when unset; anything else but `ranked` is an
/// error naming the setting).
pub fn strategy(runtime: &dyn Runtime) -> Result<Strategy> {
    match runtime
        .get_setting("PARALLAX_AGENT_SELECTION_STRATEGY")
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("fixed") => Ok(Strategy::Fixed),
        Some("ranked") => Ok(Strategy::Ranked),
        Some(other) => Err(Error::InvalidSetting {
            name: "PARALLAX_AGENT_SELECTION_STRATEGY".into(),
            reason: format!("{other:?} is not fixed or ranked"),
        }),
    }
}

/// The agent type a spawn gets: `explicit` (aliases resolved) if given, else by the strategy.
pub fn choose_agent_type(runtime: &dyn Runtime, explicit: Option<&str>) -> Result<&'static str> {
    if let Some(t) = explicit {
        return resolve_agent_type(t);
    }
    let default = resolve_agent_type(
        &runtime
            .get_setting("PARALLAX_DEFAULT_AGENT_TYPE")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "claude".into()),
    )?;
    if strategy(runtime)? == Strategy::Fixed {
        return Ok(default);
    }
    let Some(pty) = runtime.pty() else {
        return Ok(default);
    };
    let installed = pty.installed_agents();
    let metrics = service_metrics(pty.as_ref());
    match pick_ranked(&installed, &metrics, default) {
        Some(t) => resolve_agent_type(t),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(completed: u64, error: u64, stopped: u64, stalls: u64, mean_min: u64) -> AgentMetrics {
        AgentMetrics {
            sessions: completed + error + stopped,
            completed,
            error,
            stopped,
            stalls,
            completion_ms_total: completed * mean_min * 60_000,
            ..AgentMetrics::default()
        }
    }

    #[test]
    fn scores_follow_success_stalls_and_speed() {
        // (metrics, expected score)
        let table = [
            (AgentMetrics::default(), 0.5),
            (m(8, 0, 0, 0, 0), 0.9),
            (m(8, 0, 0, 0, 30), 0.9 - 0.075),
            (m(8, 0, 0, 0, 600), 0.9 - 0.15),
            (m(0, 2, 0, 0, 0), 0.25),
            (m(2, 0, 0, 4, 0), 0.75 - 0.1),
            (m(2, 0, 0, 100, 0), 0.75 - 0.25),
            (m(1, 1, 1, 0, 0), 0.4),
        ];
        for (metrics, want) in table {
            let got = metrics.score();
            assert!((got - want).abs() < 1e-9, "{metrics:?}: {got} != {want}");
        }
    }

    #[test]
    fn ranked_picks_the_best_installed_type() {
        let metrics: BTreeMap<String, AgentMetrics> = [
            ("claude", m(3, 1, 0, 2, 20)),
            ("codex", m(5, 0, 0, 0, 10)),
            ("gemini", m(9, 0, 0, 0, 5)),
            ("aider", m(0, 3, 0, 0, 0)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // (installed, default, expected)
        let table: [(Vec<String>, &str, Option<&str>); 6] = [
            (
                s(&["claude", "codex", "gemini", "aider"]),
                "claude",
                Some("gemini"),
            ),
            (s(&["claude", "codex", "aider"]), "claude", Some("codex")),
            (s(&["claude", "aider"]), "aider", Some("claude")),
            // Untried agents score 0.5, ahead of a failing one; ties go to the default.
            (
                s(&["pi", "opencode", "aider"]),
                "opencode",
                Some("opencode"),
            ),
            (s(&["pi", "opencode"]), "claude", Some("pi")),
            (Vec::new(), "claude", None),
        ];
        for (installed, default, want) in table {
            assert_eq!(
                pick_ranked(&installed, &metrics, default),
                want,
                "{installed:?} default {default}"
            );
        }
    }

    #[test]
    fn metrics_come_from_session_statuses_and_stalls() {
        use crate::services::pty::SessionStatus;
        let mk =
            |id: &str, t: &str, status: SessionStatus, completed: bool, dur: u64| SessionInfo {
                id: id.into(),
                name: id.into(),
                agent_type: t.into(),
                status,
                completed,
                workdir: "/w".into(),
                created_at_ms: 1_000,
                last_activity_ms: 1_000 + dur,
                prompt: None,
                error: None,
            };
        let sessions = [
            mk("a", "codex", SessionStatus::Stopped, true, 120_000),
            mk("b", "codex", SessionStatus::Stopped, true, 60_000),
            mk("c", "codex", SessionStatus::Error, false, 5),
            mk("d", "claude", SessionStatus::Busy, false, 5),
        ];
        let got = metrics_of(&sessions, &|id| if id == "c" { 3 } else { 0 });
        let codex = &got["codex"];
        assert_eq!(
            (codex.sessions, codex.completed, codex.error, codex.stalls),
            (3, 2, 1, 3)
        );
        assert_eq!(codex.mean_completion_ms(), Some(90_000.0));
        assert_eq!(got["claude"].running, 1);
    }
}
