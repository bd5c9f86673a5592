//! `agent-orchestrator explain`: replay a terminal capture through the screen model and say what
//! the agent's rules make of the final screen (BEHAVIOR.md §4.4).

use std::path::PathBuf;
use std::process::ExitCode;

use coding_agent_adapters::{AgentType, AnswerPolicy, ApprovalPreset, Registry};
use pty_manager::{Adapter, Explanation, Screen, ShellAdapter};
use serde_json::{Value, json};

/// Arguments of `agent-orchestrator explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Adapter type: claude, codex, gemini, aider, pi, opencode, hermes or shell.
    #[arg(long)]
    agent: String,
    /// Terminal width the capture was recorded at.
    #[arg(long, default_value_t = 120)]
    cols: u16,
    /// Terminal height the capture was recorded at.
    #[arg(long, default_value_t = 40)]
    rows: u16,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Approval preset, to show whether a permission prompt would be answered.
    #[arg(long)]
    preset: Option<String>,
    /// Show trust dialogs as answered (the caller trusts the workdir).
    #[arg(long)]
    trust_workdir: bool,
    /// Show onboarding screens as answered.
    #[arg(long)]
    accept_onboarding: bool,
    /// Also print the final screen (title, OSC 7501 state and non-empty rows).
    #[arg(long)]
    screen: bool,
    /// The capture: the exact bytes a program wrote to its terminal.
    capture: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    match explain_capture(&args) {
        Ok(out) => {
            outln!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent-orchestrator explain: {e}");
            ExitCode::FAILURE
        }
    }
}

fn explain_capture(args: &Args) -> Result<String, String> {
    if args.cols == 0 || args.rows == 0 {
        return Err(format!("invalid terminal size {}x{}", args.cols, args.rows));
    }
    let bytes = std::fs::read(&args.capture)
        .map_err(|e| format!("cannot read {}: {e}", args.capture.display()))?;
    let preset = args
        .preset
        .as_deref()
        .map(str::parse::<ApprovalPreset>)
        .transpose()
        .map_err(|e| e.to_string())?;
    let policy = AnswerPolicy {
        preset,
        trust_workdir: args.trust_workdir,
        accept_onboarding: args.accept_onboarding,
        supplied_api_key: false,
    };
    let e = explain_bytes(&args.agent, &bytes, args.cols, args.rows, &policy)?;
    let mut out = if args.json {
        to_json(&e).to_string()
    } else {
        to_text(&e)
    };
    if args.screen && !args.json {
        let mut screen = Screen::new(args.cols, args.rows);
        screen.process(&bytes);
        let snap = screen.snapshot();
        out.push_str(&format!(
            "\nscreen: title {:?}, osc 7501 {:?}\n",
            snap.title, snap.osc7501
        ));
        for (i, l) in snap.lines.iter().enumerate().filter(|(_, l)| !l.is_empty()) {
            out.push_str(&format!("{i:>3}| {l}\n"));
        }
    }
    Ok(out.trim_end().to_owned())
}

