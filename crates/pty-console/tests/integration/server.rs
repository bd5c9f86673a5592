//! The server over loopback: tokens, origins, body bounds, extra routes, and a WebSocket that gets
//! the snapshot and then live output.

use std::sync::Arc;

use pty_console::{
    Console, ConsoleServer, Error, HttpRequest, HttpResponse, Routes, ServerConfig, ShellLauncher,
};
use pty_manager::PtyManager;
use tungstenite::Message;

use crate::support::{
    Harness, has_prompt, http, output_after_last_snapshot, ws_connect, ws_read_until,
};

#[test]
fn every_http_request_needs_the_token() {
    let h = Harness::start("http-token");
    let addr = h.server.http_addr();
    let token = h.token();
    let bearer = format!("Bearer {token}");
    let wrong = format!("Bearer {}", "0".repeat(64));
    let cases: &[(&str, &str)] = &[
        ("GET", "/"),
        ("GET", "/assets/vendor/xterm.js"),
        ("GET", "/api/console/sessions"),
        ("GET", "/api/console/config"),
        ("POST", "/api/console/sessions"),
        ("GET", "/api/anything-else"),
    ];
    for (method, path) in cases {
        let (status, _, _) = http(addr, method, path, &[], b"");
        assert_eq!(status, 401, "{method} {path} without a token");
        let (status, _, _) = http(addr, method, path, &[("Authorization", &wrong)], b"");
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }
    let (status, _, body) = http(
        addr,
        "GET",
        "/api/console/sessions",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!([])
    );
    let (status, _, body) = http(
        addr,
        "GET",
        "/assets/vendor/xterm.js",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert!(body.len() > 100_000, "the vendored xterm.js is served");
}

#[test]
fn the_page_trades_the_url_token_for_a_strict_cookie() {
    let h = Harness::start("cookie");
    let addr = h.server.http_addr();
    let token = h.token();
    let (status, _, _) = http(
        addr,
        "GET",
        &format!("/?token={}", "f".repeat(64)),
        &[],
        b"",
    );
    assert_eq!(status, 401);
    let (status, headers, _) = http(addr, "GET", &format!("/?token={token}"), &[], b"");
    assert_eq!(status, 303);
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("location"), "/");
    let cookie = get("set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (status, headers, body) = http(addr, "GET", "/", &[("Cookie", &pair)], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("xterm.js"));
    let csp = headers
        .iter()
        .find(|(k, _)| k == "content-security-policy")
        .unwrap();
    assert!(csp.1.contains("default-src 'self'"));
    // The cookie also works for the API.
    let (status, _, _) = http(
        addr,
        "GET",
        "/api/console/config",
        &[("Cookie", &pair)],
        b"",
    );
    assert_eq!(status, 200);
}

#[test]
fn request_bodies_are_bounded() {
    let h = Harness::start("body");
    let bearer = format!("Bearer {}", h.token());
    let big = vec![b'x'; pty_console::MAX_BODY_BYTES + 1];
    let (status, _, body) = http(
        h.server.http_addr(),
        "POST",
        "/api/console/sessions",
        &[("Authorization", &bearer)],
        &big,
    );
    assert_eq!(status, 413);
    assert!(String::from_utf8_lossy(&body).contains("Request body too large"));
    let (status, _, body) = http(
        h.server.http_addr(),
        "POST",
        "/api/console/sessions",
        &[("Authorization", &bearer)],
        b"{not json",
    );
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Invalid JSON body"));
}

#[test]
fn spawn_and_control_over_http_map_errors_to_statuses() {
    let h = Harness::start("control");
    let addr = h.server.http_addr();
    let bearer = format!("Bearer {}", h.token());
    let auth = [("Authorization", bearer.as_str())];
    let spawn =
        serde_json::json!({"agent": "shell", "workdir": h.dir, "task": "echo spawned-$((2+3))"});
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/console/sessions",
        &auth,
        spawn.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = v["session"]["id"].as_str().unwrap().to_owned();
    h.wait_screen(&id, "the task's output", |l| {
        l.iter().any(|l| l == "spawned-5")
    });
    let control = format!("/api/console/sessions/{id}/control");
    let cases: &[(&str, u16)] = &[
        (r#"{"type":"keys","keys":["ctrl+c"]}"#, 200),
        (r#"{"type":"keys","keys":["ctrl+nope"]}"#, 400),
        (r#"{"type":"resize","cols":0,"rows":10}"#, 400),
        (r#"{"type":"resize","cols":100,"rows":30}"#, 200),
        (r#"{"type":"approve"}"#, 400),
        (r#"{"type":"approve","prompt":"Proceed?"}"#, 409),
        (r#"{"type":"deny","prompt":"Proceed?"}"#, 409),
        (r#"{"type":"remove_rule","id":"none"}"#, 404),
        (r#"{"type":"nonsense"}"#, 400),
        // A stop waits for the reap, holding the connection: an hour's grace is refused.
        (r#"{"type":"stop","graceMs":3600000}"#, 400),
    ];
    for (body, want) in cases {
        let (status, _, resp) = http(addr, "POST", &control, &auth, body.as_bytes());
        assert_eq!(status, *want, "{body}: {}", String::from_utf8_lossy(&resp));
    }
    assert_eq!(h.console.manager().snapshot(&id).unwrap().cols, 100);
    let (status, _, _) = http(
        addr,
        "POST",
        "/api/console/sessions/nope/control",
        &auth,
        br#"{"type":"keys","keys":["enter"]}"#,
    );
    assert_eq!(status, 404);
    let bad = [
        serde_json::json!({"agent": "shell", "workdir": "relative/dir"}),
        serde_json::json!({"agent": "shell", "workdir": h.dir.join("missing")}),
        serde_json::json!({"agent": "no-such-agent", "workdir": h.dir}),
    ];
    for b in bad {
        let (status, _, _) = http(
            addr,
            "POST",
            "/api/console/sessions",
            &auth,
            b.to_string().as_bytes(),
        );
        assert_eq!(status, 400, "{b}");
    }
    let (status, _, body) = http(
        addr,
        "GET",
        &format!("/api/console/sessions/{id}"),
        &auth,
        b"",
    );
    assert_eq!(status, 200);
    let snap: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(snap["raw"].as_str().unwrap().contains("spawned-5"));
    assert!(
        snap["screen"]["text"]
            .as_str()
            .unwrap()
            .contains("spawned-5")
    );
    assert!(!snap["screen"]["formatted"].as_str().unwrap().is_empty());
}

struct Hello;

impl Routes for Hello {
    fn handle(&self, req: &HttpRequest) -> Option<HttpResponse> {
        (req.path == "/api/hello").then(|| {
            // Credentials never reach other crates' routes.
            assert!(req.header("authorization").is_none());
            HttpResponse::json(200, &serde_json::json!({"hello": req.query_param("who")}))
        })
    }
}

#[test]
fn extra_routes_are_mounted_behind_the_token() {
    let manager = Arc::new(PtyManager::new().unwrap());
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let server =
        ConsoleServer::start(console, ServerConfig::default(), vec![Arc::new(Hello)]).unwrap();
    let addr = server.http_addr();
    let bearer = format!("Bearer {}", server.token().expose());
    let (status, _, _) = http(addr, "GET", "/api/hello?who=x", &[], b"");
    assert_eq!(status, 401);
    let (status, _, body) = http(
        addr,
        "GET",
        "/api/hello?who=x",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["hello"],
        "x"
    );
    let (status, _, _) = http(
        addr,
        "GET",
        "/api/other",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 404);
}

/// A webhook that checks its own secret: `POST /api/hook` is self-authenticated; `/api/hook/more`
/// and `/api/hookx` (same prefix) are not. It also claims `GET /api/console/sessions` but answers
/// nothing there, to show a claimed path reaches only its own route.
struct Webhook;

impl Routes for Webhook {
    fn handle(&self, req: &HttpRequest) -> Option<HttpResponse> {
        match req.path.as_str() {
            "/api/hook" | "/api/hook/more" | "/api/hookx" => Some({
                assert!(req.header("authorization").is_none());
                if req.header("x-secret") == Some("s3cret") {
                    HttpResponse::json(200, &serde_json::json!({"got": req.body.len()}))
                } else {
                    HttpResponse::error(401, "wrong secret")
                }
            }),
            _ => None,
        }
    }

    fn self_authenticated(&self, method: &str, path: &str) -> bool {
        matches!(
            (method, path),
            ("POST", "/api/hook") | ("GET", "/api/console/sessions")
        )
    }
}

#[test]
fn only_declared_self_authenticated_routes_skip_the_token() {
    let manager = Arc::new(PtyManager::new().unwrap());
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let server =
        ConsoleServer::start(console, ServerConfig::default(), vec![Arc::new(Webhook)]).unwrap();
    let addr = server.http_addr();
    let bearer = format!("Bearer {}", server.token().expose());
    let secret = ("X-Secret", "s3cret");

    // The declared pair: no console token, the route's own secret decides.
    let (status, _, body) = http(addr, "POST", "/api/hook", &[secret], b"abc");
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["got"],
        3
    );
    let (status, _, body) = http(addr, "POST", "/api/hook", &[("X-Secret", "nope")], b"");
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("wrong secret"));
    let (status, _, body) = http(addr, "POST", "/api/hook", &[], b"");
    assert_eq!(status, 401);
    assert!(String::from_utf8_lossy(&body).contains("wrong secret"));

    // Everything else still needs the console token, whatever the route's secret.
    let cases: &[(&str, &str)] = &[
        ("GET", "/api/hook"),
        ("PUT", "/api/hook"),
        ("POST", "/api/hook/"),
        ("POST", "/api/hook/more"),
        ("POST", "/api/hookx"),
        ("POST", "/api/Hook"),
        ("GET", "/"),
        ("GET", "/assets/vendor/xterm.js"),
        ("POST", "/api/console/sessions"),
        ("GET", "/api/console/config"),
    ];
    for (method, path) in cases {
        let (status, _, body) = http(addr, method, path, &[secret], b"");
        assert_eq!(status, 401, "{method} {path} without the console token");
        assert!(
            !String::from_utf8_lossy(&body).contains("wrong secret"),
            "{method} {path} was refused by the server, not the route"
        );
    }
    // With the token the unmarked route of the same prefix works as before.
    let (status, _, _) = http(
        addr,
        "POST",
        "/api/hook/more",
        &[("Authorization", &bearer), secret],
        b"",
    );
    assert_eq!(status, 200);

    // A claimed path reaches only its route: the console's session list is not served.
    let (status, _, _) = http(addr, "GET", "/api/console/sessions", &[], b"");
    assert_eq!(status, 404);
    let (status, _, body) = http(
        addr,
        "GET",
        "/api/console/sessions",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200, "with the token the console answers as before");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!([])
    );

    // Bodies stay bounded without the token too.
    let big = vec![b'x'; pty_console::MAX_BODY_BYTES + 1];
    let (status, _, _) = http(addr, "POST", "/api/hook", &[secret], &big);
    assert_eq!(status, 413);
}

#[test]
fn a_non_loopback_bind_needs_the_explicit_flag() {
    let manager = Arc::new(PtyManager::new().unwrap());
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let config = ServerConfig {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::default()
    };
    let err = ConsoleServer::start(console, config, Vec::new()).unwrap_err();
    assert!(matches!(err, Error::RemoteBindRefused(_)), "{err}");
}

/// The cookie goes with requests any page makes to this server (a page on another port of
/// 127.0.0.1 is the same site to a browser), so a request that can change something and carries
/// only the cookie must come from this server's own page. A bearer token is enough on its own.
#[test]
fn a_cookie_alone_changes_nothing_from_another_pages_origin() {
    let h = Harness::start("cookie-origin");
    let addr = h.server.http_addr();
    let port = addr.port();
    let cookie = format!("ao_console_token={}", h.token());
    let spawn = serde_json::json!({"agent": "shell", "workdir": h.dir, "task": "echo from-a-page"})
        .to_string();
    let own = format!("http://127.0.0.1:{port}");
    let own_name = format!("http://localhost:{port}");
    let other_port = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    let count = || h.console.manager().list(None, None).len();
    let post_spawn = |headers: &[(&str, &str)]| {
        http(
            addr,
            "POST",
            "/api/console/sessions",
            headers,
            spawn.as_bytes(),
        )
    };
    for origin in [
        Some(other_port.as_str()),
        Some("http://evil.example"),
        Some("null"),
        Some("https://127.0.0.1"),
        None,
    ] {
        let mut headers = vec![("Cookie", cookie.as_str()), ("Content-Type", "text/plain")];
        headers.extend(origin.map(|o| ("Origin", o)));
        let (status, _, body) = post_spawn(&headers);
        assert_eq!(
            status,
            403,
            "{origin:?}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(count(), 0, "{origin:?} started nothing");
    }
    // Reading is not refused (a page of another origin cannot read the answer anyway).
    let (status, _, _) = http(
        addr,
        "GET",
        "/api/console/sessions",
        &[("Cookie", cookie.as_str()), ("Origin", other_port.as_str())],
        b"",
    );
    assert_eq!(status, 200);
    for origin in [own.as_str(), own_name.as_str()] {
        let (status, _, body) = post_spawn(&[("Cookie", cookie.as_str()), ("Origin", origin)]);
        assert_eq!(status, 201, "{origin}: {}", String::from_utf8_lossy(&body));
    }
    let bearer = format!("Bearer {}", h.token());
    let (status, _, _) = post_spawn(&[("Authorization", bearer.as_str())]);
    assert_eq!(status, 201);
    assert_eq!(count(), 3);
    h.console
        .manager()
        .stop_all(Some(std::time::Duration::from_millis(200)));
}

/// The Host header goes into the Content-Security-Policy only when it names this server; a
/// header with a control byte in it (a bare CR) is refused.
#[test]
fn the_host_header_cannot_shape_the_response_headers() {
    let h = Harness::start("host-header");
    let addr = h.server.http_addr();
    let bearer = format!("Bearer {}", h.token());
    let csp = |host: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let head = format!(
            "GET /api/console/sessions HTTP/1.1\r\nHost: {host}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status: u16 = text[9..12].parse().unwrap();
        let csp = text
            .lines()
            .find_map(|l| l.strip_prefix("Content-Security-Policy: "))
            .unwrap_or_default()
            .to_owned();
        (status, csp)
    };
    let ws = h.server.ws_addr().port();
    let port = addr.port();
    let (status, own) = csp(&format!("localhost:{port}"));
    assert_eq!(status, 200);
    assert!(
        own.contains(&format!("connect-src 'self' ws://localhost:{ws};")),
        "{own}"
    );
    let (status, foreign) = csp(&format!("a; script-src *:{port}"));
    assert_eq!(status, 200);
    assert!(!foreign.contains("script-src *"), "{foreign}");
    assert!(
        foreign.contains(&format!("ws://127.0.0.1:{ws};")),
        "{foreign}"
    );
    let (status, _) = csp(&format!("127.0.0.1:{port}\rX-Evil: 1"));
    assert_eq!(status, 400);
}

#[test]
fn websocket_needs_the_token_and_this_servers_origin() {
    let h = Harness::start("ws-auth");
    let id = h.shell("auth");
    let ws = h.server.ws_addr();
    let token = h.token();
    let page = format!("http://127.0.0.1:{}", h.server.http_addr().port());
    let rebound = format!("http://evil.test:{}", h.server.http_addr().port());
    let cookie = format!("ao_console_token={token}");
    let q = format!("session={id}");
    let qt = format!("session={id}&token={token}");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Result<(), &'a str>);
    let cases: Vec<Case> = vec![
        (q.as_str(), vec![], Err("http 401")),
        (q.as_str(), vec![("Origin", page.as_str())], Err("http 401")),
        (
            qt.as_str(),
            vec![("Origin", "http://evil.example")],
            Err("http 403"),
        ),
        (
            qt.as_str(),
            vec![("Origin", "http://127.0.0.1:1")],
            Err("http 403"),
        ),
        (
            q.as_str(),
            vec![
                ("Cookie", cookie.as_str()),
                ("Origin", "http://localhost.evil:80"),
            ],
            Err("http 403"),
        ),
        // A rebound name: Host and Origin agree, but they are not a name this server answers as.
        (
            qt.as_str(),
            vec![("Host", "evil.test"), ("Origin", rebound.as_str())],
            Err("http 403"),
        ),
        (qt.as_str(), vec![("Origin", page.as_str())], Ok(())),
        (
            q.as_str(),
            vec![("Cookie", cookie.as_str()), ("Origin", page.as_str())],
            Ok(()),
        ),
        (
            q.as_str(),
            vec![("Sec-WebSocket-Protocol", token.as_str())],
            Ok(()),
        ),
        (qt.as_str(), vec![], Ok(())),
        (
            "session=missing",
            vec![("Cookie", cookie.as_str())],
            Err("http 404"),
        ),
    ];
    for (query, headers, want) in cases {
        let got = ws_connect(ws, query, &headers).map(|_| ());
        assert_eq!(
            got.as_ref().map(|_| ()).map_err(String::as_str),
            want,
            "{query} {headers:?}"
        );
    }
}

#[test]
fn websocket_gets_the_snapshot_then_live_output_and_controls_the_session() {
    let h = Harness::start("ws-stream");
    let id = h.shell("stream");
    h.wait_screen(&id, "the prompt", has_prompt);
    h.console
        .manager()
        .write_raw(&id, b"echo before-$((40+2))\r")
        .unwrap();
    h.wait_screen(&id, "earlier output", |l| {
        l.iter().any(|l| l == "before-42")
    });

    let mut ws = ws_connect(
        h.server.ws_addr(),
        &format!("session={id}&token={}", h.token()),
        &[],
    )
    .unwrap();
    let first = ws_read_until(&mut ws, "snapshot and paint", |m| m.len() >= 2);
    let Message::Text(snap) = &first[0] else {
        panic!("first frame is not the snapshot: {:?}", first[0])
    };
    let snap: serde_json::Value = serde_json::from_str(snap).unwrap();
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["session"]["id"], id.as_str());
    assert!(
        snap["screen"]["text"]
            .as_str()
            .unwrap()
            .contains("before-42")
    );
    let Message::Binary(paint) = &first[1] else {
        panic!("second frame is not the paint bytes")
    };
    // The paint bytes reproduce the screen in a fresh terminal model.
    let mut model = pty_manager::Screen::new(
        snap["screen"]["cols"].as_u64().unwrap() as u16,
        snap["screen"]["rows"].as_u64().unwrap() as u16,
    );
    model.process(paint);
    assert!(
        model.lines().iter().any(|l| l == "before-42"),
        "{:?}",
        model.lines()
    );

    // Live output after the snapshot, typed through the socket itself.
    ws.send(Message::text(
        r#"{"type":"input","data":"echo live-$((6*7))\r"}"#,
    ))
    .unwrap();
    let frames = ws_read_until(&mut ws, "live output", |m| {
        String::from_utf8_lossy(&output_after_last_snapshot(m)).contains("live-42\r\n")
    });
    assert!(
        frames
            .iter()
            .all(|m| !matches!(m, Message::Text(t) if t.contains("snapshot"))),
        "no resync needed"
    );

    // A control error comes back on the socket, in order.
    ws.send(Message::text(r#"{"type":"keys","keys":["bogus-key"]}"#))
        .unwrap();
    ws_read_until(&mut ws, "the error message", |m| {
        m.iter().any(|m| matches!(m, Message::Text(t) if t.contains("\"type\":\"error\"") && t.contains("unknown key: bogus-key")))
    });

    // Stop from the socket; the status stream reports it.
    ws.send(Message::text(r#"{"type":"stop","graceMs":2000}"#))
        .unwrap();
    ws_read_until(&mut ws, "the stopped event", |m| {
        m.iter()
            .any(|m| matches!(m, Message::Text(t) if t.contains("\"kind\":\"stopped\"")))
    });
}

/// A route that streams one line per message it is handed, until the client leaves; it counts the
/// bodies running so the test can see a departed client's thread end.
struct Ticker {
    feed: std::sync::Mutex<Option<std::sync::mpsc::Receiver<String>>>,
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl Routes for Ticker {
    fn handle(&self, req: &HttpRequest) -> Option<HttpResponse> {
        (req.path == "/api/plain").then(|| HttpResponse::json(200, &serde_json::json!({})))
    }

    fn respond(&self, req: &HttpRequest) -> Option<pty_console::RouteResponse> {
        use std::sync::atomic::Ordering;
        if req.path != "/api/ticks" {
            return self.handle(req).map(Into::into);
        }
        let rx = self.feed.lock().unwrap().take();
        let running = self.running.clone();
        Some(pty_console::RouteResponse::Stream(
            pty_console::StreamResponse::new("text/event-stream", move |w| {
                running.fetch_add(1, Ordering::SeqCst);
                let _ = w.send(b":ok\n\n");
                loop {
                    if w.is_closed() {
                        break;
                    }
                    let got = rx
                        .as_ref()
                        .map(|rx| rx.recv_timeout(std::time::Duration::from_millis(50)));
                    match got {
                        Some(Ok(line)) => {
                            if w.send(format!("data: {line}\n\n").as_bytes()).is_err() {
                                break;
                            }
                        }
                        Some(Err(std::sync::mpsc::RecvTimeoutError::Disconnected)) => break,
                        _ => {
                            if rx.is_none() {
                                std::thread::sleep(std::time::Duration::from_millis(50));
                            }
                        }
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
            })
            .with_header("X-Stream", "yes"),
        ))
    }
}

/// Reads from `s` until `needle` has arrived (or panics after 10 s).
fn read_until(s: &mut std::net::TcpStream, seen: &mut Vec<u8>, needle: &str) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} never came; got {:?}",
            String::from_utf8_lossy(seen)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {needle:?}: {:?}",
                String::from_utf8_lossy(seen)
            ),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn streamed_responses_deliver_later_chunks_and_end_with_their_client() {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let (tx, rx) = std::sync::mpsc::channel();
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = Arc::new(Ticker {
        feed: std::sync::Mutex::new(Some(rx)),
        running: running.clone(),
    });
    let manager = Arc::new(PtyManager::new().unwrap());
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let server = ConsoleServer::start(console, ServerConfig::default(), vec![ticker]).unwrap();
    let addr = server.http_addr();
    let token = server.token().expose().to_owned();

    // Same token as everything else; ordinary routes of the same Routes still answer whole.
    let (status, _, _) = http(addr, "GET", "/api/ticks", &[], b"");
    assert_eq!(status, 401);
    let bearer = format!("Bearer {token}");
    let (status, headers, _) = http(
        addr,
        "GET",
        "/api/plain",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "content-length"));

    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/ticks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    read_until(&mut s, &mut seen, ":ok\n\n");
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("content-type: text/event-stream\r\n"));
    assert!(head.contains("connection: close\r\n"));
    assert!(head.contains("x-stream: yes\r\n"));
    assert!(!head.contains("content-length"), "{head}");
    wait_for("the body runs", || running.load(Ordering::SeqCst) == 1);

    // A chunk produced after the client connected arrives.
    tx.send("later".to_owned()).unwrap();
    read_until(&mut s, &mut seen, "data: later\n\n");

    // The client leaves; its body notices without any further write and returns.
    drop(s);
    wait_for("the body ends after the client left", || {
        running.load(Ordering::SeqCst) == 0
    });
    drop(tx);
}

#[test]
fn open_streams_are_bounded_and_end_at_shutdown() {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = Arc::new(Ticker {
        feed: std::sync::Mutex::new(None),
        running: running.clone(),
    });
    let manager = Arc::new(PtyManager::new().unwrap());
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let server = ConsoleServer::start(console, ServerConfig::default(), vec![ticker]).unwrap();
    let addr = server.http_addr();
    let token = server.token().expose().to_owned();
    let open = |seen: &mut Vec<u8>| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /api/ticks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        read_until(&mut s, seen, "\r\n\r\n");
        s
    };
    let mut clients = Vec::new();
    for _ in 0..64 {
        let mut seen = Vec::new();
        clients.push(open(&mut seen));
        assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    }
    wait_for("64 bodies run", || running.load(Ordering::SeqCst) == 64);
    let mut seen = Vec::new();
    let _extra = open(&mut seen);
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // Stopping the server ends every stream, though their clients are still connected.
    server.shutdown();
    wait_for("bodies end at shutdown", || {
        running.load(Ordering::SeqCst) == 0
    });
    drop(clients);
}
