//! The composed product: services, chat actions, supervision, MCP server and HTTP API.
//!
//! This crate is the only one that sees every other crate of the workspace. It also builds the
//! `agent-orchestrator` binary.
//!
//! - [`Runtime`] is the ElizaOS-shaped host interface (settings, services, `use_model`, reply).
//! - [`actions`] are the chat actions of BEHAVIOR.md §10.2; the same definitions are served as
//!   MCP tools ([`mcp`]).
//! - [`services`] are the traits actions call (`PTY_SERVICE`, `CODING_WORKSPACE_SERVICE`).
//! - [`supervision`] decides what happens with blocked prompts and finished turns.
//!
//! ```
//! use orchestrator_plugin::actions;
//! let spawn = actions::find("SPAWN_CODER").unwrap();
//! assert_eq!(spawn.name, "SPAWN_CODING_AGENT");
//! assert_eq!((spawn.schema)()["type"], "object");
//! ```
#![deny(missing_docs)]

pub mod actions;
pub mod agent_types;
mod error;
pub mod http_api;
pub mod mcp;
pub mod model;
pub mod providers;
pub mod runtime;
pub mod scratch;
pub mod selection;
pub mod services;
pub mod settings;
pub mod supervision;

pub use error::Error;
pub use runtime::{Runtime, RuntimeExt, Service, SettingsStore, StandaloneRuntime};

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
