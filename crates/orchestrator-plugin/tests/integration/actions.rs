//! Every action's handler with a test runtime: the parameters given are the ones used, and every
//! reply template of BEHAVIOR.md §10.2 comes out verbatim.

use serde_json::{Value, json};

use orchestrator_plugin::actions::{self, ActionResult, ChatMemory, Message};
use orchestrator_plugin::services::pty::SessionStatus;

use crate::fakes::{TempDir, TestRuntime};

fn call(
    rt: &TestRuntime,
    mem: &ChatMemory,
    action: &str,
    params: Value,
    text: &str,
) -> (ActionResult, Vec<String>) {
    let a = actions::find(action).unwrap_or_else(|| panic!("no action {action}"));
    let params = params.as_object().cloned().unwrap_or_default();
    let msg = Message::text("room-1", text);
    let mut progress = Vec::new();
    let r = actions::run(a, rt, mem, &msg, &params, &mut |t: &str| {
        progress.push(t.to_string())
    });
    (r, progress)
}

fn text(rt: &TestRuntime, action: &str, params: Value) -> String {
    call(rt, &ChatMemory::default(), action, params, "").0.text
}

#[test]
fn spawn_uses_its_parameters_and_checks_the_workdir() {
    let tmp = TempDir::new("spawn");
    let rt = TestRuntime::new(&tmp.0);
    let inside = tmp.0.join("proj");
    std::fs::create_dir_all(&inside).unwrap();
    let mem = ChatMemory::default();
    let (r, _) = call(
        &rt,
        &mem,
        "SPAWN_CODING_AGENT",
        json!({
        "agentType": "openai", "workdir": inside.display().to_string(), "task": "fix it",
        "memoryContent": "be brief", "approvalPreset": "readonly"}),
        "",
    );
    assert_eq!(
        r.text,
        format!(
            "Started codex coding agent in {} with task: \"fix it\". Session ID: sess-0001-abcdef",
            inside.display()
        )
    );
    let req = rt.pty().spawned.lock().unwrap()[0].clone();
    assert_eq!(req.agent_type, "codex");
    assert_eq!(req.workdir, inside);
    assert_eq!(req.initial_task.as_deref(), Some("fix it"));
    assert_eq!(req.memory_content.as_deref(), Some("be brief"));
    assert_eq!(req.approval_preset.as_deref(), Some("readonly"));

    let (r, _) = call(
        &rt,
        &mem,
        "SPAWN_CODING_AGENT",
        json!({"agentType": "shell", "workdir": inside.display().to_string()}),
        "",
    );
    assert_eq!(
        r.text,
        format!(
            "Started shell coding agent in {}. Session ID: sess-0002-abcdef",
            inside.display()
        )
    );

    // `..` and symlinks are resolved before the check.
    let escape = format!("{}/../..", inside.display());
    assert_eq!(
        text(&rt, "SPAWN_CODING_AGENT", json!({"workdir": escape})),
        "The specified workdir is outside of allowed directories. Please use a workspace directory."
    );
    let link = tmp.0.join("link");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    assert_eq!(
        text(
            &rt,
            "SPAWN_CODING_AGENT",
            json!({"workdir": link.display().to_string()})
        ),
        "The specified workdir is outside of allowed directories. Please use a workspace directory."
    );
    // No workdir and no workspace.
    assert_eq!(
        text(&rt, "SPAWN_CODING_AGENT", json!({})),
        "No workspace found. Please provision a workspace first using PROVISION_WORKSPACE or provide a workdir."
    );
    assert_eq!(
        text(
            &rt,
            "SPAWN_CODING_AGENT",
            json!({"agentType": "cursor", "workdir": inside.display().to_string()})
        ),
        "Failed to spawn coding agent: unknown agent type: cursor"
    );
    *rt.pty().not_installed.lock().unwrap() = true;
    assert_eq!(
        text(
            &rt,
            "SPAWN_CODING_AGENT",
            json!({"agentType": "codex", "workdir": inside.display().to_string()})
        ),
        "Codex CLI is not installed.\nInstall with: npm install -g @openai/codex\nDocs: https://github.com/openai/codex"
    );

    let mut no_pty = TestRuntime::new(&tmp.0);
    no_pty.pty = None;
    assert_eq!(
        text(&no_pty, "SPAWN_CODING_AGENT", json!({})),
        "PTY Service is not available. Cannot spawn coding agent."
    );
    assert!(
        !actions::find("SPAWN_CODING_AGENT")
            .unwrap()
            .validate(&no_pty)
    );
}

