//! The `git` program, always as an argv, with credentials only in the environment of the one
//! process that needs them, and its stderr redacted before it can reach an error.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::redact::{Redactor, Secret};
use crate::{Error, Result, b64};

/// Keep at most this much of git's stderr for an error message.
const STDERR_TAIL: usize = 8 * 1024;

/// Variables inherited from a surrounding git (a hook, `git rebase --exec`) that would point our
/// git at another repository.
const INHERITED_REPO_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// How `git` is run.
#[derive(Debug, Clone)]
pub struct GitConfig {
    /// The program (default `git`, found on `PATH`).
    pub program: PathBuf,
    /// Extra environment for every git process, applied after the inherited one (tests put
    /// `HOME`, `GIT_CONFIG_GLOBAL` and `GIT_CONFIG_NOSYSTEM` here).
    pub env: Vec<(String, String)>,
}

impl Default for GitConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("git"),
            env: Vec::new(),
        }
    }
}

/// An HTTP credential for one origin, given to git as an `http.<origin>.extraheader` in the
/// environment of one process; git sends it only to URLs under that origin.
#[derive(Clone)]
pub struct GitAuth {
    origin: String,
    header: Secret,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl GitAuth {
    /// `Authorization: Basic base64("x-access-token:" + token)` for `origin`
    /// (`https://github.com/`), the form GitHub accepts for PAT, OAuth and App tokens.
    pub fn basic(origin: impl Into<String>, token: &str) -> Self {
        let cred = b64::encode(format!("x-access-token:{token}").as_bytes());
        Self {
            origin: origin.into(),
            header: Secret::new(format!("Authorization: Basic {cred}")),
        }
    }

    /// `Authorization: Bearer <token>` for `origin`.
    pub fn bearer(origin: impl Into<String>, token: &str) -> Self {
        Self {
            origin: origin.into(),
            header: Secret::new(format!("Authorization: Bearer {token}")),
        }
    }

    /// The origin the header is scoped to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The environment that carries this credential to a git process as configuration entry
    /// `index` (`GIT_CONFIG_KEY_<index>`/`GIT_CONFIG_VALUE_<index>`, count `index + 1`), with
    /// prompting disabled. For a process this crate does not start itself (an agent).
    pub fn env(&self, index: usize) -> Vec<(String, String)> {
        vec![
            ("GIT_CONFIG_COUNT".into(), (index + 1).to_string()),
            (
                format!("GIT_CONFIG_KEY_{index}"),
                format!("http.{}.extraheader", self.origin),
            ),
            (
                format!("GIT_CONFIG_VALUE_{index}"),
                self.header.expose().to_owned(),
            ),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ]
    }
}

/// A progress report parsed from git's `--progress` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitProgress {
    /// The phase as git names it, e.g. `Receiving objects`.
    pub phase: String,
    /// Percent done, where git prints one.
    pub percent: Option<u8>,
}

/// Runs git.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    config: GitConfig,
    redactor: Redactor,
}

impl Git {
    pub(crate) fn new(config: GitConfig, redactor: Redactor) -> Self {
        Self { config, redactor }
    }

    /// A command in `cwd` (or no particular directory).
    pub(crate) fn cmd(&self, cwd: Option<&Path>) -> GitCmd<'_> {
        GitCmd {
            git: self,
            cwd: cwd.map(Path::to_path_buf),
            args: Vec::new(),
            auth: None,
            env: Vec::new(),
            timeout: None,
        }
    }
}

/// One git invocation being built.
pub(crate) struct GitCmd<'a> {
    git: &'a Git,
    cwd: Option<PathBuf>,
    args: Vec<OsString>,
    auth: Option<GitAuth>,
    env: Vec<(String, String)>,
    timeout: Option<Duration>,
}

