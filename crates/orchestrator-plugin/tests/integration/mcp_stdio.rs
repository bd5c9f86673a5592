//! The MCP server over a child process's stdio: the built binary, spoken to line by line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::fakes::TempDir;
use crate::git_run::git;

pub struct McpClient {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

impl McpClient {
    pub fn start(home: &std::path::Path, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"));
        cmd.arg("mcp")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start agent-orchestrator mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        McpClient {
            child,
            stdin,
            lines: rx,
            next_id: 1,
        }
    }

    pub fn send_raw(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn recv(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("a response within 30 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let v = self.recv();
        assert_eq!(v["id"], id, "{v}");
        v
    }

    pub fn call(&mut self, tool: &str, args: Value) -> (bool, String, Value) {
        let v = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let r = &v["result"];
        let text = r["content"]
            .as_array()
            .unwrap_or_else(|| panic!("no content: {v}"))
            .iter()
            .map(|c| c["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        (r["isError"] == true, text, r["structuredContent"].clone())
    }

    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        for _ in 0..100 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("mcp server did not exit when stdin closed");
    }
}

#[test]
fn handshake_tool_list_and_protocol_errors_over_stdio() {
    let home = TempDir::new("mcp-hs");
    let mut c = McpClient::start(&home.0, &[]);
    let init = c.request(
        "initialize",
        json!({
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "agent-orchestrator");
    c.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let tools = c.request("tools/list", json!({}));
    let tools = tools["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "start_coding_task",
            "spawn_coding_agent",
            "send_to_coding_agent",
            "stop_coding_agent",
            "list_coding_agents",
            "provision_workspace",
            "finalize_workspace",
            "manage_issues"
        ]
    );
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }
    let (is_error, text, _) = c.call("manage_issues", json!({"issueNumber": "seven", "color": 1}));
    assert!(is_error);
    assert!(
        text.starts_with("invalid arguments for manage_issues: "),
        "{text}"
    );
    c.send_raw("{oops");
    assert_eq!(c.recv()["error"]["code"], -32700);
    let v = c.request("no/such", json!({}));
    assert_eq!(v["error"]["code"], -32601);
    assert!(c.finish().success());
}

#[test]
fn a_shell_agent_over_mcp_spawn_send_list_stop() {
    let home = TempDir::new("mcp-shell");
    let work = home.0.join("project");
    std::fs::create_dir_all(&work).unwrap();
    let mut c = McpClient::start(&home.0, &[]);
    c.request("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
    c.send_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    let (err, text, data) = c.call(
        "spawn_coding_agent",
        json!({"agentType": "bash", "workdir": work.display().to_string()}),
    );
    assert!(!err, "{text}");
    let id = data["sessionId"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        format!(
            "Started shell coding agent in {}. Session ID: {id}",
            work.display()
        )
    );

    let (err, text, _) = c.call(
        "send_to_coding_agent",
        json!({"sessionId": id, "input": "echo hi"}),
    );
    assert!(!err, "{text}");
    assert_eq!(text, "Sent to coding agent: \"echo hi\"");
    // The input reached a real shell: a second command leaves a file behind.
    let (err, _, _) = c.call(
        "send_to_coding_agent",
        json!({"input": "echo hi > proof.txt"}),
    );
    assert!(!err);
    let proof = work.join("proof.txt");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&proof)
        .map(|s| s.trim() != "hi")
        .unwrap_or(true)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell never ran the command: {:?} {:?}",
            std::fs::read_dir(&work).map(|d| d.map(|e| e.unwrap().file_name()).collect::<Vec<_>>()),
            std::fs::read_to_string(&proof)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (err, text, data) = c.call("list_coding_agents", json!({}));
    assert!(!err, "{text}");
    assert!(text.starts_with("Active coding agents:\n\n1. "), "{text}");
    assert!(
        text.contains(&format!(" shell ({}...)", &id[..8])),
        "{text}"
    );
    assert!(text.contains(&format!("📁 {}", work.display())), "{text}");
    assert_eq!(data["sessions"][0]["id"], id.as_str());
    assert_eq!(data["sessions"][0]["plainStatus"], "running");

    let (err, text, _) = c.call("stop_coding_agent", json!({"sessionId": id}));
    assert!(!err, "{text}");
    assert_eq!(text, format!("Stopped coding agent session {id}."));
    let (_, text, data) = c.call("list_coding_agents", json!({}));
    assert_eq!(data["sessions"][0]["status"], "stopped", "{text}");
    assert_eq!(data["sessions"][0]["plainStatus"], "stopped");
    let (err, text, _) = c.call("send_to_coding_agent", json!({"input": "echo again"}));
    assert!(err);
    assert_eq!(text, "No active coding sessions. Spawn an agent first.");
    // A workdir outside the allowed roots is refused.
    let (err, text, _) = c.call(
        "spawn_coding_agent",
        json!({"agentType": "shell", "workdir": "/"}),
    );
    assert!(err);
    assert_eq!(
        text,
        "The specified workdir is outside of allowed directories. Please use a workspace directory."
    );
    assert!(c.finish().success());
}

/// An initialized MCP client whose HOME maps `https://github.com/octo/<repo>` onto the local bare
/// `remote` (git `insteadOf`) and whose forge is a loopback fake GitHub holding `octo/<repo>` with
/// `default_branch` (returned: it must outlive the client).
fn forge_client(
    home: &std::path::Path,
    remote: &std::path::Path,
    repo: &str,
    default_branch: &str,
) -> (test_support::github::FakeGitHub, McpClient) {
    std::fs::write(
        home.join(".gitconfig"),
        format!(
            "[url \"file://{}\"]\n\tinsteadOf = https://github.com/octo/{repo}\n",
            remote.display()
        ),
    )
    .unwrap();
    let gh = test_support::github::FakeGitHub::start().unwrap();
    gh.add_repo("octo", repo, default_branch);
    let base = gh.base_url();
    let mut c = McpClient::start(
        home,
        &[
            ("GITHUB_API_URL", base.as_str()),
            ("GITHUB_TOKEN", gh.token()),
            ("NO_PROXY", "127.0.0.1,localhost"),
            ("no_proxy", "127.0.0.1,localhost"),
        ],
    );
    c.request("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
    (gh, c)
}

/// FINALIZE_WORKSPACE opens a real pull request and MANAGE_ISSUES talks to the forge: the binary
/// over MCP, a "github.com" repository served from a local bare remote (git `insteadOf`), and the
/// loopback fake GitHub for the REST calls.
#[test]
fn finalize_opens_a_pr_and_issues_reach_the_forge() {
    let home = TempDir::new("mcp-forge");
    let remote = crate::run_cmd::bare_remote_for_tests(&home.0);
    let (gh, mut c) = forge_client(&home.0, &remote, "hello", "main");

    let (err, text, data) = c.call(
        "provision_workspace",
        json!({"repo": "https://github.com/octo/hello"}),
    );
    assert!(!err, "{text}");
    assert!(text.ends_with("Type: clone"), "{text}");
    let path = std::path::PathBuf::from(data["path"].as_str().unwrap());
    let branch = data["branch"].as_str().unwrap().to_string();

    let (err, text, _) = c.call("finalize_workspace", json!({}));
    assert!(err);
    assert_eq!(text, "No changes to commit in this workspace.");
    std::fs::write(path.join("feature.txt"), "new\n").unwrap();
    let (err, text, data) = c.call("finalize_workspace", json!({"prTitle": "Add feature"}));
    assert!(!err, "{text}");
    let sha = data["commit"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "Workspace finalized!\nCommit: {}\nPR #1: {}",
            &sha[..8],
            data["prUrl"].as_str().unwrap()
        )
    );
    let pulls = gh.pulls("octo", "hello");
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["title"], "Add feature");
    assert_eq!(
        pulls[0]["head"]["ref"]
            .as_str()
            .or(pulls[0]["head"].as_str()),
        Some(branch.as_str())
    );
    let out = std::process::Command::new("git")
        .args([
            "--git-dir",
            remote.to_str().unwrap(),
            "show",
            &format!("{branch}:feature.txt"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "new\n",
        "the branch was pushed"
    );

    let (err, text, _) = c.call("manage_issues", json!({"operation": "create", "repo": "octo/hello", "title": "Crash on start", "body": "stack trace", "labels": ["bug"]}));
    assert!(!err, "{text}");
    assert!(text.starts_with("Created issue #"), "{text}");
    let (err, text, _) = c.call(
        "manage_issues",
        json!({"operation": "list", "repo": "octo/hello"}),
    );
    assert!(!err, "{text}");
    assert!(
        text.starts_with("Issues in octo/hello:\n") && text.contains("[open] Crash on start (bug)"),
        "{text}"
    );
    assert!(
        gh.issues("octo", "hello")
            .iter()
            .any(|i| i["title"] == "Crash on start")
    );
    assert!(c.finish().success());
}

/// Without a token but with an OAuth app, MANAGE_ISSUES runs the device flow: the code is shown,
/// the token arrives, the chat is told whose account authorized, and the call goes through.
#[test]
fn issues_without_a_token_use_the_device_flow() {
    use test_support::github::{DeviceStep, FakeGitHub};
    let home = TempDir::new("mcp-device");
    let gh = FakeGitHub::start().unwrap();
    gh.add_repo("octo", "hello", "main");
    // Denied first: that flow's end is reported, and the next call starts a new one, which the
    // person authorizes after two polls.
    gh.script_device_flow(vec![DeviceStep::Denied], 1, 600);
    let base = gh.base_url();
    let mut c = McpClient::start(
        &home.0,
        &[
            ("GITHUB_API_URL", base.as_str()),
            ("GITHUB_OAUTH_CLIENT_ID", "Iv1.test"),
            ("NO_PROXY", "127.0.0.1,localhost"),
            ("no_proxy", "127.0.0.1,localhost"),
        ],
    );
    c.request("initialize", json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
    let args = json!({"operation": "list", "repo": "octo/hello"});
    // A tool result is the only thing the model sees, so the code comes back at once instead of
    // after the person authorized (which blocked the server for up to 15 minutes).
    let (err, text, data) = c.call("manage_issues", args.clone());
    assert!(err, "nothing was listed yet: {text}");
    assert!(
        text.starts_with("I need GitHub access to manage issues. Please authorize me:\n\nGo to: "),
        "{text}"
    );
    assert!(
        text.contains("Enter code: **") && text.contains("This code expires in 10 minutes."),
        "{text}"
    );
    assert!(
        text.ends_with(
            "Ask me again once you have authorized; I'll keep the code open until then."
        ),
        "{text}"
    );
    let code = data["authorization"]["userCode"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains(&format!("**{code}**")), "{text}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let denied = loop {
        let (err, text, _) = c.call("manage_issues", args.clone());
        assert!(err, "{text}");
        if !text.contains(&code) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the denial was never reported"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        denied.starts_with("Issue operation failed: oauth device flow: ")
            && denied.contains("denied"),
        "{denied}"
    );
    gh.script_device_flow(
        vec![
            DeviceStep::Pending,
            DeviceStep::Success {
                token: "gho_from_device_flow".into(),
            },
        ],
        1,
        600,
    );
    let (err, text, data) = c.call("manage_issues", args.clone());
    assert!(err && text.contains("Enter code: **"), "a new flow: {text}");
    let code = data["authorization"]["userCode"]
        .as_str()
        .unwrap()
        .to_string();
    // The server keeps answering while the flow waits for the person.
    assert_eq!(c.request("ping", json!({}))["result"], json!({}));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let (err, text, data) = c.call("manage_issues", args.clone());
        if !err {
            break text;
        }
        assert_eq!(
            data["authorization"]["userCode"], code,
            "the same code until the person authorizes: {text}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "never authorized: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        done, "Authorized as octo-agent.\nNo open issues found in octo/hello.",
        "who authorized, from GET /user with the new token"
    );
    let listed = gh
        .requests()
        .into_iter()
        .any(|r| r.path.starts_with("/repos/octo/hello/issues"));
    assert!(
        listed,
        "the issues call reached the forge with the new token"
    );
    let (err, text, _) = c.call("manage_issues", args);
    assert!(
        !err && text == "No open issues found in octo/hello.",
        "{text}"
    );
    assert!(c.finish().success());
}

/// A "github.com" repository whose default branch is `trunk` (no `main` at all): START with one
/// agent and with two start from `trunk`, and FINALIZE's pull requests target `trunk`.
#[test]
fn a_trunk_default_branch_is_the_base_and_the_pr_target() {
    let home = TempDir::new("mcp-trunk");
    let (remote, trunk, _) = crate::workspaces::trunk_remote(&home.0);
    let (gh, mut c) = forge_client(&home.0, &remote, "trunky", "trunk");
    let head_of = |dir: &std::path::Path| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let wait_file = |p: &std::path::Path| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !p.is_file() || std::fs::read(p).unwrap_or_default().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never written",
                p.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };

    // One agent.
    let (err, text, data) = c.call(
        "start_coding_task",
        json!({"repo": "https://github.com/octo/trunky", "agentType": "shell", "label": "trunky/one", "task": "echo one > one.txt"}),
    );
    assert!(!err, "{text}");
    let a = data["agents"][0].clone();
    let dir = std::path::PathBuf::from(a["workdir"].as_str().unwrap());
    assert_eq!(head_of(&dir), trunk);
    wait_file(&dir.join("one.txt"));
    let (err, text, _) = c.call(
        "finalize_workspace",
        json!({"workspaceId": a["workspaceId"], "prTitle": "One"}),
    );
    assert!(!err, "{text}");

    // Two agents: one clone, a worktree each.
    let (err, text, data) = c.call(
        "start_coding_task",
        json!({"repo": "https://github.com/octo/trunky", "agentType": "shell", "label": "trunky/two", "agents": "echo a > a.txt | echo b > b.txt"}),
    );
    assert!(!err, "{text}");
    for (a, f) in data["agents"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["a.txt", "b.txt"])
    {
        let dir = std::path::PathBuf::from(a["workdir"].as_str().unwrap());
        assert_eq!(head_of(&dir), trunk, "{a}");
        wait_file(&dir.join(f));
        let (err, text, _) = c.call(
            "finalize_workspace",
            json!({"workspaceId": a["workspaceId"], "prTitle": format!("Add {f}")}),
        );
        assert!(!err, "{text}");
    }
    let pulls = gh.pulls("octo", "trunky");
    assert_eq!(pulls.len(), 3, "{pulls:?}");
    for p in &pulls {
        assert_eq!(p["base"]["ref"], "trunk", "{p}");
    }
    let (_, _, _) = c.call("stop_coding_agent", json!({"all": true}));
    assert!(c.finish().success());
}

/// Provisions a workspace of octo/hello and commits `file` in it by hand, as Aider does;
/// returns its path, branch and the new HEAD.
fn provision_and_commit(
    c: &mut McpClient,
    file: &str,
    body: &str,
    message: &str,
) -> (std::path::PathBuf, String, String) {
    let (err, text, data) = c.call(
        "provision_workspace",
        json!({"repo": "https://github.com/octo/hello"}),
    );
    assert!(!err, "{text}");
    let path = std::path::PathBuf::from(data["path"].as_str().unwrap());
    let branch = data["branch"].as_str().unwrap().to_string();
    std::fs::write(path.join(file), body).unwrap();
    git(&path, &["add", file]);
    git(&path, &["commit", "-q", "-m", message]);
    let head = git(&path, &["rev-parse", "HEAD"]);
    (path, branch, head)
}

/// FINALIZE lands commits an agent made itself (Aider commits its edits, leaving the tree clean),
/// says "No changes…" only when the branch holds nothing the remote lacks, and lands a commit
/// and further uncommitted changes together.
#[test]
fn finalize_lands_commits_the_agent_made_itself() {
    let home = TempDir::new("mcp-own-commit");
    let remote = crate::run_cmd::bare_remote_for_tests(&home.0);
    let (gh, mut c) = forge_client(&home.0, &remote, "hello", "main");
    let remote_file = |branch: &str, file: &str| {
        let out = std::process::Command::new("git")
            .args(["--git-dir", remote.to_str().unwrap(), "show"])
            .arg(format!("{branch}:{file}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };

    // A commit made by hand, tree clean: pushed, PR opened, the reply names that commit.
    let (path, branch, head) = provision_and_commit(
        &mut c,
        "agent.txt",
        "by the agent\n",
        "feat: agent's own commit",
    );
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    let (err, text, data) = c.call("finalize_workspace", json!({"prTitle": "Agent work"}));
    assert!(!err, "{text}");
    assert_eq!(data["commit"].as_str(), Some(head.as_str()));
    assert_eq!(
        text,
        format!(
            "Workspace finalized!\nCommit: {}\nPR #1: {}",
            &head[..8],
            data["prUrl"].as_str().unwrap()
        )
    );
    assert_eq!(remote_file(&branch, "agent.txt"), "by the agent\n");
    let pulls = gh.pulls("octo", "hello");
    assert_eq!(pulls.len(), 1);
    assert_eq!(
        pulls[0]["head"]["ref"]
            .as_str()
            .or(pulls[0]["head"].as_str()),
        Some(branch.as_str())
    );
    // Now the branch is on the remote and the tree clean: nothing new.
    let (err, text, _) = c.call("finalize_workspace", json!({}));
    assert!(err);
    assert_eq!(text, "No changes to commit in this workspace.");
    assert_eq!(gh.pulls("octo", "hello").len(), 1);

    // A commit by hand and more uncommitted changes: both land, HEAD is the new commit.
    let (path, branch, own) =
        provision_and_commit(&mut c, "first.txt", "committed\n", "feat: first half");
    std::fs::write(path.join("second.txt"), "uncommitted\n").unwrap();
    let (err, text, data) = c.call(
        "finalize_workspace",
        json!({"commitMessage": "feat: second half", "prTitle": "Both halves"}),
    );
    assert!(!err, "{text}");
    let head = git(&path, &["rev-parse", "HEAD"]);
    assert_ne!(head, own);
    assert_eq!(data["commit"].as_str(), Some(head.as_str()));
    assert!(
        text.starts_with(&format!(
            "Workspace finalized!\nCommit: {}\nPR #2: ",
            &head[..8]
        )),
        "{text}"
    );
    assert_eq!(remote_file(&branch, "first.txt"), "committed\n");
    assert_eq!(remote_file(&branch, "second.txt"), "uncommitted\n");
    assert_eq!(git(&path, &["rev-parse", "HEAD~1"]), own);
    assert_eq!(gh.pulls("octo", "hello").len(), 2);
    assert!(c.finish().success());
}