/// Classify the final screen of `bytes` with the rules of `agent` under `policy`.
fn explain_bytes(
    agent: &str,
    bytes: &[u8],
    cols: u16,
    rows: u16,
    policy: &AnswerPolicy,
) -> Result<Explanation, String> {
    let mut screen = Screen::new(cols, rows);
    screen.process(bytes);
    let snap = screen.snapshot();
    if agent.trim().eq_ignore_ascii_case("shell") {
        return Ok(ShellAdapter::default().explain(&snap));
    }
    let agent: AgentType = agent.parse().map_err(|e| format!("{e}"))?;
    // Overrides (AGENT_ORCHESTRATOR_AGENTS_DIR, the user's config dir) apply, so a manifest being
    // edited can be checked against captures.
    let registry = Registry::from_env().map_err(|e| error_chain(&e))?;
    let adapter = registry
        .get(agent)
        .adapter(policy)
        .map_err(|e| error_chain(&e))?;
    Ok(adapter.explain(&snap))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The JSON object of issue 5 item 7: `state`, `rule`, `prompt`, `login`, `matches`, plus the
/// matched rows per rule and the running tool.
fn to_json(e: &Explanation) -> Value {
    json!({
        "state": e.state.as_str(),
        "rule": e.winner,
        "prompt": e.prompt.as_ref().map(|p| json!({
            "kind": p.kind,
            "type": p.prompt_type.as_str(),
            "text": p.text,
            "answer": p.answer,
            "rule": p.rule_id,
            "would_answer": p.safe && !p.answer.is_empty(),
        })),
        "login": e.login.as_ref().map(|l| json!({
            "url": l.url,
            "device_code": l.device_code,
            "method": l.method.as_str(),
            "rule": l.rule_id,
        })),
        "matches": e.matches.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        "details": e.matches.iter().map(|m| json!({
            "id": m.id, "signal": m.signal.as_str(), "region": m.region, "text": m.text,
        })).collect::<Vec<_>>(),
        "tool": e.tool,
    })
}

fn to_text(e: &Explanation) -> String {
    let mut out = format!("state: {}\n", e.state.as_str());
    out.push_str(&format!("rule:  {}\n", e.winner.as_deref().unwrap_or("-")));
    if let Some(p) = &e.prompt {
        out.push_str(&format!(
            "prompt: {} ({}) via {}\n  answer: {}\n  would answer automatically: {}\n",
            p.kind.as_deref().unwrap_or("-"),
            p.prompt_type.as_str(),
            p.rule_id,
            if p.answer.is_empty() {
                "none (report only)".to_owned()
            } else {
                p.answer.join(", ")
            },
            if p.safe && !p.answer.is_empty() {
                "yes"
            } else {
                "no"
            },
        ));
    }
    if let Some(l) = &e.login {
        out.push_str(&format!(
            "login: {} via {}\n  url: {}\n  device code: {}\n",
            l.method.as_str(),
            l.rule_id,
            l.url.as_deref().unwrap_or("-"),
            l.device_code.as_deref().unwrap_or("-"),
        ));
    }
    if let Some(t) = &e.tool {
        out.push_str(&format!("tool: {t}\n"));
    }
    out.push_str(&format!("matches ({}):\n", e.matches.len()));
    for m in &e.matches {
        out.push_str(&format!(
            "  {} [{} in {}]\n",
            m.id,
            m.signal.as_str(),
            m.region
        ));
        for line in m.text.lines().take(6) {
            out.push_str(&format!("    | {line}\n"));
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Option<Vec<u8>> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/agents")
            .join(name);
        match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "{}: {e}", p.display());
                None
            }
        }
    }

    #[test]
    fn json_for_a_prompt_and_a_login() {
        let Some(bytes) = fixture("claude/api-key-approval.raw") else {
            return;
        };
        let e = explain_bytes("claude", &bytes, 120, 40, &AnswerPolicy::default()).unwrap();
        let j = to_json(&e);
        assert_eq!(j["state"], "blocking_prompt");
        assert_eq!(j["rule"], "claude.api-key-approval");
        assert_eq!(j["prompt"]["kind"], "api_key_approval");
        assert_eq!(j["prompt"]["answer"], json!(["up", "enter"]));
        assert_eq!(j["prompt"]["would_answer"], false);
        assert!(j["login"].is_null());
        assert!(
            j["matches"]
                .as_array()
                .unwrap()
                .contains(&json!("claude.api-key-approval"))
        );

        let Some(bytes) = fixture("gemini/auth-apikey-prefilled.raw") else {
            return;
        };
        let e = explain_bytes("gemini", &bytes, 120, 40, &AnswerPolicy::default()).unwrap();
        let j = to_json(&e);
        assert_eq!(j["state"], "login_required");
        assert_eq!(j["login"]["url"], "https://aistudio.google.com/app/apikey");
        assert!(j["prompt"].is_null());
        assert!(to_text(&e).starts_with("state: login_required\n"));
    }

    #[test]
    fn policy_changes_only_whether_it_would_answer() {
        let Some(bytes) = fixture("codex/trust-folder.raw") else {
            return;
        };
        let trusted = AnswerPolicy {
            trust_workdir: true,
            ..AnswerPolicy::default()
        };
        let j = to_json(&explain_bytes("codex", &bytes, 120, 40, &trusted).unwrap());
        assert_eq!(j["prompt"]["would_answer"], true);
        let j =
            to_json(&explain_bytes("codex", &bytes, 120, 40, &AnswerPolicy::default()).unwrap());
        assert_eq!(j["prompt"]["would_answer"], false);
        // The rule types an empty text (Enter after Codex's Enter delay), shown as text then Enter.
        assert_eq!(j["prompt"]["answer"], json!(["", "enter"]));
    }

    #[test]
    fn shell_and_errors() {
        let e = explain_bytes("shell", b"$ ls\r\npty> ", 80, 24, &AnswerPolicy::default()).unwrap();
        assert_eq!(e.state.as_str(), "ready");
        let err = explain_bytes("cursor", b"", 80, 24, &AnswerPolicy::default()).unwrap_err();
        assert_eq!(err, "unknown agent type: cursor");
    }
}
