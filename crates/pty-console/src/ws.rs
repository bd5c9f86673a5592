//! WebSocket clients: `GET /ws?session=<id>` on the WebSocket port (BEHAVIOR.md §9).
//!
//! Server → client: a text frame `{"type":"snapshot",…}`, a binary frame that paints the screen,
//! then binary frames of output and text frames `{"type":"status",…}` / `{"type":"error",…}` in
//! order; after a resync the pair comes again. Client → server: text frames with a [`Control`]
//! (`{"type":"input","data":"ls\r"}`, `keys`, `paste`, `resize`, `stop`, `approve`, …).
//!
//! Each connection has two threads on two handles of the same socket: a writer that owns the
//! [`ClientFeed`] and blocks on it, and a reader that applies control messages. The reader answers
//! no pings of its own accord in a way that could interleave with the writer's frames in practice:
//! browsers do not ping, and a client that does gets its pong as one small write.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use crate::bridge::{ClientFeed, Control};
use crate::feed::WireFrame;
use crate::http::{cookie_value, split_url};
use crate::server::{COOKIE, Shared};

/// Longest control message a client may send.
const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;
/// How long the writer waits for output before it checks whether the client left.
const POLL: Duration = Duration::from_millis(250);

pub(crate) fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.ws_clients.fetch_add(1, Ordering::SeqCst) >= shared.max_ws_clients {
            shared.ws_clients.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("console-ws".to_owned())
            .spawn(move || {
                connection(stream, &shared2);
                shared2.ws_clients.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.ws_clients.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn reject(status: u16, message: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(message.to_owned()));
    *r.status_mut() = tungstenite::http::StatusCode::from_u16(status)
        .unwrap_or(tungstenite::http::StatusCode::BAD_REQUEST);
    r
}

/// Checks path, token and Origin of a handshake; the session id on success.
// The error type is the one tungstenite's handshake callback must return.
#[allow(clippy::result_large_err)]
fn check_handshake(
    req: &Request,
    resp: Response,
    shared: &Shared,
) -> Result<(String, Response), ErrorResponse> {
    let uri = req.uri().to_string();
    let (path, query) = split_url(&uri);
    if path != "/ws" {
        return Err(reject(404, "Not found"));
    }
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // The token: query parameter, cookie, or an offered subprotocol (echoed back when used).
    let from_query = query
        .iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.as_str());
    let from_cookie = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, COOKIE));
    let offered: Vec<&str> = text("sec-websocket-protocol")
        .map(|v| v.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let from_protocol = offered.iter().copied().find(|p| shared.token.matches(p));
    let ok = from_query
        .into_iter()
        .chain(from_cookie)
        .any(|t| shared.token.matches(t))
        || from_protocol.is_some();
    if !ok {
        return Err(reject(401, "missing or wrong access token"));
    }
    // A browser always sends Origin; it must be this server's page (a host this server answers
    // as, the HTTP server's port; not one derived from the request's own Host header, which a
    // rebound name controls). Non-browser clients send none and are held to the token alone.
    if let Some(origin) = text("origin")
        && !crate::server::own_origin(origin, shared)
    {
        return Err(reject(403, "websocket origin is not this server"));
    }
    let Some(session) = query
        .iter()
        .find(|(k, _)| k == "session")
        .map(|(_, v)| v.clone())
    else {
        return Err(reject(400, "missing session parameter"));
    };
    if shared.console.manager().get(&session).is_err() {
        return Err(reject(404, "session not found"));
    }
    let mut resp = resp;
    if let Some(p) = from_protocol
        && let Ok(v) = p.parse()
    {
        resp.headers_mut().insert("sec-websocket-protocol", v);
    }
    Ok((session, resp))
}

// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
fn connection(stream: TcpStream, shared: &Arc<Shared>) {
    // A client that never finishes its handshake must not hold a thread for ever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    let mut session = None;
    let mut ws = match tungstenite::accept_hdr(stream, |req: &Request, resp: Response| {
        let (id, resp) = check_handshake(req, resp, shared)?;
        session = Some(id);
        Ok(resp)
    }) {
        Ok(ws) => ws,
        Err(_) => return,
    };
    let Some(session) = session else {
        return;
    };
    let raw = ws.get_ref();
    let _ = raw.set_read_timeout(None);
    let Ok(read_half) = raw.try_clone() else {
        return;
    };
    let mut feed = match shared.console.open_feed(&session) {
        Ok(f) => f,
        Err(e) => {
            let _ = ws.send(Message::text(error_json(&e.to_string())));
            return;
        }
    };
    let closed = Arc::new(AtomicBool::new(false));
    let reader = {
        let closed = closed.clone();
        let shared = shared.clone();
        let notices = feed.notices();
        let session = session.clone();
        std::thread::Builder::new()
            .name("console-ws-read".to_owned())
            .spawn(move || {
                read_loop(read_half, &shared, &session, &notices);
                closed.store(true, Ordering::SeqCst);
            })
    };
    if reader.is_err() {
        return;
    }
    write_loop(&mut ws, &mut feed, &closed, shared);
    // Unblocks the reader if the writer ended first.
    let _ = ws.get_ref().shutdown(std::net::Shutdown::Both);
    if let Ok(r) = reader {
        let _ = r.join();
    }
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "type": "error", "error": message }).to_string()
}

fn write_loop(
    ws: &mut WebSocket<TcpStream>,
    feed: &mut ClientFeed,
    closed: &AtomicBool,
    shared: &Shared,
) {
    while !closed.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
        let frames = match feed.poll(POLL) {
            Ok(f) => f,
            Err(e) => {
                let _ = ws.send(Message::text(error_json(&e.to_string())));
                return;
            }
        };
        if frames.is_empty() {
            continue;
        }
        for f in frames {
            let msg = match f {
                WireFrame::Text(t) => Message::text(t),
                WireFrame::Binary(b) => Message::binary(b),
            };
            if ws.write(msg).is_err() {
                return;
            }
        }
        if ws.flush().is_err() {
            return;
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}

fn read_loop(
    stream: TcpStream,
    shared: &Shared,
    session: &str,
    notices: &std::sync::mpsc::Sender<String>,
) {
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, Some(config));
    loop {
        let msg = match ws.read() {
            Ok(m) => m,
            Err(_) => return,
        };
        let text = match &msg {
            Message::Text(t) => t.as_str(),
            Message::Close(_) => return,
            _ => continue,
        };
        let result = serde_json::from_str::<Control>(text)
            .map_err(|e| crate::Error::BadRequest(format!("control message: {e}")))
            .and_then(|c| shared.console.control(session, c));
        if let Err(e) = result {
            let _ = notices.send(error_json(&e.to_string()));
        }
    }
}
