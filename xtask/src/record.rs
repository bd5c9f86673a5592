//! `cargo xtask record --agent NAME --scenario S [--size COLSxROWS] [--out DIR]`: runs a pinned
//! agent CLI offline against the fake model in a PTY and saves the exact bytes it wrote, from
//! start to the moment the scenario names, as `<out>/<agent>/<scenario>-<cols>x<rows>.raw`, with
//! a label entry appended to `<out>/index.yaml` (the format of `../shared/fixtures/agents`).
//!
//! Scenarios: `ready`, `busy`, `permission`, `done`, `again` (a second, text-only turn after
//! `done`), `login`, `trust`, `shell-confirm` (the shell tool's confirmation for a command that
//! changes the checkout) and `shell-question` / `shell-wait` / `shell-answered` (the model runs a
//! shell command that asks y/n and reads a line: just printed, later, and after Tab, `y`, Enter);
//! the `shell-*` ones stop on what the screen shows, not on detection. The recording session answers nothing on its own (empty answer
//! policy), so dialogs stay on screen; only `done` and `again` answer the permission prompt, as a
//! user would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use pty_manager::{PtyManager, SessionEvent, SessionStatus};
use test_support::model::{FakeModel, FakeModelOptions};

use crate::agents::{self, Seed};
use crate::e2e;

/// Largest recording kept whole by the session's raw ring (1 MiB); beyond it the start is lost.
const RAW_RING: usize = 1024 * 1024;

/// One scenario: how the HOME is seeded and the label of the moment recorded.
#[derive(Debug)]
struct Scenario {
    name: &'static str,
    seed: Seed,
    state: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ready",
        seed: Seed::Full,
        state: "ready",
    },
    Scenario {
        name: "busy",
        seed: Seed::Full,
        state: "busy",
    },
    Scenario {
        name: "permission",
        seed: Seed::Full,
        state: "blocking_prompt",
    },
    Scenario {
        name: "done",
        seed: Seed::Full,
        state: "task_complete",
    },
    Scenario {
        name: "again",
        seed: Seed::Full,
        state: "task_complete",
    },
    Scenario {
        name: "login",
        seed: Seed::Nothing,
        state: "login_required",
    },
    Scenario {
        name: "trust",
        seed: Seed::NoTrust,
        state: "blocking_prompt",
    },
    Scenario {
        name: "shell-confirm",
        seed: Seed::Full,
        state: "blocking_prompt",
    },
    Scenario {
        name: "shell-question",
        seed: Seed::Full,
        state: "blocking_prompt",
    },
    Scenario {
        name: "shell-wait",
        seed: Seed::Full,
        state: "blocking_prompt",
    },
    Scenario {
        name: "shell-answered",
        seed: Seed::Full,
        state: "task_complete",
    },
];

/// The task of the `shell-*` scenarios: a command that asks a y/n question and waits for a line.
/// The question mark is written `\077` because a `?` typed into Gemini's composer is taken as
/// its shortcuts key and never reaches the task.
const SHELL_TASK: &str =
    "Run shell command `printf 'Do you want to continue (y/n)\\077 '; read a; echo got:$a`";
/// The task of `shell-confirm`: a command that changes the checkout (Gemini 0.61.0 ran
/// [`SHELL_TASK`]'s `printf`/`read`/`echo` without asking under `--approval-mode default`).
const SHELL_CONFIRM_TASK: &str = "Run shell command `touch made-by-shell.txt`";
/// The question as the command prints it.
const SHELL_QUESTION: &str = "Do you want to continue (y/n)?";

/// Polls the rendered screen until `want` holds (screen text, not detection: these scenarios
/// exist to check detection against what is drawn).
fn wait_screen(
    manager: &PtyManager,
    id: &str,
    timeout: Duration,
    want: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if want(&e2e::screen_text(manager, id)) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the awaited screen did not appear".into())
}

