//! `agent-orchestrator mcp`: the chat actions as MCP tools over stdio.

use std::path::PathBuf;
use std::process::ExitCode;

use orchestrator_plugin::mcp::McpServer;

/// Arguments of `agent-orchestrator mcp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// YAML settings file (setting name → value); also `AGENT_ORCHESTRATOR_CONFIG`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Runs the subcommand: JSON-RPC on stdin/stdout until stdin closes; diagnostics on stderr.
pub fn run(args: Args) -> ExitCode {
    let (runtime, _coordinator) = match super::build_runtime(args.config.as_deref(), |text| {
        // Stdout belongs to the protocol; asynchronous chat lines go to stderr, which MCP
        // clients show in their server log.
        eprintln!("agent-orchestrator: {text}");
    }) {
        Ok(built) => built,
        Err(e) => {
            eprintln!("agent-orchestrator: {e}");
            return ExitCode::from(2);
        }
    };
    let server = McpServer::new(runtime.as_ref());
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match server.serve(stdin.lock(), stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-orchestrator: {e}");
            ExitCode::FAILURE
        }
    }
}
