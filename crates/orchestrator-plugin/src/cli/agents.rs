//! `agent-orchestrator agents`.

use std::process::ExitCode;

/// Arguments of `agent-orchestrator agents`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    super::not_implemented("agents")
}
