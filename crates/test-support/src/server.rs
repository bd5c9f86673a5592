//! The loopback server every fake runs on: bind `127.0.0.1:0`, hand each request to the fake on an
//! accept thread, and stop (unblock, join) when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Error;

/// A bound loopback HTTP server; requests are served once [`Loopback::serve`] is called.
pub(crate) struct Loopback {
    name: &'static str,
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Loopback {
    /// Binds `127.0.0.1:0`. `name` (e.g. `fake model`) names the server in errors and its thread.
    pub(crate) fn bind(name: &'static str) -> Result<Self, Error> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(|source| Error::Bind {
            server: name,
            source,
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .expect("a tcp listener has an ip address");
        Ok(Self {
            name,
            addr,
            server: Arc::new(server),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        })
    }

    /// The address the server listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the accept thread, which calls `handle` with every request until the server drops.
    pub(crate) fn serve(
        &mut self,
        handle: impl Fn(tiny_http::Request) + Send + 'static,
    ) -> Result<(), Error> {
        let (server, stop) = (self.server.clone(), self.stop.clone());
        let thread = std::thread::Builder::new()
            .name(self.name.replace(' ', "-"))
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    // A timeout lets the loop see `stop` even if `unblock` raced the receive.
                    match server.recv_timeout(Duration::from_millis(200)) {
                        Ok(Some(request)) => handle(request),
                        Ok(None) => continue,
                        Err(_) => break,
                    }
                }
            })
            .map_err(|source| Error::Thread {
                server: self.name,
                source,
            })?;
        self.thread = Some(thread);
        Ok(())
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            // A panic in a handler has already been reported by the test harness.
            let _ = t.join();
        }
    }
}
