//! The console server: HTTP (tiny_http) for the page, its assets and the JSON API, and WebSocket
//! (tungstenite) for live terminals, each on its own threads and its own port of the same address.
//!
//! Every request needs the access token: `Authorization: Bearer <token>`, or the `HttpOnly`,
//! `SameSite=Strict` cookie the server sets when the page is first opened with `/?token=<token>`
//! (it then redirects to `/`, so the token leaves the address bar). A WebSocket may also carry the
//! token as its `token` query parameter or as an offered `Sec-WebSocket-Protocol`, and is refused
//! when its `Origin` is not this server's page.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;

use crate::bridge::{Console, Control};
use crate::http::{HttpRequest, HttpResponse, MAX_BODY_BYTES, Routes, cookie_value, split_url};
use crate::launcher::SpawnRequest;
use crate::{AccessToken, Error, Result, assets};

/// Name of the cookie that carries the token after the first page load.
pub(crate) const COOKIE: &str = "ao_console_token";

/// How the server listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the HTTP server (default `127.0.0.1:0`, a free port).
    pub bind: SocketAddr,
    /// Port of the WebSocket server on the same IP address (0 = a free port).
    pub ws_port: u16,
    /// The access token; `None` makes a random one.
    pub token: Option<AccessToken>,
    /// Allow binding an address other than loopback (the caller should warn).
    pub allow_remote: bool,
    /// Threads answering HTTP requests.
    pub http_workers: usize,
    /// Most WebSocket clients at once; more are refused.
    pub max_ws_clients: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ws_port: 0,
            token: None,
            allow_remote: false,
            http_workers: 4,
            max_ws_clients: 2048,
        }
    }
}

/// State shared by the server's threads.
pub(crate) struct Shared {
    pub(crate) console: Arc<Console>,
    pub(crate) token: AccessToken,
    pub(crate) routes: Vec<Arc<dyn Routes>>,
    pub(crate) http_addr: SocketAddr,
    pub(crate) ws_addr: SocketAddr,
    pub(crate) stop: AtomicBool,
    pub(crate) ws_clients: AtomicUsize,
    pub(crate) max_ws_clients: usize,
}

/// A running console server. Dropping it (or [`ConsoleServer::shutdown`]) stops its threads.
pub struct ConsoleServer {
    shared: Arc<Shared>,
    http: Arc<tiny_http::Server>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ConsoleServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleServer")
            .field("http_addr", &self.shared.http_addr)
            .field("ws_addr", &self.shared.ws_addr)
            .finish_non_exhaustive()
    }
}