#[test]
fn spawn_defaults_to_the_current_workspace() {
    let tmp = TempDir::new("spawn-ws");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    let (r, _) = call(
        &rt,
        &mem,
        "PROVISION_WORKSPACE",
        json!({"repo": "https://github.com/acme/app"}),
        "",
    );
    assert!(r.success, "{}", r.text);
    let (r, _) = call(
        &rt,
        &mem,
        "SPAWN_CODING_AGENT",
        json!({"agentType": "shell"}),
        "",
    );
    assert!(
        r.text.starts_with(&format!(
            "Started shell coding agent in {}",
            tmp.0.join("clones/ws-1").display()
        )),
        "{}",
        r.text
    );
}

#[test]
fn send_text_or_keys_to_the_right_session() {
    let tmp = TempDir::new("send");
    let rt = TestRuntime::new(&tmp.0);
    assert_eq!(
        text(&rt, "SEND_TO_CODING_AGENT", json!({"input": "hi"})),
        "No active coding sessions. Spawn an agent first."
    );
    rt.pty().add("s-old", "claude", SessionStatus::Ready, None);
    rt.pty().add("s-new", "codex", SessionStatus::Busy, None);
    let mem = ChatMemory::default();
    let (r, _) = call(
        &rt,
        &mem,
        "SEND_TO_CODING_AGENT",
        json!({"input": "also add tests"}),
        "",
    );
    assert_eq!(r.text, "Sent to coding agent: \"also add tests\"");
    // Default = the most recent session.
    assert_eq!(
        rt.pty().sent.lock().unwrap()[0],
        ("s-new".to_string(), "also add tests".to_string())
    );
    let (r, _) = call(
        &rt,
        &mem,
        "SEND_TO_CODING_AGENT",
        json!({"sessionId": "s-old", "keys": ["down", "enter"]}),
        "",
    );
    assert_eq!(r.text, "Sent key sequence to coding agent.");
    assert_eq!(
        rt.pty().keys.lock().unwrap()[0],
        (
            "s-old".to_string(),
            vec!["down".to_string(), "enter".to_string()]
        )
    );
    // Then the conversation's current session (s-old) is the default.
    call(
        &rt,
        &mem,
        "SEND_TO_CODING_AGENT",
        json!({"keys": "keys:escape"}),
        "",
    );
    assert_eq!(rt.pty().keys.lock().unwrap()[1].0, "s-old");
    assert_eq!(
        text(
            &rt,
            "SEND_TO_CODING_AGENT",
            json!({"sessionId": "nope", "input": "x"})
        ),
        "Session nope not found."
    );
    assert_eq!(
        text(&rt, "SEND_TO_CODING_AGENT", json!({})),
        "No input provided. Specify 'input' or 'keys' parameter."
    );
    assert_eq!(
        text(
            &rt,
            "SEND_TO_CODING_AGENT",
            json!({"keys": ["enter", "hyperspace"]})
        ),
        "Failed to send to agent: invalid parameter: unknown key: hyperspace"
    );
    let mut no_pty = TestRuntime::new(&tmp.0);
    no_pty.pty = None;
    assert_eq!(
        text(&no_pty, "SEND_TO_CODING_AGENT", json!({"input": "x"})),
        "PTY Service is not available."
    );
}