impl GitCmd<'_> {
    pub(crate) fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub(crate) fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub(crate) fn auth(mut self, auth: Option<&GitAuth>) -> Self {
        self.auth = auth.cloned();
        self
    }

    pub(crate) fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Kills git and fails with [`Error::GitTimeout`] when it has not finished after `limit`
    /// (for a question to a remote that may never answer; clones and pushes run unbounded).
    pub(crate) fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Refuses a repository whose own configuration (local, worktree, or a file they include)
    /// rewrites remote URLs or names programs for a transport: with a credential in git's
    /// environment, a rewrite to a local repository would run that repository's hooks, and
    /// `receivepack`/`uploadpack`/`vcs` run programs directly. Read with a plain git of this
    /// runner (no credential, so no check of its own).
    fn check_repo_config(&self, cwd: &Path) -> Result<()> {
        let listed = self
            .git
            .cmd(Some(cwd))
            .args([
                "config",
                "--show-scope",
                "--includes",
                "--list",
                "--name-only",
            ])
            .run()?;
        // `<scope>\t<key>`, the key's section and name lower-cased by git (names only: a
        // subsection such as a URL may hold `=`).
        let found = listed.lines().find_map(|line| {
            let (scope, key) = line.split_once('\t')?;
            (matches!(scope, "local" | "worktree") && unsafe_with_credential(key)).then_some(key)
        });
        match found {
            Some(key) => Err(Error::UnsafeRepoConfig {
                path: cwd.display().to_string(),
                key: key.to_owned(),
            }),
            None => Ok(()),
        }
    }

    fn shown_args(&self) -> String {
        let shown: Vec<String> = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.git.redactor.redact(&shown.join(" "))
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.git.config.program);
        if let Some(cwd) = &self.cwd {
            c.current_dir(cwd);
        }
        c.args(&self.args);
        for v in INHERITED_REPO_VARS {
            c.env_remove(v);
        }
        // Never ask on a terminal; C messages so stderr parsing is stable.
        c.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_ASKPASS", "");
        for (k, v) in self.git.config.env.iter().chain(&self.env) {
            c.env(k, v);
        }
        if let Some(auth) = &self.auth {
            // Append after any configuration the environment already carries, so a user's (or
            // a test's) own GIT_CONFIG_COUNT entries keep working.
            let lookup = |k: &str| {
                self.git
                    .config
                    .env
                    .iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .or_else(|| std::env::var(k).ok())
            };
            let n: usize = lookup("GIT_CONFIG_COUNT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // The header lives in this git's environment, and git hands its environment to
            // every program it starts. The repository's own configuration is the agent's to
            // write, so none of it may start one here: no hooks (`pre-push`,
            // `reference-transaction`), no credential helper, no fsmonitor. Command-line
            // configuration (these variables) wins over the repository's. What it cannot undo
            // (an `insteadOf` to a local repository whose hooks would run) is refused before
            // git starts (`check_repo_config`).
            let header_key = format!("http.{}.extraheader", auth.origin);
            let entries = [
                (header_key.as_str(), auth.header.expose()),
                ("core.hooksPath", "/dev/null"),
                ("credential.helper", ""),
                ("core.fsmonitor", "false"),
            ];
            for (i, (k, v)) in entries.iter().enumerate() {
                c.env(format!("GIT_CONFIG_KEY_{}", n + i), k);
                c.env(format!("GIT_CONFIG_VALUE_{}", n + i), v);
            }
            c.env("GIT_CONFIG_COUNT", (n + entries.len()).to_string());
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs to completion; returns stdout.
    pub(crate) fn run(self) -> Result<String> {
        self.run_progress(&mut |_| {})
    }

    /// Runs to completion, reporting progress lines (git writes them to stderr, separated by
    /// `\r`) as they come; returns stdout.
    pub(crate) fn run_progress(self, on_progress: &mut dyn FnMut(GitProgress)) -> Result<String> {
        if self.auth.is_some()
            && let Some(cwd) = &self.cwd
        {
            self.check_repo_config(cwd)?;
        }
        let args = self.shown_args();
        let mut child = self.command().spawn().map_err(|source| Error::GitSpawn {
            args: args.clone(),
            source,
        })?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        // stderr is read on a thread so a time limit holds even while a helper git started
        // (git-remote-https) keeps the pipe open after git itself is killed.
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(chunk[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let deadline = self.timeout.map(|t| (t, Instant::now() + t));
        let mut stderr = Vec::new();
        let mut drained = false;
        let mut line = Vec::new();
        loop {
            let chunk = match deadline {
                None => match rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                },
                Some((limit, at)) => {
                    match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(c) => c,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err(Error::GitTimeout {
                                args,
                                seconds: limit.as_secs(),
                            });
                        }
                    }
                }
            };
            for &b in &chunk {
                if b == b'\r' || b == b'\n' {
                    if let Some(p) = parse_progress(&String::from_utf8_lossy(&line)) {
                        on_progress(p);
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
            stderr.extend_from_slice(&chunk);
            if stderr.len() > 4 * STDERR_TAIL {
                stderr.drain(..stderr.len() - STDERR_TAIL);
                drained = true;
            }
        }
        let status = child.wait().map_err(|source| Error::GitSpawn {
            args: args.clone(),
            source,
        })?;
        let out = reader.join().unwrap_or_default();
        if status.success() {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        let text = String::from_utf8_lossy(&stderr);
        // Progress lines are noise in an error; keep the messages.
        let lines: Vec<&str> = text
            .split(['\r', '\n'])
            .filter(|l| !l.trim().is_empty() && parse_progress(l).is_none())
            .collect();
        // Redacted whole, then cut: cut first, a secret across the cut kept a part no longer
        // recognised. Where the text was cut (here, or while streaming), its first word may be
        // a piece of one, so the tail starts after it.
        let mut msg = self.git.redactor.redact(lines.join("\n").trim());
        if drained || msg.len() > STDERR_TAIL {
            let cut = msg.len().saturating_sub(STDERR_TAIL);
            let cut = (cut..msg.len())
                .find(|&i| msg.is_char_boundary(i))
                .unwrap_or(msg.len());
            let tail = &msg[cut..];
            let word_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            msg = format!("…{}", &tail[word_end..]);
        }
        Err(Error::Git {
            args,
            status: status.to_string(),
            stderr: msg,
        })
    }
}

/// Whether configuration `key` (as `git config --list` prints it) redirects a remote or names a
/// program for a transport: `url.*.insteadof`/`pushinsteadof`, `remote.*.receivepack`/
/// `uploadpack`/`vcs`/`proxy`, `protocol.*`, `core.sshcommand`, `core.gitproxy`.
fn unsafe_with_credential(key: &str) -> bool {
    let name = key.rsplit('.').next().unwrap_or(key);
    (key.starts_with("url.") && matches!(name, "insteadof" | "pushinsteadof"))
        || (key.starts_with("remote.")
            && matches!(name, "receivepack" | "uploadpack" | "vcs" | "proxy"))
        || key.starts_with("protocol.")
        || matches!(key, "core.sshcommand" | "core.gitproxy")
}

/// `Receiving objects:  45% (9/20)` → phase and percent; `remote: Counting objects: …` too.
fn parse_progress(line: &str) -> Option<GitProgress> {
    let line = line.trim().strip_prefix("remote: ").unwrap_or(line.trim());
    let (phase, rest) = line.split_once(": ")?;
    if phase.is_empty() || !phase.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
        return None;
    }
    let rest = rest.trim_start();
    let percent = rest
        .split_once('%')
        .and_then(|(n, _)| n.trim().parse::<u8>().ok());
    let looks_like_progress =
        percent.is_some() || rest.chars().next().is_some_and(|c| c.is_ascii_digit());
    looks_like_progress.then(|| GitProgress {
        phase: phase.to_owned(),
        percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_redirect_remotes_or_name_programs() {
        for (key, unsafe_) in [
            ("url./tmp/x.insteadof", true),
            ("url.https://h/?a=b.pushinsteadof", true),
            ("remote.origin.receivepack", true),
            ("remote.origin.uploadpack", true),
            ("remote.origin.vcs", true),
            ("remote.origin.proxy", true),
            ("protocol.file.allow", true),
            ("core.sshcommand", true),
            ("core.gitproxy", true),
            ("remote.origin.url", false),
            ("url.x.other", false),
            ("core.bare", false),
            ("user.name", false),
        ] {
            assert_eq!(unsafe_with_credential(key), unsafe_, "{key}");
        }
    }

    /// A git that carries a credential ignores the repository's hooks, credential helper and
    /// fsmonitor, and refuses to run where the repository rewrites remote URLs, whatever its
    /// configuration (the agent's to write) says: each could run a program that reads the
    /// credential from git's environment.
    #[test]
    fn a_credentialed_git_runs_nothing_the_repository_configures() {
        let dir = std::env::temp_dir().join(format!("gws-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let git = Git::new(
            GitConfig {
                program: PathBuf::from("git"),
                env: vec![
                    ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
                    ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
                ],
            },
            Redactor::new(),
        );
        git.cmd(Some(&dir)).args(["init", "-q"]).run().unwrap();
        for (k, v) in [
            ("core.hooksPath", "/tmp/evil-hooks"),
            ("credential.helper", "!evil"),
            ("core.fsmonitor", "evil"),
        ] {
            git.cmd(Some(&dir)).args(["config", k, v]).run().unwrap();
        }
        let auth = GitAuth::basic("https://example.invalid/", "tok");
        // The value git uses is the last one (`--get`); command-line entries come last.
        let get = |key: &str, auth: Option<&GitAuth>| {
            git.cmd(Some(&dir))
                .args(["config", "--get", key])
                .auth(auth)
                .run()
                .unwrap_or_default()
        };
        assert_eq!(get("core.hooksPath", None).trim(), "/tmp/evil-hooks");
        assert_eq!(get("core.hooksPath", Some(&auth)).trim(), "/dev/null");
        // An empty helper resets the list: none runs.
        assert_eq!(get("credential.helper", None).trim(), "!evil");
        assert_eq!(get("credential.helper", Some(&auth)).trim(), "");
        assert_eq!(get("core.fsmonitor", Some(&auth)).trim(), "false");
        // A rewrite to a local repository (whose hooks would run with the credential in the
        // environment) is refused before git starts; without a credential git runs.
        let rewrite = |auth: Option<&GitAuth>| {
            git.cmd(Some(&dir))
                .args(["config", "--get", "core.bare"])
                .auth(auth)
                .run()
        };
        git.cmd(Some(&dir))
            .args([
                "config",
                "url./tmp/evil-remote.insteadOf",
                "https://example.invalid/",
            ])
            .run()
            .unwrap();
        assert!(rewrite(None).is_ok());
        match rewrite(Some(&auth)) {
            Err(Error::UnsafeRepoConfig { key, .. }) => {
                assert_eq!(key, "url./tmp/evil-remote.insteadof")
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn progress_lines() {
        let table: &[(&str, Option<(&str, Option<u8>)>)] = &[
            (
                "Receiving objects:  45% (9/20)",
                Some(("Receiving objects", Some(45))),
            ),
            (
                "remote: Counting objects: 100% (3/3), done.",
                Some(("Counting objects", Some(100))),
            ),
            (
                "remote: Enumerating objects: 5, done.",
                Some(("Enumerating objects", None)),
            ),
            ("Cloning into 'x'...", None),
            ("fatal: repository 'x' does not exist", None),
        ];
        for (line, want) in table {
            let got = parse_progress(line);
            assert_eq!(
                got.as_ref().map(|p| (p.phase.as_str(), p.percent)),
                *want,
                "{line}"
            );
        }
    }

    #[test]
    fn auth_goes_to_env_only_and_appends_to_existing_config() {
        let git = Git::new(
            GitConfig {
                program: "git".into(),
                env: vec![("GIT_CONFIG_COUNT".into(), "1".into())],
            },
            Redactor::new(),
        );
        let auth = GitAuth::basic("https://github.com/", "tok_123456");
        let cmd = git.cmd(None).arg("fetch").auth(Some(&auth)).command();
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["fetch"]);
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        // One entry already there, then the header and the guards (hooks, helper, fsmonitor).
        assert_eq!(get("GIT_CONFIG_COUNT"), Some("5"));
        assert_eq!(
            get("GIT_CONFIG_KEY_1"),
            Some("http.https://github.com/.extraheader")
        );
        assert_eq!(get("GIT_CONFIG_KEY_2"), Some("core.hooksPath"));
        let expected = format!(
            "Authorization: Basic {}",
            b64::encode(b"x-access-token:tok_123456")
        );
        assert_eq!(get("GIT_CONFIG_VALUE_1"), Some(expected.as_str()));
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some("0"));
    }

    #[test]
    fn a_time_limit_kills_a_process_that_does_not_finish() {
        let running = |program: &str| {
            Git::new(
                GitConfig {
                    program: program.into(),
                    env: Vec::new(),
                },
                Redactor::new(),
            )
        };
        // `sleep` stands in for a git that never hears back from its remote.
        let err = running("sleep")
            .cmd(None)
            .arg("30")
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap_err();
        assert!(
            matches!(&err, Error::GitTimeout { args, seconds: 0 } if args == "30"),
            "{err:?}"
        );
        // Within the limit, the output comes back as without one.
        let out = running("echo")
            .cmd(None)
            .arg("done")
            .timeout(Duration::from_secs(60))
            .run()
            .unwrap();
        assert_eq!(out, "done\n");
    }
}
