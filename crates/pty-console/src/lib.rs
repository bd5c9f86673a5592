//! Live terminals and state for people.
//!
//! A bridge over `pty-manager` that gives every session a snapshot and live streams, a loopback
//! HTTP + WebSocket server that requires a token, and the dashboard page served by it.
#![deny(missing_docs)]

mod error;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