impl ConsoleServer {
    /// Binds both listeners and starts the threads. `routes` are offered every authenticated
    /// request the console itself does not answer (see [`Routes`]).
    pub fn start(
        console: Arc<Console>,
        config: ServerConfig,
        routes: Vec<Arc<dyn Routes>>,
    ) -> Result<Self> {
        if !config.bind.ip().is_loopback() && !config.allow_remote {
            return Err(Error::RemoteBindRefused(config.bind));
        }
        let token = match config.token {
            Some(t) => t,
            None => AccessToken::generate()?,
        };
        let http_listener = TcpListener::bind(config.bind).map_err(|e| {
            Error::io(
                format!("binding the console http server to {}", config.bind),
                e,
            )
        })?;
        let http_addr = http_listener
            .local_addr()
            .map_err(|e| Error::io("reading the http server address", e))?;
        let ws_bind = SocketAddr::new(config.bind.ip(), config.ws_port);
        let ws_listener = TcpListener::bind(ws_bind).map_err(|e| {
            Error::io(
                format!("binding the console websocket server to {ws_bind}"),
                e,
            )
        })?;
        let ws_addr = ws_listener
            .local_addr()
            .map_err(|e| Error::io("reading the websocket server address", e))?;
        let http = tiny_http::Server::from_listener(http_listener, None).map_err(|e| {
            Error::io(
                format!("starting the http server on {http_addr}"),
                std::io::Error::other(e.to_string()),
            )
        })?;
        let http = Arc::new(http);
        let shared = Arc::new(Shared {
            console,
            token,
            routes,
            http_addr,
            ws_addr,
            stop: AtomicBool::new(false),
            ws_clients: AtomicUsize::new(0),
            max_ws_clients: config.max_ws_clients,
        });
        let mut threads = Vec::new();
        for i in 0..config.http_workers.max(1) {
            let http = http.clone();
            let shared = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("console-http-{i}"))
                .spawn(move || http_worker(&http, &shared))
                .map_err(|e| Error::io("starting an http worker thread", e))?;
            threads.push(t);
        }
        let ws_shared = shared.clone();
        let t = std::thread::Builder::new()
            .name("console-ws-accept".to_owned())
            .spawn(move || crate::ws::accept_loop(&ws_listener, &ws_shared))
            .map_err(|e| Error::io("starting the websocket accept thread", e))?;
        threads.push(t);
        Ok(ConsoleServer {
            shared,
            http,
            threads,
        })
    }

    /// Where the HTTP server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.shared.http_addr
    }

    /// Where the WebSocket server listens.
    pub fn ws_addr(&self) -> SocketAddr {
        self.shared.ws_addr
    }

    /// The access token.
    pub fn token(&self) -> &AccessToken {
        &self.shared.token
    }

    /// Whether it listens on an address other than loopback.
    pub fn is_remote(&self) -> bool {
        !self.shared.http_addr.ip().is_loopback()
    }

    /// The dashboard's address with the token, to open once in a browser (print it to the person
    /// who started the server, never to a log).
    pub fn dashboard_url(&self) -> String {
        format!(
            "http://{}/?token={}",
            self.shared.http_addr,
            self.shared.token.expose()
        )
    }

    /// The console behind the server.
    pub fn console(&self) -> &Arc<Console> {
        &self.shared.console
    }

    /// Stops accepting, ends the WebSocket clients and joins the threads.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.threads.len() {
            self.http.unblock();
        }
        // Wake the blocking accept; the loop sees the flag and ends.
        let _ = std::net::TcpStream::connect_timeout(&self.shared.ws_addr, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

fn http_worker(http: &tiny_http::Server, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match http.recv_timeout(Duration::from_millis(500)) {
            Ok(Some(req)) => handle(req, shared),
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

fn handle(mut req: tiny_http::Request, shared: &Shared) {
    let method = req.method().as_str().to_owned();
    let (path, mut query) = split_url(req.url());
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_owned(),
            )
        })
        .collect();
    let host = header(&headers, "host").unwrap_or_default().to_owned();

    // The first page load carries the token in the URL: trade it for a cookie and drop it from
    // the address bar.
    if method == "GET"
        && path == "/"
        && let Some(t) = query
            .iter()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.clone())
    {
        let resp = if shared.token.matches(&t) {
            let mut r = HttpResponse::bytes("text/plain; charset=utf-8", b"see /".to_vec())
                .with_header("Location", "/")
                .with_header(
                    "Set-Cookie",
                    &format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/"),
                );
            r.status = 303;
            r
        } else {
            unauthorized_page()
        };
        respond(req, resp, shared, &host);
        return;
    }
    if !authorized(&headers, shared) {
        let resp = if method == "GET" && path == "/" {
            unauthorized_page()
        } else {
            HttpResponse::error(401, "missing or wrong access token")
        };
        respond(req, resp, shared, &host);
        return;
    }
    // Credentials stop here: handlers (and the routes of other crates) never see them.
    headers.retain(|(k, _)| k != "authorization" && k != "cookie");
    query.retain(|(k, _)| k != "token");

    let declared = req.body_length().unwrap_or(0);
    if declared > MAX_BODY_BYTES {
        respond(
            req,
            HttpResponse::error(413, "Request body too large"),
            shared,
            &host,
        );
        return;
    }
    let mut body = Vec::new();
    let read = req
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body);
    if read.is_err() {
        respond(
            req,
            HttpResponse::error(400, "could not read the request body"),
            shared,
            &host,
        );
        return;
    }
    if body.len() > MAX_BODY_BYTES {
        respond(
            req,
            HttpResponse::error(413, "Request body too large"),
            shared,
            &host,
        );
        return;
    }
    let request = HttpRequest {
        method,
        path,
        query,
        headers,
        body,
    };
    let resp = route(&request, shared);
    respond(req, resp, shared, &host);
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A bearer token or the console cookie.
fn authorized(headers: &[(String, String)], shared: &Shared) -> bool {
    let bearer = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .iter()
        .filter(|(k, _)| k == "cookie")
        .find_map(|(_, v)| cookie_value(v, COOKIE));
    bearer
        .into_iter()
        .chain(cookie)
        .any(|t| shared.token.matches(t))
}

