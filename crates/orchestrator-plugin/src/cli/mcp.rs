//! `agent-orchestrator mcp`.

use std::process::ExitCode;

/// Arguments of `agent-orchestrator mcp`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> ExitCode {
    super::not_implemented("mcp")
}
