//! Integration tests of `orchestrator-plugin`: action handlers with a test runtime, the MCP
//! server over a child process's stdio, and supervision against a loopback model server.

mod actions;
mod cli_output;
mod fakes;
mod git_run;
mod http;
mod mcp_stdio;
mod providers;
mod run_cmd;
mod scratch;
mod serve_agent;
mod sessions;
mod supervision;
mod workspaces;
