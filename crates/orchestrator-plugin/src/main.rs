//! `agent-orchestrator`: run coding agents in pseudo-terminals and get their work back as branches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run CLI coding agents in pseudo-terminals, watch their state, and land their work as branches.
#[derive(Debug, Parser)]
#[command(name = "agent-orchestrator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one task end to end in the foreground: provision, spawn, supervise, commit, push, PR.
    Run,
    /// Start the session manager, the HTTP API and the web dashboard on loopback.
    Serve,
    /// Serve the chat actions as MCP tools over stdio (JSON-RPC 2.0).
    Mcp,
    /// Show the preflight table: which agent CLIs are installed, their versions and install commands.
    Agents,
    /// Replay a terminal capture through the screen model and explain its classification.
    Explain,
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Serve => "serve",
            Command::Mcp => "mcp",
            Command::Agents => "agents",
            Command::Explain => "explain",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every subcommand is filled in by a later change; until then each says so plainly and exits 2.
    eprintln!(
        "agent-orchestrator: `{}` is not implemented yet",
        cli.command.name()
    );
    ExitCode::from(2)
}