/// The `shell-*` scenarios: the shell tool's confirmation, then (answered with Enter, as a
/// person taking the default would) the command waiting for input, then (answered `y`) the end.
fn shell_steps(
    manager: &PtyManager,
    id: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), String> {
    let task = if name == "shell-confirm" {
        SHELL_CONFIRM_TASK
    } else {
        SHELL_TASK
    };
    manager.send(id, task).map_err(|e| e.to_string())?;
    // Gemini may run the command without asking (it does for this one under `default`).
    wait_screen(manager, id, timeout, |s| {
        s.contains("Allow once")
            || s.contains(SHELL_QUESTION)
            || (name == "shell-confirm" && s.contains("made-by-shell.txt") && s.contains('✓'))
    })?;
    let confirm = e2e::screen_text(manager, id).contains("Allow once");
    if name == "shell-confirm" {
        std::thread::sleep(Duration::from_millis(800));
        return confirm
            .then_some(())
            .ok_or_else(|| "the command ran without a confirmation".to_owned());
    }
    if confirm {
        manager
            .send_keys(id, &["enter"])
            .map_err(|e| e.to_string())?;
    }
    wait_screen(manager, id, timeout, |s| s.contains(SHELL_QUESTION))?;
    std::thread::sleep(Duration::from_millis(1500));
    // `shell-question`: the question just printed, the spinner still up.
    if name == "shell-question" {
        return Ok(());
    }
    // Later Gemini notices the silence and says the shell awaits input.
    wait_screen(manager, id, timeout, |s| s.contains("awaiting input"))?;
    std::thread::sleep(Duration::from_millis(800));
    if name == "shell-wait" {
        return Ok(());
    }
    // "Tab to focus", as the screen says, then the answer.
    manager.send_keys(id, &["tab"]).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    manager.write_raw(id, b"y").map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    manager
        .send_keys(id, &["enter"])
        .map_err(|e| e.to_string())?;
    wait_screen(manager, id, timeout, |s| s.contains("got:y"))?;
    // The closing reply, or whatever the screen settles on.
    let _ = wait_screen(manager, id, Duration::from_secs(20), |s| {
        s.contains(test_support::model::TURN_COMPLETE_MARKER)
    });
    std::thread::sleep(Duration::from_millis(1500));
    Ok(())
}

pub fn run(args: &[String]) -> ExitCode {
    match parse(args).and_then(|(agent, scenario, size, out)| record(&agent, scenario, size, &out))
    {
        Ok(path) => {
            eprintln!("xtask record: wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask record: {e}");
            ExitCode::FAILURE
        }
    }
}

type Parsed = (String, &'static Scenario, (u16, u16), PathBuf);

fn parse(args: &[String]) -> Result<Parsed, String> {
    let (mut agent, mut scenario, mut size) = (None, None, (120u16, 40u16));
    let mut out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/coding-agent-adapters/tests/fixtures/extra");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--agent" => agent = Some(value()?),
            "--scenario" => {
                let v = value()?;
                scenario = Some(SCENARIOS.iter().find(|s| s.name == v).ok_or_else(|| {
                    let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    format!("unknown scenario `{v}` (known: {})", names.join(", "))
                })?);
            }
            "--size" => {
                let v = value()?;
                size = v
                    .split_once('x')
                    .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)))
                    .filter(|(c, r)| *c >= 20 && *r >= 5)
                    .ok_or(format!("--size wants COLSxROWS, got `{v}`"))?;
            }
            "--out" => out = PathBuf::from(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let agent = agent.ok_or("--agent NAME is required")?;
    let scenario = scenario.ok_or("--scenario S is required")?;
    Ok((agent, scenario, size, out))
}

fn record(
    agent: &str,
    scenario: &Scenario,
    (cols, rows): (u16, u16),
    out: &Path,
) -> Result<PathBuf, String> {
    let pins = agents::read_pins()?;
    let pin = pins
        .iter()
        .find(|p| p.name == agent)
        .ok_or(format!("unknown agent `{agent}`"))?;
    let version = agents::installed_version(&pin.command)
        .ok_or(format!("`{} --version` does not run", pin.command))?;
    if version != pin.version {
        return Err(format!("found {agent} {version}, pinned {}", pin.version));
    }
    let world = e2e::World::new(&format!("record-{agent}"))?;
    let result = record_in(pin, scenario, (cols, rows), out, &version, &world);
    let left = e2e::wait_no_processes(&world.home(), Duration::from_secs(15));
    e2e::kill_leftovers(&left);
    let files = world.finish();
    if !left.is_empty() || files > 0 {
        eprintln!(
            "xtask record: warning: {} processes, {files} files were left (killed/removed)",
            left.len()
        );
    }
    result
}