#[test]
fn stop_one_or_all() {
    let tmp = TempDir::new("stop");
    let rt = TestRuntime::new(&tmp.0);
    assert!(
        !actions::find("STOP_CODING_AGENT").unwrap().validate(&rt),
        "no session within 2 s"
    );
    assert_eq!(
        text(&rt, "STOP_CODING_AGENT", json!({})),
        "No active coding sessions to stop."
    );
    rt.pty().add("s1", "claude", SessionStatus::Ready, None);
    rt.pty().add("s2", "codex", SessionStatus::Busy, None);
    rt.pty().add("s3", "codex", SessionStatus::Busy, None);
    assert!(actions::find("STOP_CODING_AGENT").unwrap().validate(&rt));
    assert_eq!(
        text(&rt, "STOP_CODING_AGENT", json!({"sessionId": "zz"})),
        "Session zz not found."
    );
    assert_eq!(
        text(&rt, "STOP_CODING_AGENT", json!({"sessionId": "s1"})),
        "Stopped coding agent session s1."
    );
    assert_eq!(
        rt.pty().stopped.lock().unwrap()[0],
        ("s1".to_string(), false)
    );
    assert_eq!(
        text(&rt, "STOP_CODING_AGENT", json!({"all": true})),
        "Stopped 2 coding session(s)."
    );
    assert_eq!(
        text(&rt, "STOP_CODING_AGENT", json!({"all": true})),
        "No active coding sessions to stop."
    );
}

#[test]
fn list_shows_statuses_as_a_person_reads_them() {
    let tmp = TempDir::new("list");
    let rt = TestRuntime::new(&tmp.0);
    assert_eq!(
        text(&rt, "LIST_CODING_AGENTS", json!({})),
        "No active coding agents. Use SPAWN_CODING_AGENT to start one."
    );
    rt.pty()
        .add("aaaaaaaa-1111", "claude", SessionStatus::Busy, None);
    rt.pty().add(
        "bbbbbbbb-2222",
        "codex",
        SessionStatus::Blocked,
        Some("Would you like to run the following command?"),
    );
    rt.pty()
        .add("cccccccc-3333", "shell", SessionStatus::Ready, None);
    rt.pty()
        .add("dddddddd-4444", "gemini", SessionStatus::Stopped, None);
    rt.pty().mark_completed_for_test("dddddddd-4444");
    rt.pty()
        .add("eeeeeeee-5555", "aider", SessionStatus::Error, None);
    rt.pty()
        .add("ffffffff-6666", "pi", SessionStatus::Starting, None);
    let (r, _) = call(
        &rt,
        &ChatMemory::default(),
        "LIST_CODING_AGENTS",
        json!({}),
        "",
    );
    assert_eq!(
        r.text,
        "Active coding agents:\n\n\
1. ▶️ claude (aaaaaaaa...)\n   📁 /ws/aaaaaaaa-1111\n   Status: busy\n\n\
2. ⚠️ codex (bbbbbbbb...)\n   📁 /ws/bbbbbbbb-2222\n   Status: blocked — waiting: \"Would you like to run the following command?\"\n\n\
3. ⏸️ shell (cccccccc...)\n   📁 /ws/cccccccc-3333\n   Status: ready\n\n\
4. ✅ gemini (dddddddd...)\n   📁 /ws/dddddddd-4444\n   Status: stopped (task completed)\n\n\
5. ❌ aider (eeeeeeee...)\n   📁 /ws/eeeeeeee-5555\n   Status: error\n\n\
6. ❓ pi (ffffffff...)\n   📁 /ws/ffffffff-6666\n   Status: starting"
    );
    let sessions = r.data["sessions"].as_array().unwrap();
    assert_eq!(sessions[1]["plainStatus"], "blocked");
    assert_eq!(sessions[3]["plainStatus"], "completed");
    assert_eq!(sessions[0]["plainStatus"], "running");
}

