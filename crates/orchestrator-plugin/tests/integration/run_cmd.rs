//! `agent-orchestrator run --agent shell` against a local bare remote: the task's change ends as
//! a commit on a pushed branch.

use std::path::Path;
use std::process::Command;

use crate::fakes::TempDir;
use crate::git_run::git_out;

/// A bare remote whose `main` has one commit (shared with other test modules).
pub fn bare_remote_for_tests(root: &Path) -> std::path::PathBuf {
    bare_remote(root)
}

/// A bare remote whose `main` has one commit.
fn bare_remote(root: &Path) -> std::path::PathBuf {
    let remote = root.join("remote.git");
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    git_out(root, &["init", "--bare", remote.to_str().unwrap()]);
    git_out(&seed, &["init"]);
    std::fs::write(seed.join("README.md"), "seed\n").unwrap();
    git_out(&seed, &["add", "README.md"]);
    git_out(&seed, &["commit", "-m", "seed"]);
    git_out(
        &seed,
        &["push", remote.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    remote
}

fn run(home: &Path, args: &[&str]) -> std::process::Output {
    run_command(home, args)
        .output()
        .expect("agent-orchestrator runs")
}

/// `--agent shell --repo REMOTE --task TASK`.
fn shell_task<'a>(remote: &'a Path, task: &'a str) -> [&'a str; 6] {
    let repo = remote.to_str().expect("a UTF-8 path");
    ["--agent", "shell", "--repo", repo, "--task", task]
}

fn run_command(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"));
    cmd.arg("run")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env(
            "CODING_WORKSPACE_CONFIG",
            serde_json::json!({"baseDir": home.join("ws").display().to_string()}).to_string(),
        )
        .current_dir(home);
    cmd
}

#[test]
fn run_shell_task_pushes_a_branch_to_a_bare_remote() {
    let tmp = TempDir::new("run");
    let remote = bare_remote(&tmp.0);
    let out = run(
        &tmp.0,
        &shell_task(&remote, "echo hello from the agent > hello.txt"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "status {:?}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stderr.contains("Pushed branch milady/exec-"), "{stderr}");
    let branches = git_out(
        &remote,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    );
    let branch = branches
        .lines()
        .find(|b| b.starts_with("milady/exec-") && b.ends_with("/coding-agent"))
        .unwrap_or_else(|| panic!("no pushed branch in {branches:?}"));
    let file = git_out(&remote, &["show", &format!("{branch}:hello.txt")]);
    assert_eq!(file, "hello from the agent\n");
    let log = git_out(&remote, &["log", "--format=%s", branch]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["feat: echo hello from the agent > hello.txt", "seed"]
    );
}

/// On a shared terminal (stdout and stderr one file, as in a shell), every state line is whole
/// and on a line of its own, however the agent's output, printed by another thread, falls
/// between them: `eprintln!` wrote each piece of a line separately, and the agent's echo of its
/// task could land inside one.
#[test]
fn run_state_lines_stay_whole_beside_the_agents_terminal() {
    let tmp = TempDir::new("run-shared");
    let remote = bare_remote(&tmp.0);
    let path = tmp.0.join("terminal.txt");
    let file = std::fs::File::create(&path).unwrap();
    let status = run_command(
        &tmp.0,
        &shell_task(
            &remote,
            "for i in $(seq 1 300); do echo line $i; done; echo hi > hi.txt",
        ),
    )
    .stdout(file.try_clone().unwrap())
    .stderr(file)
    .status()
    .expect("agent-orchestrator runs");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(status.success(), "{status:?}\n{text}");
    let prefix = "[agent-orchestrator] ";
    let mut states = 0;
    for line in text.split(['\r', '\n']) {
        if let Some(at) = line.find(prefix) {
            assert_eq!(at, 0, "a state line shares its line: {line:?}\n{text}");
            states += usize::from(line.contains(" → "));
        }
        assert!(
            !line.contains("agent-orchestrator]") || line.starts_with(prefix),
            "{line:?}"
        );
    }
    // pending → starting → ready → busy → stopped, at least.
    assert!(states >= 4, "{text}");
    assert!(text.contains("Pushed branch milady/exec-"), "{text}");
}

#[test]
fn run_reports_failure_and_setup_errors_by_exit_status() {
    let tmp = TempDir::new("run-fail");
    let remote = bare_remote(&tmp.0);
    let out = run(&tmp.0, &shell_task(&remote, "false"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&tmp.0, &["--agent", "cursor", "--task", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown agent type: cursor"));
    let out = run(&tmp.0, &shell_task(&tmp.0.join("missing.git"), "true"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Failed to clone repository"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The real Claude Code CLI, offline against the loopback fake model: `run` launches it with the
/// adapters' launch plan, types the task when it is ready, sees the turn end, and lands the file
/// it wrote as a pushed branch. Skipped (with a note) where `claude` is not installed.
#[test]
fn run_claude_offline_lands_its_file() {
    if Command::new("claude").arg("--version").output().is_err() {
        eprintln!("claude is not installed; skipping");
        return;
    }
    let tmp = TempDir::new("run-claude");
    let remote = bare_remote(&tmp.0);
    let fake = test_support::model::FakeModel::start().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"))
        .args([
            "run",
            "--agent",
            "claude",
            "--preset",
            "permissive",
            "--timeout-secs",
            "120",
            "--repo",
        ])
        .arg(&remote)
        .args([
            "--task",
            "Create a file named hello.txt containing 'hello from claude'",
        ])
        .args(["--memory", "Keep changes small."])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &tmp.0)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("ANTHROPIC_API_KEY", fake.api_key())
        .env("ANTHROPIC_BASE_URL", fake.base_url())
        .env("ORCHESTRATOR_WRITE_AGENT_CONFIG", "1")
        // Keep Claude Code to the loopback model: no telemetry or other vendor traffic.
        .env(
            "CUSTOM_CREDENTIAL_KEYS",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        )
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env(
            "CODING_WORKSPACE_CONFIG",
            serde_json::json!({"baseDir": tmp.0.join("ws").display().to_string()}).to_string(),
        )
        .current_dir(&tmp.0)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "status {:?}\nstderr:\n{stderr}\nstdout tail:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
            .chars()
            .rev()
            .take(3000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    let branches = git_out(
        &remote,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    );
    let branch = branches
        .lines()
        .find(|b| b.starts_with("milady/"))
        .expect("a pushed branch");
    assert_eq!(
        git_out(&remote, &["show", &format!("{branch}:hello.txt")]).trim(),
        "hello from claude"
    );
    // Only the agent's work is committed: no settings, hook or memory files of ours.
    let files = git_out(&remote, &["show", "--name-only", "--format=", branch]);
    assert_eq!(files.trim(), "hello.txt");
    let memory: Vec<_> = std::fs::read_dir(tmp.0.join("ws"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("CLAUDE.md")).ok())
        .collect();
    let listing: Vec<String> = std::fs::read_dir(tmp.0.join("ws"))
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path().display().to_string())
        .chain(
            std::fs::read_dir(tmp.0.join("ws"))
                .unwrap()
                .filter_map(|e| {
                    std::fs::read_to_string(e.unwrap().path().join(".git/info/exclude")).ok()
                }),
        )
        .collect();
    assert_eq!(
        memory,
        ["Keep changes small.\n"],
        "the memory file was written, and not committed: {listing:?}\n{stderr}"
    );
}

/// `workspace provision` without `--base` clones the remote's default branch (`trunk` here, no
/// `main` at all); a worktree of it starts there too.
#[test]
fn workspace_provision_starts_from_the_remotes_default_branch() {
    let tmp = TempDir::new("ws-cli-trunk");
    let (remote, trunk, _) = crate::workspaces::trunk_remote(&tmp.0);
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_agent-orchestrator"))
            .arg("workspace")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &tmp.0)
            .env("AGENT_ORCHESTRATOR_HOME", tmp.0.join("ao"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .current_dir(&tmp.0)
            .output()
            .expect("agent-orchestrator runs");
        assert!(
            out.status.success(),
            "workspace {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let clone = cli(&["provision", "--repo", remote.to_str().unwrap(), "--json"]);
    assert_eq!(
        clone["base_branch"]
            .as_str()
            .or(clone["baseBranch"].as_str()),
        Some("trunk"),
        "{clone}"
    );
    let path = std::path::PathBuf::from(clone["path"].as_str().unwrap());
    assert_eq!(git_out(&path, &["rev-parse", "HEAD"]).trim(), trunk);
    let id = clone["id"].as_str().unwrap();
    let wt = cli(&[
        "provision",
        "--repo",
        remote.to_str().unwrap(),
        "--worktree-of",
        id,
        "--json",
    ]);
    let wpath = std::path::PathBuf::from(wt["path"].as_str().unwrap());
    assert_eq!(
        git_out(&wpath, &["rev-parse", "HEAD"]).trim(),
        trunk,
        "{wt}"
    );
}