fn record_in(
    pin: &agents::Pin,
    scenario: &Scenario,
    (cols, rows): (u16, u16),
    out: &Path,
    version: &str,
    world: &e2e::World,
) -> Result<PathBuf, String> {
    let agent = pin.name.as_str();
    // A long reply delay keeps the busy state on screen while it is recorded.
    let model = FakeModel::start_with(
        FakeModelOptions::default()
            .escalate_commands(agent == "codex")
            .reply_delay(Duration::from_secs(if scenario.name == "busy" {
                6
            } else {
                1
            })),
    )
    .map_err(|e| e.to_string())?;
    let repo = world.root.join("repo");
    std::fs::create_dir_all(&repo).map_err(|e| e.to_string())?;
    let repo = repo.canonicalize().map_err(|e| e.to_string())?;
    let launch = agents::offline_launch(
        agent,
        version,
        &model,
        &world.home(),
        &world.tmp(),
        &repo,
        scenario.seed,
    )?;
    e2e::git(world, &repo, &["init", "-q", "-b", "main"])?;
    let manager = PtyManager::new().map_err(|e| e.to_string())?;
    let events = manager.events();
    let cfg = e2e::spawn_config(
        agent,
        &launch,
        &repo,
        &coding_agent_adapters::AnswerPolicy::default(),
    )?
    .size(cols, rows);
    let info = manager.spawn(cfg).map_err(|e| format!("spawn: {e}"))?;
    let id = info.id.clone();
    let mut seen = Vec::new();
    let timeout = Duration::from_secs(90);
    let mut prompt = None;
    let reached: Result<(), String> = (|| {
        let ready = |ev: &SessionEvent| matches!(ev, SessionEvent::Ready { .. }).then_some(());
        match scenario.name {
            "login" => e2e::wait_event(&events, &id, timeout, &mut seen, |ev| {
                matches!(ev, SessionEvent::LoginRequired { .. }).then_some(())
            })
            .ok_or("no login_required"),
            "trust" => {
                prompt = e2e::wait_event(&events, &id, timeout, &mut seen, |ev| match ev {
                    SessionEvent::BlockingPrompt { info, .. }
                        if info.prompt.to_lowercase().contains("trust") =>
                    {
                        Some(info.clone())
                    }
                    _ => None,
                });
                prompt.as_ref().map(|_| ()).ok_or("no trust dialog")
            }
            _ => {
                e2e::wait_event(&events, &id, timeout, &mut seen, ready)
                    .ok_or("no session_ready")?;
                if scenario.name == "ready" {
                    return Ok(());
                }
                if scenario.name.starts_with("shell-") {
                    return shell_steps(&manager, &id, scenario.name, timeout);
                }
                manager.send(&id, e2e::TASK).map_err(|e| e.to_string())?;
                match scenario.name {
                    "busy" => e2e::wait_event(&events, &id, timeout, &mut seen, |ev| match ev {
                        SessionEvent::StatusChanged {
                            to: SessionStatus::Busy,
                            ..
                        } => Some(()),
                        _ => None,
                    })
                    // Let the busy indicator draw.
                    .map(|()| std::thread::sleep(Duration::from_millis(1500)))
                    .ok_or("never busy"),
                    "permission" => {
                        prompt = e2e::wait_event(&events, &id, timeout, &mut seen, |ev| match ev {
                            SessionEvent::BlockingPrompt { info, .. } => Some(info.clone()),
                            _ => None,
                        });
                        prompt.as_ref().map(|_| ()).ok_or("no permission prompt")
                    }
                    _ => e2e::wait_event(&events, &id, timeout, &mut seen, |ev| match ev {
                        SessionEvent::BlockingPrompt {
                            info,
                            auto_responded: false,
                            ..
                        } => {
                            let answer = info.suggested_response.clone().unwrap_or_default();
                            let _ = e2e::answer_prompt(&manager, &id, &answer);
                            None
                        }
                        SessionEvent::TaskComplete { .. } => Some(()),
                        _ => None,
                    })
                    .ok_or("no task_complete")
                    .and_then(|()| {
                        if scenario.name != "again" {
                            return Ok(());
                        }
                        // A second, text-only turn under the first one.
                        manager
                            .send(&id, "Say hello")
                            .map_err(|_| "second send failed")?;
                        e2e::wait_event(&events, &id, timeout, &mut seen, |ev| {
                            matches!(ev, SessionEvent::TaskComplete { .. }).then_some(())
                        })
                        .ok_or("no second task_complete")
                    }),
                }
            }
        }
        .map_err(|e| format!("{e} within {timeout:?} (statuses {seen:?})"))
    })();
    // Settle briefly so the recorded moment is a drawn frame, not a half-written one.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The label must be what detection says of the final moment, not of an earlier frame.
    let status = manager.get(&id).map(|i| i.status).ok();
    let want = match scenario.name {
        "login" => SessionStatus::Authenticating,
        "trust" | "permission" => SessionStatus::Blocked,
        "busy" => SessionStatus::Busy,
        _ => SessionStatus::Ready,
    };
    let raw = manager.raw_output(&id).map_err(|e| e.to_string());
    let screen = e2e::screen_text(&manager, &id);
    let _ = manager.stop(&id, Some(Duration::from_secs(8)));
    let _ = e2e::wait_event(&events, &id, Duration::from_secs(16), &mut seen, |ev| {
        matches!(ev, SessionEvent::Stopped { .. }).then_some(())
    });
    manager.shutdown();
    reached.map_err(|e| format!("{e}; screen:\n{screen}"))?;
    // The shell scenarios are recorded to check detection, so what it says does not gate them;
    // their label is reviewed by a person (see the crate's extra recordings README).
    if status != Some(want) && !scenario.name.starts_with("shell-") {
        return Err(format!(
            "the session is {status:?} at the recorded moment, not {want:?}; nothing written; screen:\n{screen}"
        ));
    }
    let raw = raw?;
    if raw.len() >= RAW_RING {
        return Err(format!(
            "{} bytes exceed the session's 1 MiB raw ring; the start is lost",
            raw.len()
        ));
    }
    let rel = format!("{agent}/{}-{cols}x{rows}.raw", scenario.name);
    let path = out.join(&rel);
    std::fs::create_dir_all(path.parent().unwrap_or(out)).map_err(|e| e.to_string())?;
    std::fs::write(&path, &raw).map_err(|e| format!("write {}: {e}", path.display()))?;
    let mut entry = format!(
        "- file: {rel}\n  agent: {agent}\n  version: {version}\n  cols: {cols}\n  rows: {rows}\n  state: {}\n",
        scenario.state
    );
    if let Some(kind) = match scenario.name {
        "shell-confirm" => Some("command_approval\n  answer: [enter]"),
        // A command's own question has no safe default: no answer is labeled.
        "shell-question" | "shell-wait" => Some("other"),
        _ => None,
    } {
        entry.push_str(&format!("  prompt_kind: {kind}\n"));
    } else if let Some(p) = &prompt {
        let kind = p.kind.clone().unwrap_or_else(|| "other".into());
        entry.push_str(&format!("  prompt_kind: {kind}\n"));
        if let Some(keys) = p
            .suggested_response
            .as_deref()
            .and_then(|s| s.strip_prefix("keys:"))
        {
            entry.push_str(&format!("  answer: [{}]\n", keys.replace(',', ", ")));
        } else if let Some(text) = p.suggested_response.as_deref().filter(|s| !s.is_empty()) {
            entry.push_str(&format!(
                "  answer: [{}, enter]\n",
                text.trim().to_lowercase()
            ));
        }
    }
    let first = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    entry.push_str(&format!(
        "  scored: true\n  note: '{} scenario recorded by cargo xtask record; last row: {}'\n",
        scenario.name,
        first.replace('\'', "''")
    ));
    let index = out.join("index.yaml");
    let mut text = std::fs::read_to_string(&index).unwrap_or_else(|_| {
        "# Extra recordings made by `cargo xtask record` (other sizes and variants). Format: see\n# ../../../../../../shared/fixtures/agents/README.md.\nfixtures:\n".into()
    });
    // A re-recording replaces its old entry.
    if let Some(start) = text.find(&format!("- file: {rel}\n")) {
        let end = text[start + 1..]
            .find("\n- file: ")
            .map_or(text.len(), |i| start + 2 + i);
        text.replace_range(start..end, "");
    }
    text.push_str(&entry);
    std::fs::write(&index, text).map_err(|e| format!("write {}: {e}", index.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_name_an_agent_a_known_scenario_and_a_sane_size() {
        let (agent, scenario, size, out) = parse(&args(&[
            "--agent",
            "codex",
            "--scenario",
            "permission",
            "--size",
            "80x24",
            "--out",
            "/x",
        ]))
        .unwrap();
        assert_eq!(
            (agent.as_str(), scenario.name, size),
            ("codex", "permission", (80, 24))
        );
        assert_eq!(scenario.state, "blocking_prompt");
        assert_eq!(out, PathBuf::from("/x"));
        let (_, _, size, _) = parse(&args(&["--agent", "pi", "--scenario", "ready"])).unwrap();
        assert_eq!(size, (120, 40));
        let bad: &[(&[&str], &str)] = &[
            (&["--scenario", "ready"], "--agent"),
            (&["--agent", "pi"], "--scenario"),
            (&["--agent", "pi", "--scenario", "nap"], "unknown scenario"),
            (
                &["--agent", "pi", "--scenario", "ready", "--size", "10x2"],
                "COLSxROWS",
            ),
            (&["--agent"], "needs a value"),
        ];
        for (a, want) in bad {
            let e = parse(&args(a)).unwrap_err();
            assert!(e.contains(want), "{a:?}: {e}");
        }
    }
}