#[test]
fn provision_clone_and_worktree() {
    let tmp = TempDir::new("prov");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    assert_eq!(
        call(
            &rt,
            &mem,
            "PROVISION_WORKSPACE",
            json!({}),
            "set up a workspace"
        )
        .0
        .text,
        "Please specify a repository URL or use worktree mode with a parent workspace."
    );
    assert_eq!(
        call(
            &rt,
            &mem,
            "PROVISION_WORKSPACE",
            json!({"repo": "https://evil.example/a/b"}),
            ""
        )
        .0
        .text,
        "Repository URL must be from github.com, gitlab.com, or bitbucket.org."
    );
    assert_eq!(
        call(
            &rt,
            &mem,
            "PROVISION_WORKSPACE",
            json!({"useWorktree": true}),
            ""
        )
        .0
        .text,
        "Worktree mode requires a parent workspace. Clone a repo first or specify parentWorkspaceId."
    );
    // The repo comes from the text when no parameter names one.
    let (r, _) = call(
        &rt,
        &mem,
        "PROVISION_WORKSPACE",
        json!({"baseBranch": "develop"}),
        "clone https://github.com/acme/app please",
    );
    let req = rt.ws().provisioned.lock().unwrap()[0].clone();
    assert_eq!(req.repo, "https://github.com/acme/app");
    assert_eq!(req.base_branch, "develop");
    let branch = req.branch_name.unwrap();
    assert!(
        branch.starts_with("milady/exec-") && branch.ends_with("/coding-agent"),
        "{branch}"
    );
    assert_eq!(
        r.text,
        format!(
            "Created workspace at {}\nBranch: {branch}\nType: clone",
            tmp.0.join("clones/ws-1").display()
        )
    );
    // A worktree takes its parent's repo.
    let (r, _) = call(
        &rt,
        &mem,
        "PROVISION_WORKSPACE",
        json!({"useWorktree": true, "parentWorkspaceId": "ws-1"}),
        "",
    );
    let req = rt.ws().provisioned.lock().unwrap()[1].clone();
    assert_eq!(req.repo, "https://github.com/acme/app");
    assert_eq!(req.parent_workspace_id.as_deref(), Some("ws-1"));
    assert!(r.text.ends_with("Type: worktree"), "{}", r.text);
    *rt.ws().fail_provision.lock().unwrap() = Some("repository not found".into());
    assert_eq!(
        call(
            &rt,
            &mem,
            "PROVISION_WORKSPACE",
            json!({"repo": "acme/app"}),
            ""
        )
        .0
        .text,
        "Failed to provision workspace: git clone failed: repository not found"
    );
    let mut no_ws = TestRuntime::new(&tmp.0);
    no_ws.workspace = None;
    assert_eq!(
        text(&no_ws, "PROVISION_WORKSPACE", json!({"repo": "acme/app"})),
        "Workspace Service is not available."
    );
}

#[test]
fn finalize_commits_pushes_and_opens_a_pr() {
    let tmp = TempDir::new("fin");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    assert_eq!(
        text(&rt, "FINALIZE_WORKSPACE", json!({})),
        "No workspaces available. Provision a workspace first."
    );
    call(
        &rt,
        &mem,
        "PROVISION_WORKSPACE",
        json!({"repo": "acme/app"}),
        "",
    );
    assert_eq!(
        text(&rt, "FINALIZE_WORKSPACE", json!({"workspaceId": "ws-9"})),
        "Workspace ws-9 not found."
    );
    let (r, _) = call(
        &rt,
        &mem,
        "FINALIZE_WORKSPACE",
        json!({"commitMessage": "fix: parser", "prTitle": "Parser fix", "baseBranch": "develop", "draft": true}),
        "",
    );
    assert_eq!(
        r.text,
        "Workspace finalized!\nCommit: 01234567\nPR #7: https://github.com/acme/app/pull/7"
    );
    assert_eq!(
        rt.ws().commits.lock().unwrap()[0],
        ("ws-1".to_string(), "fix: parser".to_string())
    );
    assert_eq!(
        rt.ws().pushes.lock().unwrap()[0],
        ("ws-1".to_string(), true)
    );
    let (_, pr) = rt.ws().prs.lock().unwrap()[0].clone();
    assert_eq!(
        (pr.title.as_str(), pr.base_branch.as_str(), pr.draft),
        ("Parser fix", "develop", true)
    );
    // Defaults.
    let (r, _) = call(&rt, &mem, "FINALIZE_WORKSPACE", json!({}), "");
    assert!(r.success);
    assert_eq!(
        rt.ws().commits.lock().unwrap()[1].1,
        "feat: automated changes from coding agent\n\nGenerated by Milady coding agent plugin."
    );
    let (_, pr) = rt.ws().prs.lock().unwrap()[1].clone();
    let branch = rt.ws().workspaces.lock().unwrap()[0].branch.clone();
    assert_eq!(pr.title, format!("[Milady] {branch}"));
    assert_eq!(
        pr.body,
        format!(
            "## Summary\n\nAutomated changes generated by Milady coding agent.\n\n**Branch:** {branch}\n**Commit:** 0123456789abcdef0123456789abcdef01234567\n\n---\n*Generated by @elizaos/plugin-agent-orchestrator*"
        )
    );
    assert_eq!(
        text(&rt, "FINALIZE_WORKSPACE", json!({"skipPR": true})),
        "Workspace changes committed and pushed.\nCommit: 01234567"
    );
    assert_eq!(rt.ws().prs.lock().unwrap().len(), 2);
    *rt.ws().dirty.lock().unwrap() = false;
    assert_eq!(
        text(&rt, "FINALIZE_WORKSPACE", json!({})),
        "No changes to commit in this workspace."
    );
}

