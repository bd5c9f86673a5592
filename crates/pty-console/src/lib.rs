//! Live terminals and state for people.
//!
//! A bridge over `pty-manager` that gives every session a snapshot and live streams
//! ([`Console`], [`ClientFeed`]), a loopback HTTP + WebSocket server that requires a token
//! ([`ConsoleServer`]), and the dashboard page served by it. Other crates add HTTP endpoints to the
//! same server by implementing [`Routes`].
#![deny(missing_docs)]

mod assets;
mod bridge;
mod error;
pub mod feed;
mod first_task;
mod http;
mod http_conn;
mod launcher;
mod server;
mod token;
mod ws;

pub use bridge::{
    ClientFeed, Console, Control, MAX_BUFFERED_BYTES, Reply, SNAPSHOT_AUDIT, STATUS_QUEUE,
    SessionSnapshot, decline_for, is_terminal_report, status_json,
};
pub use error::Error;
pub use first_task::{Delivery, TaskTiming, send_when_ready, wait_ready_and_send};
pub use http::{
    HttpRequest, HttpResponse, MAX_BODY_BYTES, RouteResponse, Routes, StreamBody, StreamResponse,
    StreamWriter,
};
pub use launcher::{AgentChoice, Launcher, MAX_TASK_BYTES, ShellLauncher, SpawnRequest};
pub use server::{ConsoleServer, ServerConfig};
pub use token::AccessToken;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
