//! The crate's error type.

/// What can go wrong while starting or using a loopback test server.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not listen on `127.0.0.1:0`.
    #[error("cannot bind a {server} test server on 127.0.0.1:0")]
    Bind {
        /// Which server failed to start (e.g. `fake model`).
        server: &'static str,
        /// Why the socket could not be bound.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server's accept thread could not be started.
    #[error("cannot start the {server} test server thread")]
    Thread {
        /// Which server failed to start.
        server: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}
