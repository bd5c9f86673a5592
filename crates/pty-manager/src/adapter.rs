//! What a CLI is: the [`Adapter`] trait, the built-in [`ShellAdapter`], and the
//! [`DeclarativeAdapter`] loaded from a YAML manifest (so an agent can be added with no Rust).

use std::sync::{Arc, OnceLock};

use crate::Result;
use crate::explain::{Detector, Explanation};
use crate::rules::{AdapterManifest, InputStyle, Region, RuleSet, RuleSpec, Signal};
use crate::snapshot::ScreenSnapshot;

/// A program the manager can run and read: how to start it and how to tell its state.
pub trait Adapter: Send + Sync + std::fmt::Debug {
    /// Adapter type id (`shell`, `claude`, …).
    fn agent_type(&self) -> &str;
    /// Program to run (looked up on PATH when not a path).
    fn command(&self) -> String;
    /// Its arguments.
    fn args(&self) -> Vec<String>;
    /// Fixed environment variables the adapter needs (added to the session's allow-list).
    fn env(&self) -> Vec<(String, String)>;
    /// Whether answers are typed text or TUI keys.
    fn input_style(&self) -> InputStyle;
    /// How long `ready` must hold on an unchanged screen at start-up.
    fn ready_settle_ms(&self) -> u64;
    /// How long a finished turn must hold before `task_complete`.
    fn task_complete_settle_ms(&self) -> u64 {
        1500
    }
    /// Minimum delay between typed text and its Enter.
    fn min_enter_delay_ms(&self) -> u64 {
        50
    }
    /// Highlight glyph of the selected menu option, if any.
    fn menu_marker(&self) -> Option<String> {
        None
    }
    /// Whether this is a plain shell (the classifier never types into it).
    fn is_shell(&self) -> bool {
        false
    }
    /// The compiled detection rules, plus prompt-box rows.
    fn detector(&self) -> &Detector;
    /// Classify one screen with this adapter's rules.
    fn explain(&self, snap: &ScreenSnapshot) -> Explanation {
        Explanation::from_observation(&self.detector().observe(Arc::new(snap.clone()), None))
    }
}

/// Continuation prompts that mean "the shell waits for more of the command" (BEHAVIOR.md §7.8).
const CONTINUATION: &str = r"^(?:pty\+|quote>|dquote>|heredoc>|bquote>|cmdsubst>|pipe>)";

/// A plain shell with prompt `pty> ` and continuation prompt `pty+ ` (BEHAVIOR.md §7.8).
///
/// The shell keeps its command history in memory only (`HISTFILE` is set empty): what an agent or
/// a test types into a session never lands in the user's `~/.bash_history`, and bash skips reading
/// that file at start-up (0.5-1.5 ms of its ~3 ms to the first prompt with a 20 KB history). A
/// session that wants a history file sets `HISTFILE` itself ([`crate::SpawnConfig::env`] wins
/// over the adapter's variables).
///
/// Ready (and turn end) only when the cursor row is exactly the prompt, so a program that merely
/// prints `pty> `, or a continuation prompt (`pty+ `, zsh `quote>` …), never reads as ready.
///
/// ```
/// use pty_manager::{Adapter, ScreenSnapshot, ScreenState, ShellAdapter};
/// let sh = ShellAdapter::with_shell("/bin/bash");
/// assert_eq!(sh.args(), ["--noprofile", "--norc"]);
/// assert_eq!(sh.explain(&ScreenSnapshot::from_text("pty> echo 'a\npty+ ", 80, 24)).state, ScreenState::Busy);
/// assert_eq!(sh.explain(&ScreenSnapshot::from_text("pty> ls\nfile\npty> ", 80, 24)).state, ScreenState::Ready);
/// ```
#[derive(Debug, Clone)]
pub struct ShellAdapter {
    shell: String,
    detector: Detector,
}

