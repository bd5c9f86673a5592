//! `agent-orchestrator run`.

use std::process::ExitCode;

/// Arguments of `agent-orchestrator run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    super::not_implemented("run")
}
