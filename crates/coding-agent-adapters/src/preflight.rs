//! Preflight: is a CLI installed, which version, and how to install it. The version command runs
//! as an argv with a timeout, never through a shell (**Fix:** upstream used `sh -c`).

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{AgentManifest, AgentType, Registry};

/// How long the version command may run.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// One row of the preflight table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightResult {
    /// The agent.
    pub agent: AgentType,
    /// Product name.
    pub name: String,
    /// The program looked up.
    pub command: String,
    /// Whether it was found on PATH.
    pub installed: bool,
    /// Where.
    pub path: Option<PathBuf>,
    /// The first `x.y.z` the version command printed.
    pub version: Option<String>,
    /// How to install it.
    pub install_command: String,
    /// Documentation link.
    pub docs: String,
    /// What went wrong running the version command, if anything.
    pub error: Option<String>,
}

/// The first executable `program` in the directories of `path_var` (a `PATH` value). A program
/// given with a `/` is checked as is.
pub fn find_on_path(program: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path_var?)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

/// The first `x.y.z` in `text`.
///
/// ```
/// assert_eq!(coding_agent_adapters::preflight::first_version("codex-cli 0.169.0\n").as_deref(), Some("0.169.0"));
/// assert_eq!(coding_agent_adapters::preflight::first_version("v2.1.197 (Claude Code)").as_deref(), Some("2.1.197"));
/// assert_eq!(coding_agent_adapters::preflight::first_version("version 1.2"), None);
/// ```
pub fn first_version(text: &str) -> Option<String> {
    let re = regex::Regex::new(r"(\d+\.\d+\.\d+)").expect("static regex");
    re.captures(text).map(|c| c[1].to_owned())
}

/// Run `program args` with no stdin and return its stdout + stderr, or an error after `timeout`
/// (the process is killed).
pub fn run_version(program: &Path, args: &[String], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let (tx, rx) = mpsc::channel();
    for mut pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // Bounded: a version banner is small; a runaway program is cut off.
            let _ = (&mut pipe).take(64 * 1024).read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} did not answer within {} s",
                    program.display(),
                    timeout.as_secs_f32()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for {}: {e}", program.display())),
        }
    };
    let mut out = String::new();
    for _ in 0..2 {
        // A grandchild may keep a pipe open; never wait past the deadline for it.
        let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
        match rx.recv_timeout(left) {
            Ok(b) => out.push_str(&String::from_utf8_lossy(&b)),
            Err(_) => break,
        }
    }
    if !status.success() && first_version(&out).is_none() {
        return Err(format!("{} exited with {status}", program.display()));
    }
    Ok(out)
}

/// Preflight one agent: PATH lookup in `path_var`, then its version command.
pub fn preflight(
    manifest: &AgentManifest,
    path_var: Option<&OsStr>,
    timeout: Duration,
) -> PreflightResult {
    let path = find_on_path(&manifest.command, path_var);
    let (version, error) = match &path {
        None => (None, None),
        Some(p) => match run_version(p, &manifest.version_args, timeout) {
            Ok(out) => match first_version(&out) {
                Some(v) => (Some(v), None),
                None => (None, Some("no version number in the output".to_owned())),
            },
            Err(e) => (None, Some(e)),
        },
    };
    PreflightResult {
        agent: manifest.agent,
        name: manifest.name.clone(),
        command: manifest.command.clone(),
        installed: path.is_some(),
        path,
        version,
        install_command: manifest.install.command_line(),
        docs: manifest.install.docs.clone(),
        error,
    }
}

/// Preflight every agent, in registry order. Two at a time: the version commands are mostly
/// Node and Python start-ups, and running all of them at once on a small machine makes each one
/// slow enough to hit its timeout.
pub fn preflight_all(
    registry: &Registry,
    path_var: Option<&OsStr>,
    timeout: Duration,
) -> Vec<PreflightResult> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let manifests: Vec<&AgentManifest> = registry.iter().collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<PreflightResult>>> = Mutex::new(vec![None; manifests.len()]);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(m) = manifests.get(i) else {
                        break;
                    };
                    let r = preflight(m, path_var, timeout);
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    manifests
        .iter()
        .zip(results)
        .map(|(m, r)| {
            r.unwrap_or_else(|| PreflightResult {
                agent: m.agent,
                name: m.name.clone(),
                command: m.command.clone(),
                installed: false,
                path: None,
                version: None,
                install_command: m.install.command_line(),
                docs: m.install.docs.clone(),
                error: Some("preflight failed".to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn script(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn installed_version_missing_and_hanging() {
        let dir = TempDir::new("preflight");
        script(dir.path(), "codex", "echo \"codex-cli 0.169.0\"");
        // Hermes' version command is `hermes version`, not `--version`.
        script(
            dir.path(),
            "hermes",
            "[ \"$1\" = version ] && echo 'Hermes Agent v0.4.2' || exit 3",
        );
        script(dir.path(), "gemini", "exec sleep 30");
        script(dir.path(), "pi", "echo 'no numbers here'");
        std::fs::write(dir.path().join("aider"), "not executable").unwrap();
        let path = dir.path().as_os_str().to_owned();
        let r = Registry::builtin().unwrap();
        let t = Duration::from_millis(500);
        let codex = preflight(r.get(AgentType::Codex), Some(&path), t);
        assert!(codex.installed);
        assert_eq!(codex.version.as_deref(), Some("0.169.0"));
        assert_eq!(codex.install_command, "npm install -g @openai/codex");
        let hermes = preflight(r.get(AgentType::Hermes), Some(&path), t);
        assert_eq!(hermes.version.as_deref(), Some("0.4.2"));
        let started = Instant::now();
        let gemini = preflight(r.get(AgentType::Gemini), Some(&path), t);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(gemini.installed && gemini.version.is_none());
        assert!(gemini.error.unwrap().contains("did not answer"));
        let pi = preflight(r.get(AgentType::Pi), Some(&path), t);
        assert_eq!(pi.error.as_deref(), Some("no version number in the output"));
        let aider = preflight(r.get(AgentType::Aider), Some(&path), t);
        assert!(!aider.installed && aider.error.is_none());
        assert_eq!(aider.install_command, "python3 -m pip install aider-chat");
        let claude = preflight(r.get(AgentType::Claude), None, t);
        assert!(!claude.installed);
        let all = preflight_all(&r, Some(&path), t);
        assert_eq!(all.len(), AgentType::ALL.len());
        assert_eq!(all[1].agent, AgentType::Codex);
    }

    #[test]
    fn a_shell_metacharacter_in_args_is_just_an_argument() {
        let dir = TempDir::new("preflight-argv");
        let marker = dir.path().join("pwned");
        script(dir.path(), "tool", "echo \"$1\"");
        let out = run_version(
            &dir.path().join("tool"),
            &[format!("1.2.3; touch {}", marker.display())],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(out.starts_with("1.2.3; touch"));
        assert!(!marker.exists());
    }
}
