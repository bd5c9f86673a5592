//! The HTTP API on a real console server on 127.0.0.1:0: every route refuses a missing or wrong
//! token, and with the token the routes drive real shell sessions, a real git workspace and the
//! coordinator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use orchestrator_plugin::http_api::HttpApi;
use orchestrator_plugin::runtime::{SettingsStore, StandaloneRuntime};
use orchestrator_plugin::scratch::{ScratchConfig, ScratchStore};
use orchestrator_plugin::services::{GitWorkspaces, ManagedPty};
use orchestrator_plugin::settings::{PtyServiceConfig, WorkspaceConfig};
use orchestrator_plugin::supervision::{Coordinator, Level};
use pty_console::{AccessToken, Console, ConsoleServer, Routes, ServerConfig, ShellLauncher};

use crate::fakes::TempDir;

struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
    coord: Arc<Coordinator>,
    pty: Arc<ManagedPty>,
    _server: ConsoleServer,
}

impl Api {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string())
                    .unwrap(),
            ),
            None => self.agent.run(req.body(()).unwrap()),
        };
        let mut resp = resp.unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None, Some(&self.token.clone()))
    }
    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body), Some(&self.token.clone()))
    }
}

fn start(tmp: &TempDir) -> Api {
    let settings = SettingsStore::from_pairs([
        ("HOME", tmp.0.display().to_string()),
        ("PTY_SERVICE_CONFIG", json!({"maxLogLines": 40}).to_string()),
        (
            "CODING_WORKSPACE_CONFIG",
            json!({"baseDir": tmp.0.join("ws").display().to_string()}).to_string(),
        ),
    ]);
    let manager = Arc::new(pty_manager::PtyManager::new().unwrap());
    let pty = Arc::new(
        ManagedPty::with_manager(manager.clone(), PtyServiceConfig::default(), |_| {}).unwrap(),
    );
    let wsc = WorkspaceConfig::from_settings(&|k| settings.get(k), Some(&tmp.0)).unwrap();
    let ws = GitWorkspaces::open(&wsc, None).unwrap();
    let rt: Arc<StandaloneRuntime> = Arc::new(
        StandaloneRuntime::new(settings)
            .unwrap()
            .with_pty(pty.clone())
            .with_workspace(Arc::new(ws))
            .with_scratch(Arc::new(ScratchStore::new(
                ScratchConfig::from_settings(&|_| None, &tmp.0.join("ws")).unwrap(),
                || 0,
            ))),
    );
    let coord = Arc::new(Coordinator::new(rt.clone(), Level::Autonomous, || 0));
    let api: Arc<dyn Routes> = Arc::new(
        HttpApi::new(rt, Some(coord.clone())).with_event_stream(Duration::from_millis(100), 2),
    );
    let console = Console::new(manager, Arc::new(ShellLauncher)).unwrap();
    let token = AccessToken::generate().unwrap();
    let secret = token.expose().to_string();
    let server = ConsoleServer::start(
        console,
        ServerConfig {
            token: Some(token),
            ..ServerConfig::default()
        },
        vec![api],
    )
    .unwrap();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    Api {
        base: format!("http://{}", server.http_addr()),
        token: secret,
        agent,
        coord,
        pty,
        _server: server,
    }
}

#[test]
fn every_route_needs_the_token() {
    let tmp = TempDir::new("http-auth");
    let api = start(&tmp);
    let routes = [
        ("GET", "/api/coding-agents"),
        ("POST", "/api/coding-agents/spawn"),
        ("GET", "/api/coding-agents/x/output"),
        ("GET", "/api/coding-agents/coordinator/status"),
        ("POST", "/api/coding-agents/coordinator/supervision"),
        ("POST", "/api/workspace/provision"),
        ("GET", "/api/issues?repo=a/b"),
        ("POST", "/api/coding-agents/hooks"),
    ];
    for (m, p) in routes {
        let body = (m == "POST").then(|| json!({}));
        assert_eq!(
            api.call(m, p, body.clone(), None).0,
            401,
            "{m} {p} without a token"
        );
        assert_eq!(
            api.call(m, p, body, Some("not-the-token")).0,
            401,
            "{m} {p} with a wrong token"
        );
    }
}

