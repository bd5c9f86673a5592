//! `agent-orchestrator serve` as a child process whose PATH holds a fake `aider`: over the HTTP
//! API on loopback, spawn it, send a line, see its answer in the output, stop it. The server's
//! port comes from the `SERVER_PORT` setting.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fakes::TempDir;

/// A line-mode stand-in for Aider: its idle prompt `> `, an echo of each line, and the token
/// report that ends a turn (the facts the aider manifest detects).
const FAKE_AIDER: &str = "#!/bin/sh\n\
    if [ \"$1\" = \"--version\" ]; then echo 'aider 0.86.2'; exit 0; fi\n\
    echo 'Aider v0.86.2 (fake)'\n\
    while true; do\n\
      printf '> '\n\
      IFS= read -r line || exit 0\n\
      echo \"fake-aider heard: $line\"\n\
      echo 'Tokens: 1.0k sent, 12 received.'\n\
    done\n";

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Authorization", format!("Bearer {token}"));
    let resp = match body {
        Some(b) => agent.run(
            req.header("Content-Type", "application/json")
                .body(b.to_string())
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    };
    let mut resp = resp.unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn wait_until(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_serve(tmp: &Path, bin: &Path, port: u16, token: &str) -> Serve {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"))
        .args(["serve", "--no-shell", "--write-token"])
        .arg(tmp.join("token"))
        .current_dir(tmp)
        .env_clear()
        .env("PATH", path)
        .env("HOME", tmp)
        .env("SERVER_PORT", port.to_string())
        .env("PTY_SERVICE_CONFIG", r#"{"debug": true}"#)
        .env("AGENT_ORCHESTRATOR_CONSOLE_TOKEN", token)
        .env(
            "CODING_WORKSPACE_CONFIG",
            json!({"baseDir": tmp.join("ws").display().to_string(), "debug": true}).to_string(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    Serve(child)
}

#[test]
fn a_fake_aider_through_serve_over_http() {
    let tmp = TempDir::new("serve-aider");
    let bin = tmp.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("aider");
    std::fs::write(&script, FAKE_AIDER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let proj = tmp.0.join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let token = "a".repeat(64);
    let port = free_port();
    let mut serve = start_serve(&tmp.0, &bin, port, &token);

    // Its start-up line names the address: the SERVER_PORT one.
    let stderr = serve.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = wait_until("the dashboard line", || {
        let line = rx.try_recv().ok()?;
        let rest = line.split("dashboard on http://").nth(1)?;
        Some(rest.split_whitespace().next()?.to_string())
    });
    assert_eq!(addr, format!("127.0.0.1:{port}"));
    let base = format!("http://{addr}/api/coding-agents");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();

    // Spawn: the fake CLI is found on the server's PATH.
    let (st, v) = call(
        &agent,
        "POST",
        &format!("{base}/spawn"),
        &token,
        Some(json!({"agentType": "aider", "workdir": proj.display().to_string()})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["agentType"], "aider");
    let id = v["sessionId"].as_str().unwrap().to_string();

    // Ready once the fake shows its prompt; then a line goes in and its echo comes out.
    wait_until("ready", || {
        let (_, s) = call(&agent, "GET", &format!("{base}/{id}"), &token, None);
        (s["status"] == "ready").then(|| s.to_string())
    });
    let (st, v) = call(
        &agent,
        "POST",
        &format!("{base}/{id}/send"),
        &token,
        Some(json!({"input": "hello from the test"})),
    );
    assert_eq!((st, v), (200, json!({"success": true})));
    let out = wait_until("the echo", || {
        let (_, o) = call(
            &agent,
            "GET",
            &format!("{base}/{id}/output?lines=50"),
            &token,
            None,
        );
        let text = o["output"].as_str()?.to_string();
        text.contains("fake-aider heard: hello from the test")
            .then_some(text)
    });
    assert!(out.contains("Tokens: 1.0k sent"), "{out}");

    // Stop: the session ends.
    let (st, v) = call(
        &agent,
        "POST",
        &format!("{base}/{id}/stop"),
        &token,
        Some(json!({})),
    );
    assert_eq!((st, v), (200, json!({"success": true, "sessionId": id})));
    wait_until("stopped", || {
        let (_, s) = call(&agent, "GET", &format!("{base}/{id}"), &token, None);
        (s["status"] == "stopped").then(|| s.to_string())
    });
    // The token is required for all of it.
    let (st, _) = call(&agent, "GET", &base, "wrong-token", None);
    assert_eq!(st, 401);
    // `debug: true` logs each session event by name on stderr.
    let mine = format!("agent-orchestrator pty: session {id} ");
    let mut logged = Vec::new();
    wait_until("debug lines", || {
        while let Ok(l) = rx.try_recv() {
            if let Some(kind) = l.strip_prefix(&mine) {
                logged.push(kind.to_string());
            }
        }
        logged
            .iter()
            .any(|k| k == "session_stopped")
            .then(|| logged.join(","))
    });
    assert!(logged.iter().any(|k| k == "session_ready"), "{logged:?}");

    // `CODING_WORKSPACE_CONFIG.debug` logs workspace events by name.
    let remote = crate::run_cmd::bare_remote_for_tests(&tmp.0);
    let (st, v) = call(
        &agent,
        "POST",
        &format!("http://{addr}/api/workspace/provision"),
        &token,
        Some(json!({"repo": remote.display().to_string()})),
    );
    assert_eq!(st, 201, "{v}");
    let wid = v["id"].as_str().unwrap().to_string();
    let prefix = format!("agent-orchestrator workspace: {wid} ");
    wait_until("workspace debug lines", || {
        while let Ok(l) = rx.try_recv() {
            if l.starts_with(&prefix) {
                return Some(l);
            }
        }
        None
    });
}
