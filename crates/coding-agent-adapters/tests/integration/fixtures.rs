//! Every scored fixture of `shared/fixtures/agents/index.yaml`, replayed through the screen model
//! and classified with the embedded manifests: `state`, `prompt_kind`, `answer`, `login_url` and
//! `device_code` must be what the label says.
//!
//! The fixtures live beside the repository (`../shared/fixtures/agents`, as CI lays it out);
//! `AGENT_ORCHESTRATOR_FIXTURES` points the same test at another set in the same format (the
//! held-out set). A missing directory fails the test: it must never pass by finding nothing.

use std::path::PathBuf;

use coding_agent_adapters::{AgentType, AnswerPolicy, Registry};
use pty_manager::{Adapter, Screen};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Index {
    fixtures: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    file: String,
    agent: String,
    cols: u16,
    rows: u16,
    state: String,
    #[serde(default)]
    prompt_kind: Option<String>,
    #[serde(default)]
    answer: Option<Vec<String>>,
    #[serde(default)]
    login_url: Option<String>,
    #[serde(default)]
    device_code: Option<String>,
    #[serde(default = "yes")]
    scored: bool,
}

fn yes() -> bool {
    true
}

fn fixtures_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AGENT_ORCHESTRATOR_FIXTURES") {
        return PathBuf::from(d);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/agents")
}

#[test]
fn every_scored_fixture_is_classified_as_labeled() {
    check_index(&fixtures_dir());
}

/// The recorder's own recordings at other sizes (80x24, 100x30, 160x48, 200x50; `cargo xtask
/// record`), kept in this crate. The recorder writes what detection saw; every entry marked
/// `labeled_by: person` was relabeled from its rendered screen by a person who did not look at the
/// classification first, so those entries are an independent check across sizes and variants.
#[test]
fn recordings_at_other_sizes_still_classify_as_recorded() {
    check_index(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extra"));
}

/// The same recordings with the window title and the OSC 7501 state removed: what the screen
/// text alone says. A terminal that drops titles (or a multiplexer that keeps its own) must not
/// turn a visible spinner, dialog or finished turn into something else.
#[test]
fn recordings_read_the_same_from_the_screen_text_alone() {
    for dir in [
        fixtures_dir(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extra"),
    ] {
        check_index_with(&dir, true);
    }
}

fn check_index(dir: &std::path::Path) {
    check_index_with(dir, false);
}

fn check_index_with(dir: &std::path::Path, screen_only: bool) {
    let index_path = dir.join("index.yaml");
    let text = std::fs::read_to_string(&index_path).unwrap_or_else(|e| {
        panic!(
            "fixture index {} is missing ({e}); the agent fixtures must sit beside the repository \
             (../shared/fixtures/agents) or be named by AGENT_ORCHESTRATOR_FIXTURES",
            index_path.display()
        )
    });
    let index: Index = serde_yaml::from_str(&text).expect("index.yaml parses");
    let registry = Registry::builtin().expect("embedded manifests load");
    let policy = AnswerPolicy::default();
    let mut failures = Vec::new();
    let mut scored = 0;
    for f in index.fixtures.iter().filter(|f| f.scored) {
        scored += 1;
        let agent: AgentType = f.agent.parse().expect("known agent");
        let adapter = registry
            .get(agent)
            .adapter(&policy)
            .expect("adapter builds");
        let bytes = std::fs::read(dir.join(&f.file))
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", f.file));
        let mut screen = Screen::new(f.cols, f.rows);
        screen.process(&bytes);
        let mut snap = screen.snapshot();
        if screen_only {
            snap.title.clear();
            snap.osc7501 = None;
        }
        let e = adapter.explain(&snap);
        let mut wrong = Vec::new();
        if e.state.as_str() != f.state {
            wrong.push(format!("state {} (want {})", e.state.as_str(), f.state));
        }
        let prompt = e.prompt.as_ref();
        if f.prompt_kind.is_some() && prompt.and_then(|p| p.kind.as_ref()) != f.prompt_kind.as_ref()
        {
            wrong.push(format!(
                "prompt_kind {:?} (want {:?})",
                prompt.and_then(|p| p.kind.clone()),
                f.prompt_kind
            ));
        }
        if let Some(want) = &f.answer {
            // The recorder writes a typed answer as `text:y`; fixtures name keys (`y`).
            let want: Vec<String> = want
                .iter()
                .map(|k| k.strip_prefix("text:").unwrap_or(k).to_owned())
                .collect();
            let want = &want;
            let mut got = prompt.map(|p| p.answer.clone()).unwrap_or_default();
            // An empty text answer (Enter after the agent's Enter delay) presses Enter.
            if got == ["", "enter"] {
                got = vec!["enter".to_owned()];
            }
            if &got != want {
                wrong.push(format!("answer {got:?} (want {want:?})"));
            }
        }
        let login = e.login.as_ref();
        if f.login_url.is_some() && login.and_then(|l| l.url.as_ref()) != f.login_url.as_ref() {
            wrong.push(format!(
                "login_url {:?} (want {:?})",
                login.and_then(|l| l.url.clone()),
                f.login_url
            ));
        }
        if f.device_code.is_some()
            && login.and_then(|l| l.device_code.as_ref()) != f.device_code.as_ref()
        {
            wrong.push(format!(
                "device_code {:?} (want {:?})",
                login.and_then(|l| l.device_code.clone()),
                f.device_code
            ));
        }
        if !wrong.is_empty() {
            let ids: Vec<&str> = e.matches.iter().map(|m| m.id.as_str()).collect();
            failures.push(format!(
                "{}: {} — matches {ids:?}",
                f.file,
                wrong.join(", ")
            ));
        }
    }
    assert!(scored > 0, "no scored fixture in {}", index_path.display());
    assert!(
        failures.is_empty(),
        "{} of {scored} scored fixtures misclassified:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{scored}/{scored} scored fixtures classified as labeled");
}

#[test]
fn turn_output_keeps_the_reply_and_drops_the_composer() {
    let dir = fixtures_dir();
    let registry = Registry::builtin().unwrap();
    for (agent, file, composer) in [
        (AgentType::Claude, "claude/done-text.raw", "? for shortcuts"),
        (
            AgentType::Codex,
            "codex/done-text.raw",
            "Ask Codex to do anything",
        ),
        (
            AgentType::Gemini,
            "gemini/done-text.raw",
            "Type your message",
        ),
        (AgentType::Pi, "pi/done-text.raw", "(auto)"),
        (AgentType::Aider, "aider/fake-done-text.raw", "────"),
    ] {
        let bytes = std::fs::read(dir.join(file))
            .unwrap_or_else(|e| panic!("cannot read fixture {file}: {e}"));
        let mut screen = Screen::new(120, 40);
        screen.process(&bytes);
        let adapter = registry
            .get(agent)
            .adapter(&AnswerPolicy::default())
            .unwrap();
        let out = adapter.detector().turn_output(&screen.snapshot());
        assert!(out.contains("Hello from the fake model"), "{file}:\n{out}");
        assert!(!out.contains(composer), "{file} kept {composer:?}:\n{out}");
    }
}
