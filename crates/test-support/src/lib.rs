//! Loopback test servers for this workspace's tests: fake model APIs and a fake GitHub.
//!
//! Every server binds `127.0.0.1:0`, logs each request it serves (with credentials redacted) so
//! tests can assert on it, and stops when dropped. Nothing here talks to any other address.
#![deny(missing_docs)]

mod error;
pub mod github;
pub mod model;
mod server;

pub use error::Error;
