//! A console with a real manager and server, and small loopback clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pty_console::{Console, ConsoleServer, ServerConfig, ShellLauncher, SpawnRequest};
use pty_manager::PtyManager;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

pub struct Harness {
    pub console: Arc<Console>,
    pub server: ConsoleServer,
    pub dir: PathBuf,
}

impl Harness {
    pub fn start(name: &str) -> Harness {
        Self::start_with(name, pty_console::feed::FeedLimits::default())
    }

    pub fn start_with(name: &str, limits: pty_console::feed::FeedLimits) -> Harness {
        let dir = std::env::temp_dir().join(format!("pty-console-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let manager = Arc::new(PtyManager::new().unwrap());
        let console = Console::with_limits(manager, Arc::new(ShellLauncher), limits).unwrap();
        let server =
            ConsoleServer::start(console.clone(), ServerConfig::default(), Vec::new()).unwrap();
        Harness {
            console,
            server,
            dir,
        }
    }

    pub fn shell(&self, name: &str) -> String {
        let req = SpawnRequest {
            agent: "shell".into(),
            workdir: self.dir.clone(),
            task: String::new(),
            name: Some(name.into()),
        };
        self.console.spawn(&req).unwrap().id
    }

    pub fn token(&self) -> String {
        self.server.token().expose().to_owned()
    }

    /// Waits until the session's screen satisfies `pred`.
    pub fn wait_screen(&self, id: &str, what: &str, pred: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.console.manager().snapshot(id).unwrap().lines;
            if pred(&lines) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen: {lines:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn has_prompt(lines: &[String]) -> bool {
    lines.iter().any(|l| l.starts_with("pty>"))
}

/// One HTTP/1.1 request; returns status, headers (lower-case names) and body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; a reset then is fine.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end in response");
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// Opens `ws://<ws_addr>/ws?<query>` with extra headers; the handshake error as text on refusal.
pub fn ws_connect(
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocket<TcpStream>, String> {
    let mut req = format!("ws://{addr}/ws?{query}")
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    match tungstenite::client(req, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            Err(format!("http {}", resp.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Reads frames until `done` says stop; returns them all.
pub fn ws_read_until(
    ws: &mut WebSocket<TcpStream>,
    what: &str,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while !done(&got) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        match ws.read() {
            Ok(m) => got.push(m),
            Err(e) => panic!("websocket read failed while waiting for {what}: {e}"),
        }
    }
    got
}

/// Every binary frame after the last snapshot, concatenated.
pub fn output_after_last_snapshot(frames: &[Message]) -> Vec<u8> {
    let start = frames
        .iter()
        .rposition(|m| matches!(m, Message::Text(t) if t.contains("\"type\":\"snapshot\"")))
        .map(|i| i + 1)
        .unwrap_or(0);
    frames[start..]
        .iter()
        .filter_map(|m| match m {
            Message::Binary(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}
