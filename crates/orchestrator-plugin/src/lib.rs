//! The composed product: services, chat actions, supervision, MCP server and HTTP API.
//!
//! This crate is the only one that sees every other crate of the workspace. It also builds the
//! `agent-orchestrator` binary.
#![deny(missing_docs)]

mod error;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
