//! `agent-orchestrator`: run coding agents in pseudo-terminals and get their work back as branches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Run CLI coding agents in pseudo-terminals, watch their state, and land their work as branches.
#[derive(Debug, Parser)]
#[command(name = "agent-orchestrator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one task end to end in the foreground: provision, spawn, supervise, commit, push, PR.
    Run(cli::run::Args),
    /// Start the session manager, the HTTP API and the web dashboard on loopback.
    Serve(cli::serve::Args),
    /// Serve the chat actions as MCP tools over stdio (JSON-RPC 2.0).
    Mcp(cli::mcp::Args),
    /// Show the preflight table: which agent CLIs are installed, their versions and install commands.
    Agents(cli::agents::Args),
    /// Replay a terminal capture through the screen model and explain its classification.
    Explain(cli::explain::Args),
    /// Provision, inspect, finalize and clean up git workspaces.
    Workspace(cli::workspace::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => cli::run::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Mcp(args) => cli::mcp::run(args),
        Command::Agents(args) => cli::agents::run(args),
        Command::Explain(args) => cli::explain::run(args),
        Command::Workspace(args) => cli::workspace::run(args),
    }
}
