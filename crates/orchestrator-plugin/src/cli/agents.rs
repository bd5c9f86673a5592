//! `agent-orchestrator agents`: the preflight table for every adapter (installed? version? how to
//! install?). Version commands run as argv with a 5 s timeout, never through a shell.

use std::process::ExitCode;

use coding_agent_adapters::Registry;
use coding_agent_adapters::preflight::{PreflightResult, VERSION_TIMEOUT, preflight_all};

/// Arguments of `agent-orchestrator agents`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> ExitCode {
    let registry = match Registry::from_env() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent-orchestrator agents: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = std::env::var_os("PATH");
    let results = preflight_all(&registry, path.as_deref(), VERSION_TIMEOUT);
    if args.json {
        match serde_json::to_string_pretty(&results) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                eprintln!("agent-orchestrator agents: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out!("{}", table(&results));
    }
    ExitCode::SUCCESS
}

/// The human table: one row per agent, install hint for the missing ones.
fn table(results: &[PreflightResult]) -> String {
    let rows: Vec<[String; 4]> = results
        .iter()
        .map(|r| {
            let status = match (r.installed, &r.error) {
                (false, _) => "missing".to_owned(),
                (true, None) => "installed".to_owned(),
                (true, Some(_)) => "installed (version unknown)".to_owned(),
            };
            let detail = if r.installed {
                match (&r.path, &r.error) {
                    (Some(p), None) => p.display().to_string(),
                    (_, Some(e)) => e.clone(),
                    (None, None) => String::new(),
                }
            } else {
                format!("install: {}  ({})", r.install_command, r.docs)
            };
            [
                r.agent.as_str().to_owned(),
                status,
                r.version.clone().unwrap_or_else(|| "-".to_owned()),
                detail,
            ]
        })
        .collect();
    let header = ["AGENT", "STATUS", "VERSION", "PATH / INSTALL"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let mut out = format!(
        "{:w0$}  {:w1$}  {:w2$}  {}\n",
        header[0], header[1], header[2], header[3]
    );
    for r in &rows {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            r[0], r[1], r[2], r[3]
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coding_agent_adapters::AgentType;
    use std::time::Duration;

    #[test]
    fn table_lists_every_agent_with_install_hints() {
        let registry = Registry::builtin().unwrap();
        // An empty PATH: nothing is installed, nothing is run.
        let results = preflight_all(
            &registry,
            Some(std::ffi::OsStr::new("")),
            Duration::from_secs(1),
        );
        let t = table(&results);
        assert!(t.starts_with("AGENT"));
        for a in AgentType::ALL {
            assert!(t.contains(a.as_str()), "{a}");
        }
        assert!(t.contains("install: npm install -g @anthropic-ai/claude-code"));
        assert!(t.contains("install: python3 -m pip install aider-chat"));
        let json = serde_json::to_value(&results).unwrap();
        assert_eq!(json.as_array().unwrap().len(), AgentType::ALL.len());
        assert_eq!(json[0]["agent"], "claude");
        assert_eq!(json[0]["installed"], false);
    }
}
