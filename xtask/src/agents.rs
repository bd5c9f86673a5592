//! The pinned agent CLIs (`xtask/agents.toml`) and how each runs offline against the fake model
//! server (`../shared/design/AGENTS-OFFLINE.md`). `cargo xtask record` launches the CLIs with
//! [`offline_launch`]; `cargo xtask e2e` launches them through the orchestrator plugin and uses
//! [`offline_launch`] only to seed what a user's HOME holds before its login and trust checks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use test_support::model::{FakeModel, MODEL_ID};

/// One pinned CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub package: String,
    pub version: String,
    pub installer: String,
    pub command: String,
}

/// The pins file, found from the xtask crate's own directory so it works from any cwd.
pub fn pins_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agents.toml")
}

/// Reads the subset of TOML the pins file uses: `[name]` sections of `key = "value"` lines.
pub fn parse_pins(text: &str) -> Result<Vec<Pin>, String> {
    let mut pins: Vec<Pin> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            pins.push(Pin {
                name: name.to_owned(),
                package: String::new(),
                version: String::new(),
                installer: String::new(),
                command: name.to_owned(),
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| format!("line {}: cannot read `{line}`", i + 1))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("line {}: value of `{key}` is not a string", i + 1))?
            .to_owned();
        let pin = pins
            .last_mut()
            .ok_or_else(|| format!("line {}: `{key}` before any [agent] section", i + 1))?;
        match key {
            "package" => pin.package = value,
            "version" => pin.version = value,
            "installer" => pin.installer = value,
            "command" => pin.command = value,
            _ => return Err(format!("line {}: unknown key `{key}`", i + 1)),
        }
    }
    if let Some(p) = pins
        .iter()
        .find(|p| p.version.is_empty() || p.package.is_empty())
    {
        return Err(format!("agent `{}` lacks a package or version", p.name));
    }
    Ok(pins)
}

/// Reads the pins file.
pub fn read_pins() -> Result<Vec<Pin>, String> {
    let path = pins_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_pins(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first `x.y.z` that `<command> --version` prints (stdout or stderr), within 30 s.
pub fn installed_version(command: &str) -> Option<String> {
    let mut child = Command::new(command)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    first_version(&text)
}

fn first_version(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
        })
        .map(str::to_owned)
}

/// The reason the install script recorded for skipping `name`, if it ran and skipped it.
pub fn install_report_reason(name: &str) -> Option<String> {
    let path = std::env::var_os("AGENTS_INSTALL_REPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/agents-install.tsv")
        });
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let cols: Vec<&str> = l.split('\t').collect();
        (cols.len() >= 5 && cols[0] == name && cols[1] == "skipped").then(|| cols[4].to_owned())
    })
}

/// Gives the fresh HOME a git identity (Aider commits; finalize commits), unless it has a config.
pub fn write_gitconfig(home: &Path) -> Result<(), String> {
    let path = home.join(".gitconfig");
    if path.exists() {
        return Ok(());
    }
    write(
        &path,
        "[user]\n\tname = E2E Agent\n\temail = e2e@example.invalid\n[init]\n\tdefaultBranch = main\n",
    )
}

/// How far to seed the fresh HOME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// Credentials, onboarding done and the repo trusted: the agent starts at its prompt.
    Full,
    /// Credentials but no trust entry: the trust dialog shows where the agent has one.
    NoTrust,
    /// Nothing at all, no key: login / onboarding screens.
    Nothing,
}