impl ShellAdapter {
    /// The shell at this path (bash gets `--noprofile --norc`, zsh `-f`).
    pub fn with_shell(shell: impl Into<String>) -> Self {
        // Callers build one adapter per session (the plugin, the console, the bench driver), and
        // compiling the built-in rules per adapter cost every shell session its own regexes and
        // match caches (~130 kB). The rules are a constant, so they are compiled once per process
        // and every adapter shares them (an immutable cache, not mutable global state).
        static DETECTOR: OnceLock<Detector> = OnceLock::new();
        let detector = DETECTOR
            .get_or_init(|| {
                let rules =
                    RuleSet::compile(&Self::rule_specs()).expect("built-in shell rules compile");
                Detector::new(Arc::new(rules), &[])
            })
            .clone();
        ShellAdapter {
            shell: shell.into(),
            detector,
        }
    }

    /// `$SHELL` when set and absolute, else `/bin/bash`.
    pub fn from_env() -> Self {
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| s.starts_with('/'))
            .unwrap_or_else(|| "/bin/bash".to_owned());
        Self::with_shell(shell)
    }

    /// The built-in rules (also useful as an example of the rule format).
    pub fn rule_specs() -> Vec<RuleSpec> {
        vec![
            RuleSpec::new("shell.continuation", Signal::Busy, CONTINUATION)
                .region(Region::CursorRow),
            RuleSpec::new("shell.prompt", Signal::Ready, r"^pty>$").region(Region::CursorRow),
        ]
    }

    fn shell_name(&self) -> &str {
        self.shell.rsplit('/').next().unwrap_or(&self.shell)
    }
}

impl Default for ShellAdapter {
    fn default() -> Self {
        Self::from_env()
    }
}

impl Adapter for ShellAdapter {
    fn agent_type(&self) -> &str {
        "shell"
    }
    fn command(&self) -> String {
        self.shell.clone()
    }
    fn args(&self) -> Vec<String> {
        match self.shell_name() {
            "bash" => vec!["--noprofile".into(), "--norc".into()],
            "zsh" => vec!["-f".into()],
            _ => Vec::new(),
        }
    }
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("PS1".into(), "pty> ".into()),
            ("PROMPT".into(), "pty> ".into()),
            ("PS2".into(), "pty+ ".into()),
            // Empty: bash and zsh neither read nor write a history file (see the type's docs).
            ("HISTFILE".into(), String::new()),
        ]
    }
    fn input_style(&self) -> InputStyle {
        InputStyle::Text
    }
    fn ready_settle_ms(&self) -> u64 {
        100
    }
    fn is_shell(&self) -> bool {
        true
    }
    fn detector(&self) -> &Detector {
        &self.detector
    }
}

/// An adapter defined entirely by a manifest (schema 1).
#[derive(Debug, Clone)]
pub struct DeclarativeAdapter {
    manifest: AdapterManifest,
    detector: Detector,
}

impl DeclarativeAdapter {
    /// Parse, check and compile a manifest.
    ///
    /// ```
    /// use pty_manager::{Adapter, DeclarativeAdapter, ScreenSnapshot, ScreenState};
    /// let a = DeclarativeAdapter::from_yaml(r#"
    /// schema: 1
    /// type: toy
    /// command: toy
    /// rules:
    ///   - { id: toy.ready, signal: ready, pattern: '^toy> ?$', region: cursor_row }
    /// "#).unwrap();
    /// assert_eq!(a.explain(&ScreenSnapshot::from_text("toy> ", 80, 24)).state, ScreenState::Ready);
    /// ```
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::from_manifest(AdapterManifest::from_yaml(text)?)
    }

    /// Compile an already parsed manifest.
    pub fn from_manifest(manifest: AdapterManifest) -> Result<Self> {
        let rules = RuleSet::compile(&manifest.rules)?;
        let detector = Detector::new(Arc::new(rules), &manifest.prompt_box);
        Ok(DeclarativeAdapter { manifest, detector })
    }

    /// The manifest.
    pub fn manifest(&self) -> &AdapterManifest {
        &self.manifest
    }
}

