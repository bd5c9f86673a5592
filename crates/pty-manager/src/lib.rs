//! Synchronous PTY session manager.
//!
//! `pty-manager` runs programs in pseudo-terminals on one `mio` reactor thread, keeps a `vt100`
//! screen model per session, and (in later modules) reads that screen with a rule-driven detection
//! engine to tell what each session is doing.
#![deny(missing_docs)]

mod error;
mod snapshot;
mod status;

pub use error::Error;
pub use snapshot::ScreenSnapshot;
pub use status::SessionStatus;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
