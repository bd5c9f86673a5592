//! One module per subcommand; each has clap `Args` and a `run` returning the exit status.

pub mod agents;
pub mod explain;
pub mod mcp;
pub mod run;
pub mod serve;
pub mod workspace;

use std::process::ExitCode;

/// The honest answer of a subcommand that is not built yet: one line on stderr and status 2.
pub fn not_implemented(name: &str) -> ExitCode {
    eprintln!("agent-orchestrator: `{name}` is not implemented yet");
    ExitCode::from(2)
}
