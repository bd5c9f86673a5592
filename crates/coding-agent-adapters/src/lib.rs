//! What each coding-agent CLI looks like and needs.
//!
//! One manifest per agent (detection rules as data, launch command and environment), approval
//! presets mapped to each CLI's flags and config files, memory files, preflight checks and hook
//! telemetry. Builds on `pty-manager`'s adapter trait.
#![deny(missing_docs)]

mod error;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