/// A command line with its environment, ready for a PTY.
#[derive(Debug, Clone)]
pub struct Launch {
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Writes `path` (creating parents).
fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// The variables that put a program in a private world: HOME and TMPDIR, the XDG directories
/// under that HOME, a UTF-8 locale, and no system git configuration.
pub fn world_env(home: &Path, tmp: &Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        (
            "XDG_CONFIG_HOME".into(),
            home.join(".config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            home.join(".cache").display().to_string(),
        ),
        (
            "XDG_DATA_HOME".into(),
            home.join(".local/share").display().to_string(),
        ),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
    ]
}

/// Seeds `home` for `agent` per AGENTS-OFFLINE.md and returns its command line under the
/// `standard` preset (permission prompts shown, not pre-approved). Every variable the agent sees
/// is listed here: nothing is inherited but `PATH` (and pyenv's root, for a pip-installed Aider).
pub fn offline_launch(
    agent: &str,
    version: &str,
    model: &FakeModel,
    home: &Path,
    tmp: &Path,
    repo: &Path,
    seed: Seed,
) -> Result<Launch, String> {
    let base = model.base_url();
    let key = model.api_key().to_owned();
    let repo_s = repo.display().to_string();
    let mut env = world_env(home, tmp);
    env.push(("TERM".into(), "xterm-256color".into()));
    for pass in ["PATH", "PYENV_ROOT"] {
        if let Ok(v) = std::env::var(pass) {
            env.push((pass.into(), v));
        }
    }
    write_gitconfig(home)?;
    let with_key = seed != Seed::Nothing;
    let trusted = seed == Seed::Full;
    let (command, args): (&str, Vec<String>) = match agent {
        "claude" => {
            if !with_key {
                // Onboarding done but no credentials: the "Not logged in" state. (A HOME with
                // no file at all runs a connectivity check against the vendor and exits.)
                // The repo is trusted so that the login state, not the trust dialog, shows.
                let cfg = json!({
                    "hasCompletedOnboarding": true,
                    "lastOnboardingVersion": version,
                    "theme": "dark",
                    "projects": {&repo_s: {"hasTrustDialogAccepted": true}}
                });
                write(&home.join(".claude.json"), &cfg.to_string())?;
            }
            if with_key {
                let tail: String = key
                    .chars()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let mut cfg = json!({
                    "hasCompletedOnboarding": true,
                    "lastOnboardingVersion": version,
                    "theme": "dark",
                    "customApiKeyResponses": {"approved": [tail], "rejected": []},
                    "projects": {}
                });
                if trusted {
                    cfg["projects"][&repo_s] =
                        json!({"hasTrustDialogAccepted": true, "projectOnboardingSeenCount": 1});
                }
                write(&home.join(".claude.json"), &cfg.to_string())?;
                env.push(("ANTHROPIC_BASE_URL".into(), base.clone()));
                env.push(("ANTHROPIC_API_KEY".into(), key.clone()));
            }
            env.push((
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(),
                "1".into(),
            ));
            env.push(("DISABLE_AUTOUPDATER".into(), "1".into()));
            ("claude", vec![])
        }
        "codex" => {
            if with_key {
                let mut cfg = format!(
                    "model = \"{MODEL_ID}\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\nname = \"Fake\"\nbase_url = \"{base}/v1\"\nenv_key = \"FAKE_API_KEY\"\nwire_api = \"responses\"\n"
                );
                if trusted {
                    cfg.push_str(&format!(
                        "\n[projects.\"{repo_s}\"]\ntrust_level = \"trusted\"\n"
                    ));
                }
                write(&home.join(".codex/config.toml"), &cfg)?;
                env.push(("FAKE_API_KEY".into(), key.clone()));
            }
            (
                "codex",
                ["--no-daemon", "-s", "workspace-write", "-a", "on-request"]
                    .map(String::from)
                    .to_vec(),
            )
        }
        "gemini" => {
            if !with_key {
                // No auth type and no key, but folder trust off: the auth dialog, not the
                // trust dialog, is what a fresh user meets first in a trusted checkout.
                let cfg = json!({"security": {"folderTrust": {"enabled": false}},
                                 "general": {"disableAutoUpdate": true}});
                write(&home.join(".gemini/settings.json"), &cfg.to_string())?;
            }
            if with_key {
                let cfg = json!({
                    "security": {"auth": {"selectedType": "gemini-api-key"},
                                 "folderTrust": {"enabled": !trusted}},
                    "privacy": {"usageStatisticsEnabled": false},
                    "general": {"disableAutoUpdate": true, "disableUpdateNag": true}
                });
                write(&home.join(".gemini/settings.json"), &cfg.to_string())?;
                env.push(("GOOGLE_GEMINI_BASE_URL".into(), base.clone()));
                env.push(("GEMINI_API_KEY".into(), key.clone()));
            }
            (
                "gemini",
                ["--approval-mode", "default"].map(String::from).to_vec(),
            )
        }
        "pi" => {
            if with_key {
                let models = json!({"providers": {"fake": {
                    "baseUrl": format!("{base}/v1"),
                    "api": "openai-completions",
                    "apiKey": key,
                    "compat": {"supportsDeveloperRole": false, "supportsReasoningEffort": false},
                    "models": [{"id": MODEL_ID, "name": "Fake Model", "contextWindow": 128000,
                                "maxTokens": 4096, "input": ["text"], "reasoning": false}]
                }}});
                write(&home.join(".pi/agent/models.json"), &models.to_string())?;
                write(
                    &home.join(".pi/agent/settings.json"),
                    &json!({"defaultProvider": "fake", "defaultModel": MODEL_ID}).to_string(),
                )?;
            }
            env.push(("PI_OFFLINE".into(), "1".into()));
            ("pi", vec![])
        }
        "aider" => {
            // litellm's own price-list download; Aider still tries its copy and prints one
            // harmless resolution error offline.
            env.push(("LITELLM_LOCAL_MODEL_COST_MAP".into(), "True".into()));
            let mut args: Vec<String> = [
                "--no-gitignore",
                "--no-check-update",
                "--no-show-release-notes",
                "--analytics-disable",
            ]
            .map(String::from)
            .to_vec();
            if with_key {
                // The key goes in the environment, never in argv.
                env.push(("OPENAI_API_KEY".into(), key.clone()));
                env.push(("OPENAI_API_BASE".into(), format!("{base}/v1")));
                args.extend(
                    ["--model", "openai/fake-model", "--no-show-model-warnings"].map(String::from),
                );
            }
            ("aider", args)
        }
        other => return Err(format!("no offline recipe for agent `{other}`")),
    };
    Ok(Launch {
        command: command.into(),
        args,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pins_file_parses_and_names_the_five_agents() {
        let pins = read_pins().unwrap();
        let names: Vec<&str> = pins.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["claude", "codex", "gemini", "pi", "aider"]);
        assert!(pins.iter().all(|p| first_version(&p.version).is_some()));
    }

    #[test]
    fn malformed_pins_are_refused_with_the_line() {
        let cases = [
            ("package = \"x\"", "before any"),
            ("[a]\npackage = x", "not a string"),
            ("[a]\nsize = \"1\"", "unknown key"),
            ("[a]\npackage = \"p\"", "lacks"),
        ];
        for (text, want) in cases {
            let e = parse_pins(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn offline_launches_keep_the_key_out_of_argv_and_write_each_agents_config() {
        let model = FakeModel::start().unwrap();
        let root = std::env::temp_dir().join(format!("ao-agents-test-{}", std::process::id()));
        let cases: &[(&str, &[&str])] = &[
            ("claude", &[".claude.json"]),
            ("codex", &[".codex/config.toml"]),
            ("gemini", &[".gemini/settings.json"]),
            ("pi", &[".pi/agent/models.json", ".pi/agent/settings.json"]),
            ("aider", &[".gitconfig"]),
        ];
        for (agent, files) in cases {
            let home = root.join(agent).join("home");
            let l =
                offline_launch(agent, "1.0.0", &model, &home, &root, &root, Seed::Full).unwrap();
            assert!(
                !l.args.iter().any(|a| a.contains(model.api_key())),
                "{agent}: key in argv {:?}",
                l.args
            );
            assert!(l.env.iter().any(|(k, _)| k == "HOME"), "{agent}");
            for f in *files {
                assert!(home.join(f).is_file(), "{agent}: {f} not written");
            }
            // The fake model's address reaches the agent through its config or its environment.
            let config = std::fs::read_to_string(home.join(files[0])).unwrap();
            let base = model.base_url();
            assert!(
                config.contains(&base) || l.env.iter().any(|(_, v)| v.starts_with(&base)),
                "{agent}: base url in neither config nor env"
            );
        }
        assert!(offline_launch("nope", "1", &model, &root, &root, &root, Seed::Full).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn versions_are_read_from_each_clis_banner() {
        let cases = [
            ("2.1.197 (Claude Code)", Some("2.1.197")),
            ("codex-cli 0.169.0\n", Some("0.169.0")),
            ("aider 0.86.2", Some("0.86.2")),
            ("v20.1", None),
        ];
        for (text, want) in cases {
            assert_eq!(first_version(text).as_deref(), want, "{text:?}");
        }
    }
}