#[test]
fn sessions_workspaces_and_supervision_over_http() {
    let tmp = TempDir::new("http-routes");
    let api = start(&tmp);
    let work = tmp.0.join("ws").join("proj");
    std::fs::create_dir_all(&work).unwrap();

    assert_eq!(api.get("/api/coding-agents"), (200, json!([])));
    let (st, v) = api.post(
        "/api/coding-agents/spawn",
        json!({"agentType": "shell", "workdir": "/"}),
    );
    assert_eq!(st, 403, "{v}");
    let (st, v) = api.post(
        "/api/coding-agents/spawn",
        json!({"agentType": "cursor", "workdir": work.display().to_string()}),
    );
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("unknown agent type: cursor"))
    );
    let (st, v) = api.post("/api/coding-agents/spawn", json!({"agentType": "shell", "workdir": work.display().to_string(), "task": "echo from-http"}));
    assert_eq!(st, 201, "{v}");
    let id = v["sessionId"].as_str().unwrap().to_string();
    assert_eq!(v["agentType"], "shell");

    let (st, v) = api.get(&format!("/api/coding-agents/{id}"));
    assert_eq!((st, v["id"].as_str()), (200, Some(id.as_str())));
    // The task is typed once the shell shows its prompt (BEHAVIOR.md §2.3), once.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = api.get(&format!("/api/coding-agents/{id}/output?lines=50"));
        let out = v["output"].as_str().unwrap_or("").to_string();
        if out.lines().any(|l| l == "from-http") {
            assert_eq!(out.matches("echo from-http").count(), 1, "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "the task never ran: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(api.get("/api/coding-agents/nope").0, 404);
    assert_eq!(
        api.post(&format!("/api/coding-agents/{id}/send"), json!({}))
            .0,
        400
    );
    assert_eq!(
        api.post(
            &format!("/api/coding-agents/{id}/send"),
            json!({"keys": ["warp"]})
        )
        .0,
        500
    );
    assert_eq!(
        api.post(
            &format!("/api/coding-agents/{id}/send"),
            json!({"input": "echo second-line"})
        ),
        (200, json!({"success": true}))
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = api.get(&format!("/api/coding-agents/{id}/output?lines=50"));
        let out = v["output"].as_str().unwrap_or("").to_string();
        if out.matches("second-line").count() >= 2 && out.contains("from-http") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "output never showed the commands: {out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `maxLogLines` (40 here) bounds what one request returns.
    api.post(
        &format!("/api/coding-agents/{id}/send"),
        json!({"input": "seq 1000 1100"}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = api.get(&format!("/api/coding-agents/{id}/output?lines=5000"));
        let out = v["output"].as_str().unwrap_or("").to_string();
        if out.contains("1100") {
            assert!(out.lines().count() <= 40, "{}", out.lines().count());
            assert!(!out.contains("1050"), "older lines are cut: {out}");
            break;
        }
        assert!(Instant::now() < deadline, "seq never finished: {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, v) = api.get(&format!("/api/coding-agents/{id}/buffered-output"));
    assert!(st == 200 && v["output"].as_str().unwrap().contains("second-line"));
    assert_eq!(
        api.get(&format!("/api/coding-agents/{id}/audit")),
        (200, json!({"sessionId": id, "records": []}))
    );
    let (st, v) = api.get("/api/coding-agents/preflight");
    assert_eq!(st, 200);
    assert_eq!(v.as_array().unwrap().len(), 7, "{v}");
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|r| r["installed"].is_boolean() && r["install_command"].is_string())
    );
    let (st, v) = api.get("/api/coding-agents/approval-config?agentType=openai&preset=readonly");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["preset"], "readonly");
    assert!(v["summary"].as_str().unwrap().starts_with("Codex: "), "{v}");
    assert_eq!(
        api.get("/api/coding-agents/approval-config?agentType=shell")
            .0,
        400
    );
    assert_eq!(
        api.get("/api/coding-agents/approval-config?agentType=claude&preset=yolo")
            .0,
        400
    );
    let (st, v) = api.get("/api/coding-agents/workspace-files?agentType=claude");
    assert_eq!(
        (st, v["memoryFilePath"].as_str()),
        (200, Some("CLAUDE.md")),
        "{v}"
    );
    let (st, v) = api.get("/api/coding-agents/metrics");
    assert_eq!((st, v["shell"]["sessions"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(api.get("/api/coding-agents/scratch"), (200, json!([])));
    assert_eq!(
        api.post("/api/coding-agents/nope/scratch/keep", json!({}))
            .0,
        404
    );
    let (st, v) = api.post(
        &format!("/api/coding-agents/{id}/stop"),
        json!({"force": true}),
    );
    assert_eq!((st, v), (200, json!({"success": true, "sessionId": id})));

    // Hooks: method, and no hook token is 401 even with the console token (the session's hook
    // token is the only credential this route takes; see the managed service's loopback test).
    assert_eq!(
        api.call(
            "GET",
            "/api/coding-agents/hooks",
            None,
            Some(&api.token.clone())
        )
        .0,
        405
    );
    let (st, v) = api.post(
        "/api/coding-agents/hooks",
        json!({"hook_event_name": "Stop"}),
    );
    assert_eq!((st, v), (401, json!({"error": "Invalid hook token"})));

    // Supervision level.
    assert_eq!(
        api.get("/api/coding-agents/coordinator/supervision"),
        (200, json!({"level": "autonomous"}))
    );
    assert_eq!(
        api.post(
            "/api/coding-agents/coordinator/supervision",
            json!({"level": "confirm"})
        ),
        (200, json!({"success": true, "level": "confirm"}))
    );
    assert_eq!(
        api.post(
            "/api/coding-agents/coordinator/supervision",
            json!({"level": "yolo"})
        )
        .0,
        400
    );
    assert_eq!(
        api.get("/api/coding-agents/coordinator/tasks/none").1,
        json!({"error": "Task context not found"})
    );
    assert_eq!(
        api.post(
            "/api/coding-agents/coordinator/confirm/none",
            json!({"approved": true})
        )
        .0,
        404
    );
    // A decision is never guessed from a missing or non-boolean `approved`.
    for body in [
        json!({}),
        json!({"approved": "false"}),
        json!({"approved": 0}),
        json!({"approved": true, "override": "y"}),
        json!({"approved": true, "prompt": 3}),
    ] {
        assert_eq!(
            api.post("/api/coding-agents/coordinator/confirm/none", body.clone())
                .0,
            400,
            "{body}"
        );
    }

    // Bodies.
    // Invalid JSON (a JSON string, not an object) is refused with the API's error shape.
    let (st, v) = api.post("/api/coding-agents/spawn", json!("not an object"));
    assert_eq!((st, v), (400, json!({"error": "Invalid JSON body"})));
    let big = "x".repeat(1024 * 1024 + 10);
    let (st, _) = api.post("/api/coding-agents/spawn", json!({"task": big}));
    assert_eq!(st, 413);

    // The forge allowlist holds here too, scp-style addresses included.
    for repo in ["https://evil.example/o/r", "evil.example:org/repo"] {
        let (st, v) = api.post("/api/workspace/provision", json!({"repo": repo}));
        assert_eq!(st, 400, "{repo}: {v}");
    }
    // A workspace from a local bare remote, then its status, a commit and a refused delete.
    let remote = crate::run_cmd::bare_remote_for_tests(&tmp.0);
    let (st, v) = api.post(
        "/api/workspace/provision",
        json!({"repo": remote.display().to_string()}),
    );
    assert_eq!(st, 201, "{v}");
    let wid = v["id"].as_str().unwrap().to_string();
    let path = std::path::PathBuf::from(v["path"].as_str().unwrap());
    std::fs::write(path.join("new.txt"), "x\n").unwrap();
    let (st, v) = api.get(&format!("/api/workspace/{wid}"));
    assert_eq!((st, v["clean"].as_bool()), (200, Some(false)), "{v}");
    assert_eq!(v["untracked"], json!(["new.txt"]));
    let (st, v) = api.post(
        &format!("/api/workspace/{wid}/commit"),
        json!({"message": "add new"}),
    );
    assert!(
        st == 200 && v["sha"].as_str().is_some_and(|s| s.len() == 40),
        "{v}"
    );
    let (st, v) = api.call(
        "DELETE",
        &format!("/api/workspace/{wid}"),
        None,
        Some(&api.token.clone()),
    );
    assert_eq!(st, 409, "unpushed work is refused: {v}");
    let (st, v) = api.post(&format!("/api/workspace/{wid}/push"), json!({}));
    assert_eq!(st, 200, "{v}");
    let (st, _) = api.call(
        "DELETE",
        &format!("/api/workspace/{wid}"),
        None,
        Some(&api.token.clone()),
    );
    assert_eq!(st, 200);
    assert_eq!(api.get("/api/issues").0, 400);
}

/// An SSE client over ureq: the response's body read line by line as it arrives.
struct EventStream {
    lines: std::io::Lines<std::io::BufReader<ureq::BodyReader<'static>>>,
}

impl EventStream {
    fn open(api: &Api, token: Option<&str>) -> Result<EventStream, u16> {
        let mut req = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}/api/coding-agents/coordinator/events", api.base))
            .header("Accept", "text/event-stream");
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = api.agent.run(req.body(()).unwrap()).unwrap();
        if resp.status() != 200 {
            return Err(resp.status().as_u16());
        }
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        use std::io::BufRead;
        let reader = resp.into_body().into_reader();
        Ok(EventStream {
            lines: std::io::BufReader::new(reader).lines(),
        })
    }

    /// Lines up to and including the first one that satisfies `f`.
    fn until(&mut self, f: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        for line in self.lines.by_ref() {
            let line = line.expect("stream read");
            let done = f(&line);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("stream ended first: {seen:?}");
    }
}

#[test]
fn coordinator_events_stream_live() {
    let tmp = TempDir::new("http-sse");
    let api = start(&tmp);
    // Same token as every route.
    assert_eq!(EventStream::open(&api, None).err(), Some(401));
    assert_eq!(EventStream::open(&api, Some("nope")).err(), Some(401));

    let mut first = EventStream::open(&api, Some(&api.token)).unwrap();
    let head = first.until(|l| l.starts_with("data: "));
    assert_eq!(head[..3], [":ok", "", "event: snapshot"], "{head:?}");
    let snap: Value = serde_json::from_str(head[3].trim_start_matches("data: ")).unwrap();
    assert_eq!(
        (
            snap["supervisionLevel"].as_str(),
            snap["pendingCount"].as_u64(),
            snap["tasks"].as_array().map(Vec::len)
        ),
        (Some("autonomous"), Some(0), Some(0)),
        "{snap}"
    );

    // Events emitted after the client connected arrive, one data line each, in order.
    api.coord.set_level(Level::Notify);
    assert_eq!(
        api.post("/api/coding-agents/coordinator/pause", json!({})),
        (200, json!({"success": true, "paused": true}))
    );
    assert_eq!(
        api.get("/api/coding-agents/coordinator/status").1["paused"],
        true
    );
    let got = first.until(|l| l.contains("coordinator_paused"));
    let data: Vec<Value> = got
        .iter()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        data,
        vec![
            json!({"type": "supervision_changed", "level": "notify"}),
            json!({"type": "coordinator_paused"})
        ]
    );
    // Quiet streams get a keep-alive comment (100 ms here; 30 s by default).
    first.until(|l| l == ":ping");

    // A real supervised session: its registration and its pass-through events reach the stream.
    api.pty.set_event_sink(api.coord.clone());
    api.post("/api/coding-agents/coordinator/resume", json!({}));
    let work = tmp.0.join("ws").join("sse");
    std::fs::create_dir_all(&work).unwrap();
    let (st, v) = api.post(
        "/api/coding-agents/spawn",
        json!({"agentType": "shell", "workdir": work.display().to_string(), "task": "echo sse-check"}),
    );
    assert_eq!(st, 201, "{v}");
    let id = v["sessionId"].as_str().unwrap().to_string();
    let types_for = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter(|v| v["sessionId"] == id.as_str() || v["sessionId"].is_null())
            .map(|v| v["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let seen = first.until(|l| l.contains("\"message\"") && l.contains(&id));
    let types = types_for(&seen);
    assert!(
        types.contains(&"coordinator_resumed".to_string())
            && types.contains(&"task_registered".to_string())
            && types.last().map(String::as_str) == Some("message"),
        "{types:?}"
    );
    api.post(
        &format!("/api/coding-agents/{id}/stop"),
        json!({"force": true}),
    );
    first.until(|l| l.contains("\"type\":\"stopped\""));

    // Open streams are bounded (2 here): the third is refused while two are open.
    let second = EventStream::open(&api, Some(&api.token)).unwrap();
    assert_eq!(api.coord.stream_count(), 2);
    assert_eq!(EventStream::open(&api, Some(&api.token)).err(), Some(503));

    // Clients that leave end their streams: the serving threads return and unsubscribe.
    drop(first);
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.coord.stream_count() != 0 {
        assert!(
            Instant::now() < deadline,
            "streams leaked after the clients left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut again = EventStream::open(&api, Some(&api.token)).unwrap();
    again.until(|l| l.starts_with("data: "));
}