#[test]
fn start_task_single_scratch_and_multi() {
    let tmp = TempDir::new("start");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    let (r, progress) = call(
        &rt,
        &mem,
        "START_CODING_TASK",
        json!({"agentType": "claude-code", "task": "Fix the login bug"}),
        "Fix https://github.com/acme/app login",
    );
    assert_eq!(progress, ["Cloning https://github.com/acme/app..."]);
    assert_eq!(
        r.text,
        "Cloned https://github.com/acme/app and started claude agent as \"app/fix-login-bug\" with task: \"Fix the login bug\"\nSession ID: sess-0001-abcdef"
    );
    let spawn = rt.pty().spawned.lock().unwrap()[0].clone();
    assert_eq!(spawn.workdir, tmp.0.join("clones/ws-1"));
    assert_eq!(spawn.initial_task.as_deref(), Some("Fix the login bug"));
    assert_eq!(spawn.name.as_deref(), Some("app/fix-login-bug"));

    // No repo anywhere: scratch directory under baseDir.
    let fresh = ChatMemory::default();
    let (r, _) = call(
        &rt,
        &fresh,
        "START_CODING_TASK",
        json!({"agentType": "shell", "task": "echo hello world", "label": "my-label"}),
        "",
    );
    assert_eq!(
        r.text,
        "Started shell agent as \"my-label\" in scratch workspace with task: \"echo hello world\"\nSession ID: sess-0002-abcdef"
    );
    let scratch = rt.pty().spawned.lock().unwrap()[1].workdir.clone();
    assert!(
        scratch.starts_with(&tmp.0) && scratch.is_dir(),
        "{}",
        scratch.display()
    );

    // Several agents, a model brief appended to each task.
    rt.model_answers
        .lock()
        .unwrap()
        .push("- parser owns src/parse.rs\n- cli owns src/main.rs\n- keep tests green".into());
    let (r, progress) = call(
        &rt,
        &mem,
        "START_CODING_TASK",
        json!({"agents": "write the parser | codex: write the CLI", "repo": "acme/app", "label": "app/split"}),
        "",
    );
    assert_eq!(
        progress,
        [
            "Launching 2 agents on acme/app...",
            "[1/2] Spawned claude agent as \"app/split-1\"",
            "[2/2] Spawned codex agent as \"app/split-2\""
        ]
    );
    assert_eq!(
        r.text,
        "Launched 2/2 agents on acme/app:\n  - \"app/split-1\" (claude) [session: sess-0003-abcdef]\n  - \"app/split-2\" (codex) [session: sess-0004-abcdef]"
    );
    let spawned = rt.pty().spawned.lock().unwrap().clone();
    assert_eq!(spawned[3].agent_type, "codex");
    assert_eq!(
        spawned[3].initial_task.as_deref(),
        Some(
            "write the CLI\n\n--- Shared Context (from project planning) ---\n- parser owns src/parse.rs\n- cli owns src/main.rs\n- keep tests green\n--- End Shared Context ---"
        )
    );
    assert_ne!(spawned[2].workdir, spawned[3].workdir, "one workspace each");
    // One clone for the swarm, then one worktree (own branch) of it per agent.
    let prov = rt.ws().provisioned.lock().unwrap().clone();
    let swarm: Vec<(bool, Option<&str>, &str)> = prov[1..]
        .iter()
        .map(|p| {
            (
                p.use_worktree,
                p.parent_workspace_id.as_deref(),
                p.branch_name
                    .as_deref()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        swarm,
        [
            (false, None, "base"),
            (true, Some("ws-2"), "coding-agent-1"),
            (true, Some("ws-2"), "coding-agent-2")
        ]
    );

    let nine = ["t"; 9].join("|");
    assert_eq!(
        text(&rt, "START_CODING_TASK", json!({"agents": nine})),
        "Too many agents requested (9). Maximum is 8."
    );
    assert_eq!(
        text(&rt, "START_CODING_TASK", json!({"agents": " | "})),
        "No agent tasks provided in agents parameter."
    );
    *rt.ws().fail_provision.lock().unwrap() = Some("auth failed".into());
    assert_eq!(
        text(
            &rt,
            "START_CODING_TASK",
            json!({"repo": "acme/app", "task": "x"})
        ),
        "Failed to clone repository: git clone failed: auth failed"
    );
    *rt.ws().fail_provision.lock().unwrap() = None;
    *rt.pty().not_installed.lock().unwrap() = true;
    assert_eq!(
        text(
            &rt,
            "START_CODING_TASK",
            json!({"agentType": "codex", "task": "x"})
        ),
        "Codex CLI is not installed.\nInstall with: npm install -g @openai/codex\nDocs: https://github.com/openai/codex"
    );
    let mut no_ws = TestRuntime::new(&tmp.0);
    no_ws.workspace = None;
    assert_eq!(
        text(
            &no_ws,
            "START_CODING_TASK",
            json!({"repo": "acme/app", "task": "x"})
        ),
        "Workspace Service is not available. Cannot clone repository."
    );
    let mut no_pty = TestRuntime::new(&tmp.0);
    no_pty.pty = None;
    assert_eq!(
        text(&no_pty, "START_CODING_TASK", json!({"task": "x"})),
        "PTY Service is not available. Cannot start coding task."
    );
}

#[test]
fn issues_every_operation() {
    let tmp = TempDir::new("issues");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    let t = |params: Value, msg: &str| call(&rt, &mem, "MANAGE_ISSUES", params, msg).0.text;
    assert_eq!(
        t(json!({"operation": "list"}), "list issues"),
        "Please specify a repository (e.g., owner/repo or a GitHub URL)."
    );
    assert_eq!(
        t(json!({"repo": "acme/app"}), "what's open?"),
        "No open issues found in acme/app."
    );
    // A parameter that does not parse is refused, not replaced by what the text mentions.
    assert_eq!(
        t(
            json!({"operation": "list", "repo": "acme app"}),
            "list the issues of acme/app"
        ),
        "Repository \"acme app\" is not owner/repo or a GitHub URL."
    );
    for bad in [json!("two"), json!(-1), json!(0), json!(1.5)] {
        assert_eq!(
            t(
                json!({"operation": "get", "repo": "acme/app", "issueNumber": bad}),
                "show issue #1"
            ),
            format!("Issue number {bad} is not a positive whole number.")
        );
    }
    // Operations that take no number ignore a placeholder one.
    assert_eq!(
        t(
            json!({"operation": "list", "repo": "acme/app", "issueNumber": ""}),
            ""
        ),
        "No open issues found in acme/app."
    );
    assert_eq!(
        t(
            json!({"operation": "create", "repo": "acme/app", "title": "Login fails", "body": "500 on submit", "labels": "bug, p1"}),
            ""
        ),
        "Created issue #1: Login fails\nhttps://github.com/acme/app/issues/1"
    );
    assert_eq!(
        t(
            json!({"operation": "create"}),
            "create issues in acme/app:\n1. Add docs\n2. Add CI"
        ),
        "Created 2 issues:\n#2: Add docs\n  https://github.com/acme/app/issues/2\n#3: Add CI\n  https://github.com/acme/app/issues/3"
    );
    assert_eq!(
        t(json!({"operation": "create", "repo": "acme/app"}), ""),
        "Issue title is required for create."
    );
    assert_eq!(
        t(
            json!({"operation": "list", "repo": "https://github.com/acme/app"}),
            ""
        ),
        "Issues in acme/app:\n#1 [open] Login fails (bug, p1)\n#2 [open] Add docs\n#3 [open] Add CI"
    );
    assert_eq!(
        t(json!({}), "what does issue #1 in acme/app say?"),
        "Issue #1: Login fails [open]\n\n500 on submit\n\nLabels: bug, p1\nhttps://github.com/acme/app/issues/1"
    );
    assert_eq!(
        t(
            json!({"operation": "update", "issueNumber": 2, "title": "Add more docs"}),
            ""
        ),
        "Updated issue #2: Add more docs"
    );
    assert_eq!(
        t(
            json!({"operation": "comment", "issueNumber": 2, "body": "on it"}),
            ""
        ),
        "Added comment to issue #2: https://github.com/acme/app/issues/2#issuecomment-1"
    );
    assert_eq!(
        t(json!({"operation": "close", "issueNumber": 2}), ""),
        "Closed issue #2: Add more docs"
    );
    assert_eq!(
        t(json!({}), "please re-open issue #2"),
        "Reopened issue #2: Add more docs"
    );
    assert_eq!(
        t(
            json!({"operation": "add_labels", "issueNumber": "#3", "labels": ["ci", "infra"]}),
            ""
        ),
        "Added labels [ci, infra] to issue #3"
    );
    assert_eq!(
        t(json!({"operation": "get"}), ""),
        "Issue number is required."
    );
    assert_eq!(
        t(json!({"operation": "comment", "issueNumber": 2}), ""),
        "Issue number and comment body are required."
    );
    assert_eq!(
        t(json!({"operation": "add_labels", "issueNumber": 2}), ""),
        "Issue number and labels are required."
    );
    assert_eq!(
        t(json!({"operation": "explode"}), ""),
        "Unknown operation: explode. Use: create, list, get, update, comment, close, reopen, add_labels"
    );
    assert_eq!(
        t(json!({"operation": "get", "issueNumber": 99}), ""),
        "Issue operation failed: get issue: issue 99 not found"
    );
    assert_eq!(
        t(json!({"operation": "list", "state": "closed"}), ""),
        "No closed issues found in acme/app."
    );

    // Without a token: device flow when a client id is set, else the explanation.
    *rt.ws().token.lock().unwrap() = false;
    assert_eq!(
        t(json!({"operation": "list"}), ""),
        "GitHub access required but no credentials available. Set GITHUB_TOKEN (PAT) or GITHUB_OAUTH_CLIENT_ID (for OAuth device flow)."
    );
    let mut rt2 = TestRuntime::new(&tmp.0);
    rt2.settings
        .insert("GITHUB_OAUTH_CLIENT_ID".into(), "Iv1.x".into());
    *rt2.ws().token.lock().unwrap() = false;
    let (r, progress) = call(
        &rt2,
        &ChatMemory::default(),
        "MANAGE_ISSUES",
        json!({"operation": "list", "repo": "acme/app"}),
        "",
    );
    assert_eq!(
        progress,
        [
            "I need GitHub access to manage issues. Please authorize me:\n\nGo to: https://github.com/login/device\nEnter code: **ABCD-1234**\n\nThis code expires in 15 minutes. I'll wait for you to complete authorization...",
            "Authorized as octo-fake.",
        ]
    );
    assert_eq!(r.text, "No open issues found in acme/app.");

    // A caller that gets progress only with the result (MCP): a service that can only run the
    // flow by blocking is not asked to (the fake's flow would set the token).
    *rt2.ws().token.lock().unwrap() = false;
    let params = json!({"operation": "list", "repo": "acme/app"});
    let mut progress = Vec::new();
    let r = actions::run_with(
        actions::find("MANAGE_ISSUES").unwrap(),
        &rt2,
        &ChatMemory::default(),
        &Message::text("room-1", ""),
        params.as_object().unwrap(),
        &mut |t: &str| progress.push(t.to_string()),
        actions::Progress::Collected,
    );
    assert!(!r.success);
    assert!(r.text.starts_with("GitHub access required, and this workspace service can only run the device flow by waiting"), "{}", r.text);
    assert!(progress.is_empty(), "{progress:?}");
    assert!(
        !*rt2.ws().token.lock().unwrap(),
        "the blocking flow never ran"
    );
}

#[test]
fn agent_models_come_from_settings() {
    let tmp = TempDir::new("spawn-model");
    let mut rt = TestRuntime::new(&tmp.0);
    rt.settings
        .insert("PARALLAX_CODEX_MODEL_FAST".into(), "gpt-fast".into());
    rt.settings
        .insert("PARALLAX_CLAUDE_MODEL_POWERFUL".into(), "opus-x".into());
    rt.settings
        .insert("PARALLAX_CLAUDE_MODEL_FAST".into(), "haiku-x".into());
    let dir = tmp.0.join("p");
    std::fs::create_dir_all(&dir).unwrap();
    for agent in ["codex", "claude", "gemini"] {
        call(
            &rt,
            &ChatMemory::default(),
            "SPAWN_CODING_AGENT",
            json!({"agentType": agent, "workdir": dir.display().to_string()}),
            "",
        );
    }
    let models: Vec<Option<String>> = rt
        .pty()
        .spawned
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.model.clone())
        .collect();
    assert_eq!(
        models,
        [Some("gpt-fast".into()), Some("opus-x".into()), None]
    );
}

#[test]
fn ranked_selection_picks_the_best_installed_agent() {
    let tmp = TempDir::new("ranked");
    let mut rt = TestRuntime::new(&tmp.0);
    rt.settings
        .insert("PARALLAX_AGENT_SELECTION_STRATEGY".into(), "ranked".into());
    // History: codex completed three tasks; claude failed twice; gemini is not installed.
    for (id, agent, status, completed) in [
        ("c1", "codex", SessionStatus::Stopped, true),
        ("c2", "codex", SessionStatus::Stopped, true),
        ("c3", "codex", SessionStatus::Stopped, true),
        ("k1", "claude", SessionStatus::Error, false),
        ("k2", "claude", SessionStatus::Error, false),
        ("g1", "gemini", SessionStatus::Stopped, true),
    ] {
        rt.pty().add(id, agent, status, None);
        if completed {
            rt.pty().mark_completed_for_test(id);
        }
    }
    *rt.pty().installed.lock().unwrap() = vec!["claude".into(), "codex".into()];
    let r = text(
        &rt,
        "START_CODING_TASK",
        json!({"task": "write the parser"}),
    );
    assert!(r.starts_with("Started codex agent as"), "{r}");
    // An explicit type still wins.
    let r = text(
        &rt,
        "START_CODING_TASK",
        json!({"task": "x", "agentType": "claude"}),
    );
    assert!(r.starts_with("Started claude agent as"), "{r}");
    // Nothing installed known: the default type.
    rt.pty().installed.lock().unwrap().clear();
    let r = text(&rt, "START_CODING_TASK", json!({"task": "x"}));
    assert!(r.starts_with("Started claude agent as"), "{r}");
    // A strategy that does not exist is said, not ignored.
    rt.settings
        .insert("PARALLAX_AGENT_SELECTION_STRATEGY".into(), "best".into());
    let r = text(&rt, "START_CODING_TASK", json!({"task": "x"}));
    assert_eq!(
        r,
        "Failed to start coding agent: invalid setting PARALLAX_AGENT_SELECTION_STRATEGY: \"best\" is not fixed or ranked"
    );
}

/// With several workspaces and nothing naming one (no parameter, no workspace of this
/// conversation), FINALIZE_WORKSPACE takes the most recent (BEHAVIOR.md §10.2).
#[test]
fn finalize_with_several_workspaces_and_no_choice_takes_the_most_recent() {
    let tmp = TempDir::new("fin-many");
    let rt = TestRuntime::new(&tmp.0);
    let mem = ChatMemory::default();
    for repo in ["acme/app", "acme/lib"] {
        call(&rt, &mem, "PROVISION_WORKSPACE", json!({"repo": repo}), "");
    }
    // A fresh conversation: no workspace of its own.
    let (r, _) = call(
        &rt,
        &ChatMemory::default(),
        "FINALIZE_WORKSPACE",
        json!({}),
        "",
    );
    assert!(r.success, "{}", r.text);
    assert_eq!(rt.ws().commits.lock().unwrap()[0].0, "ws-2");
}