fn unauthorized_page() -> HttpResponse {
    let mut r = HttpResponse::bytes(
        "text/html; charset=utf-8",
        b"<!doctype html><title>agent-orchestrator</title><p>Open the address printed by \
          <code>agent-orchestrator serve</code> (it carries the access token).</p>"
            .to_vec(),
    );
    r.status = 401;
    r
}

fn respond(req: tiny_http::Request, resp: HttpResponse, shared: &Shared, host: &str) {
    let mut out = tiny_http::Response::from_data(resp.body).with_status_code(resp.status);
    let ws_host = host
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(host)
        .to_owned();
    let csp = format!(
        "default-src 'self'; connect-src 'self' ws://{ws_host}:{}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        shared.ws_addr.port()
    );
    let fixed = [
        ("Content-Type", resp.content_type.as_str()),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Content-Security-Policy", csp.as_str()),
    ];
    for (k, v) in fixed
        .iter()
        .map(|(k, v)| (*k, *v))
        .chain(resp.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            out.add_header(h);
        }
    }
    // The client may have gone; nothing to do about it.
    let _ = req.respond(out);
}

fn route(req: &HttpRequest, shared: &Shared) -> HttpResponse {
    if req.method == "GET"
        && let Some((content_type, bytes)) = assets::find(&req.path)
    {
        return HttpResponse::bytes(content_type, bytes.to_vec());
    }
    let seg = req.segments();
    if seg.starts_with(&["api", "console"]) {
        return console_api(req, &seg[2..], shared);
    }
    for r in &shared.routes {
        if let Some(resp) = r.handle(req) {
            return resp;
        }
    }
    HttpResponse::error(404, "Not found")
}

fn console_api(req: &HttpRequest, seg: &[&str], shared: &Shared) -> HttpResponse {
    let console = &shared.console;
    let result = match (req.method.as_str(), seg) {
        ("GET", ["config"]) => Ok(HttpResponse::json(
            200,
            &json!({
                "wsPort": shared.ws_addr.port(),
                "agents": console.agents(),
                "defaultWorkdir": console.default_workdir(),
                "version": env!("CARGO_PKG_VERSION"),
            }),
        )),
        ("GET", ["sessions"]) => {
            let list: Vec<_> = console
                .sessions()
                .into_iter()
                .map(|(s, since)| json!({ "session": s, "statusSince": since }))
                .collect();
            Ok(HttpResponse::json(200, &json!(list)))
        }
        ("GET", ["sessions", id]) => console
            .snapshot(id)
            .map(|s| HttpResponse::json(200, &s.to_json())),
        ("POST", ["sessions"]) => match req.json::<SpawnRequest>() {
            Ok(spawn) => console
                .spawn(&spawn)
                .map(|s| HttpResponse::json(201, &json!({ "session": s }))),
            Err(resp) => return resp,
        },
        ("POST", ["sessions", id, "control"]) => match req.json::<Control>() {
            Ok(c) => console
                .control(id, c)
                .map(|()| HttpResponse::json(200, &json!({ "success": true }))),
            Err(resp) => return resp,
        },
        (_, ["config"] | ["sessions"] | ["sessions", _] | ["sessions", _, "control"]) => {
            return HttpResponse::error(405, "Method not allowed");
        }
        _ => return HttpResponse::error(404, "Not found"),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// The status and `{error}` body for an error.
pub(crate) fn error_response(e: &Error) -> HttpResponse {
    use pty_manager::Error as M;
    let status = match e {
        Error::Unauthorized => 401,
        Error::ForeignOrigin { .. } => 403,
        Error::BadRequest(_) | Error::UnknownAgent(_) | Error::InvalidToken => 400,
        Error::NotImplemented(_) => 501,
        Error::Manager(M::SessionNotFound(_)) => 404,
        Error::Manager(
            M::UnknownKey(_) | M::InvalidId(_) | M::InvalidSize { .. } | M::WorkdirNotFound(_),
        ) => 400,
        Error::Manager(M::SessionExists(_) | M::SessionNotRunning(_)) => 409,
        _ => 500,
    };
    HttpResponse::error(status, &e.to_string())
}