impl Adapter for DeclarativeAdapter {
    fn agent_type(&self) -> &str {
        &self.manifest.agent_type
    }
    fn command(&self) -> String {
        self.manifest.command.clone()
    }
    fn args(&self) -> Vec<String> {
        self.manifest.args.clone()
    }
    fn env(&self) -> Vec<(String, String)> {
        self.manifest
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn input_style(&self) -> InputStyle {
        self.manifest.input_style
    }
    fn ready_settle_ms(&self) -> u64 {
        self.manifest.ready_settle_ms
    }
    fn task_complete_settle_ms(&self) -> u64 {
        self.manifest.task_complete_settle_ms
    }
    fn min_enter_delay_ms(&self) -> u64 {
        self.manifest.min_enter_delay_ms
    }
    fn menu_marker(&self) -> Option<String> {
        self.manifest.menu_marker.clone()
    }
    fn is_shell(&self) -> bool {
        self.manifest.shell
    }
    fn detector(&self) -> &Detector {
        &self.detector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::ScreenState;

    /// Runs a command in a `ShellAdapter` bash whose home is `home`, then `exit` (bash writes
    /// its history file on exit); `extra` are the caller's variables.
    fn run_shell_in(home: &std::path::Path, extra: &[(&str, String)]) {
        use crate::{PtyManager, SessionEvent, SpawnConfig};
        use std::time::{Duration, Instant};
        let mgr = PtyManager::new().unwrap();
        let rx = mgr.events();
        let mut cfg = SpawnConfig::with_adapter(Arc::new(ShellAdapter::with_shell("/bin/bash")))
            .env("HOME", home.to_string_lossy());
        for (k, v) in extra {
            cfg = cfg.env(*k, v.clone());
        }
        let s = mgr.spawn(cfg).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let wait = |name: &str| loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = rx.recv_timeout(left).expect("event before the timeout");
            if e.session_id() == s.id && e.name() == name {
                return e;
            }
        };
        wait("session_ready");
        mgr.send(&s.id, "echo remembered-$((6*7))").unwrap();
        wait("task_complete");
        mgr.send(&s.id, "exit").unwrap();
        assert!(matches!(
            wait("session_stopped"),
            SessionEvent::Stopped { .. }
        ));
    }

    #[test]
    fn shell_history_stays_out_of_the_users_home() {
        let home = std::env::temp_dir().join(format!("pty-shell-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let default_file = home.join(".bash_history");
        run_shell_in(&home, &[]);
        let wrote_default = default_file.exists();
        // The same session with a history file chosen by the caller does write it, so the
        // assertion above is not vacuous (bash does save on `exit`).
        let chosen = home.join("chosen_history");
        run_shell_in(
            &home,
            &[("HISTFILE", chosen.to_string_lossy().into_owned())],
        );
        let text = std::fs::read_to_string(&chosen).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&home);
        assert!(!wrote_default, "the session wrote {default_file:?}");
        assert!(text.contains("echo remembered-$((6*7))"), "{text:?}");
    }

    #[test]
    fn shell_states() {
        let sh = ShellAdapter::with_shell("/usr/bin/zsh");
        assert_eq!(sh.args(), ["-f"]);
        for (screen, want) in [
            ("pty> ", ScreenState::Ready),
            ("pty> ls\na b\npty> ", ScreenState::Ready),
            ("pty> echo \"a\npty+ ", ScreenState::Busy),
            ("pty> echo \"a\nquote> ", ScreenState::Busy),
            ("pty> cat <<EOF\nheredoc> ", ScreenState::Busy),
            ("pty> sleep 5", ScreenState::Starting),
            // A program printing the prompt text, cursor on the next row: not ready.
            (
                "pty> printf 'pty> \\n'; sleep 9\npty> \n",
                ScreenState::Starting,
            ),
            // Text containing "exit" never means anything.
            ("pty> echo exit\nexit\n", ScreenState::Starting),
        ] {
            let snap = ScreenSnapshot::from_text(screen, 80, 24);
            assert_eq!(sh.explain(&snap).state, want, "{screen:?}");
        }
    }
}
