//! Detection over the real screen model: the chunking property, real recorded CLI screens read
//! through each region kind, and the shell adapter on terminal bytes.

use std::path::PathBuf;

use pty_manager::{
    Adapter, DeclarativeAdapter, DetectionEvent, Screen, ScreenState, SessionStatus, ShellAdapter,
};

use super::detect_support::Driver;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Step {
    Bytes(Vec<u8>),
    Wait(u64),
    Send(&'static str),
}

fn script() -> Vec<Step> {
    use Step::*;
    let mut s = vec![
        Bytes(b"\x1b]0;toy\x07\x1b[1mToy agent v1\x1b[0m\r\n\x1b[2m\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\x1b[0m\r\nloading\xe2\x80\xa6".to_vec()),
        Wait(200),
        Bytes(b"\r\x1b[2K> ".to_vec()),
        Wait(500),
        Send("hello"),
        Bytes(b"hello\r\n".to_vec()),
    ];
    let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];
    for (i, f) in frames.iter().enumerate() {
        s.push(Bytes(
            format!("\r\x1b[2K\x1b[36m{f}\x1b[0m Thinking\u{2026} (esc to interrupt \u{b7} {i}s)")
                .into_bytes(),
        ));
        s.push(Wait(100));
    }
    s.push(Bytes(b"\r\x1b[2KContinue? [y/n] ".to_vec()));
    s.push(Wait(300));
    let mut out = b"y\r\n".to_vec();
    for i in 0..60 {
        out.extend(
            format!(
                "\x1b[3{}mline {i} of the answer \u{e9}\u{2713}\x1b[0m\r\n",
                i % 8
            )
            .into_bytes(),
        );
    }
    s.push(Bytes(out));
    s.push(Wait(100));
    s.push(Bytes(
        b"Worked for 3s\r\n\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80\r\n> ".to_vec(),
    ));
    s.push(Wait(2000));
    s.push(Bytes(
        b"\x1b[2J\x1b[HUpdate available! 1.2 -> 1.3\r\n\xe2\x9d\xaf 1. Update  2. Skip".to_vec(),
    ));
    s.push(Wait(500));
    s.push(Bytes(b"\x1b[2J\x1b[H> ".to_vec()));
    s.push(Wait(500));
    s
}

/// Runs the script, cutting every byte step into chunks of 1..=max_chunk bytes (0 = whole), one
/// detection pass per chunk at the same instant. Returns the final status and the events with
/// wall-clock stamps removed.
fn run(rng: &mut Rng, max_chunk: u64) -> (SessionStatus, Vec<String>, usize) {
    let mut d = Driver::toy();
    let mut screen = Screen::new(120, 40);
    for step in script() {
        match step {
            Step::Bytes(b) => {
                let mut i = 0;
                while i < b.len() {
                    let n = if max_chunk == 0 {
                        b.len()
                    } else {
                        (1 + rng.below(max_chunk)) as usize
                    };
                    let end = (i + n).min(b.len());
                    screen.process(&b[i..end]);
                    i = end;
                    d.snapshot(screen.snapshot());
                }
            }
            Step::Wait(ms) => d.wait(ms),
            Step::Send(t) => {
                screen.mark_turn_start();
                d.send(t);
            }
        }
    }
    let events = d
        .events
        .iter()
        .map(|e| match e {
            DetectionEvent::AutoResponse(r) => {
                let mut r = r.clone();
                r.at_ms = 0;
                format!("{:?}", DetectionEvent::AutoResponse(r))
            }
            e => format!("{e:?}"),
        })
        .collect();
    (d.status(), events, d.writes.len())
}

#[test]
fn the_same_stream_cut_into_random_chunks_ends_in_the_same_state_and_events() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (status, events, writes) = run(&mut rng, 0);
    // The reference run itself is what the script means.
    assert_eq!(status, SessionStatus::Ready);
    assert_eq!(writes, 1, "one answer to `Continue? [y/n]`");
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.split([' ', '(', '{']).next().unwrap())
        .collect();
    assert!(names.contains(&"TaskComplete"), "{names:?}");
    assert!(names.contains(&"SessionReady"));
    assert_eq!(names.iter().filter(|n| **n == "BlockingPrompt").count(), 2);
    for (round, max_chunk) in [1u64, 2, 3, 7, 17, 64, 300]
        .iter()
        .cycle()
        .take(35)
        .enumerate()
    {
        let (s, e, w) = run(&mut rng, *max_chunk);
        assert_eq!(s, status, "round {round}, chunks ≤ {max_chunk}");
        assert_eq!(w, writes, "round {round}, chunks ≤ {max_chunk}");
        assert_eq!(e, events, "round {round}, chunks ≤ {max_chunk}");
    }
}

#[test]
fn turn_output_carries_scrolled_rows_without_the_prompt_box() {
    let mut d = Driver::toy();
    let mut screen = Screen::new(120, 40);
    for step in script() {
        match step {
            Step::Bytes(b) => {
                screen.process(&b);
                d.snapshot(screen.snapshot());
            }
            Step::Wait(ms) => d.wait(ms),
            Step::Send(t) => {
                screen.mark_turn_start();
                d.send(t);
            }
        }
    }
    let out = d
        .events
        .iter()
        .find_map(|e| match e {
            DetectionEvent::TaskComplete { turn_output, .. } => Some(turn_output.clone()),
            _ => None,
        })
        .unwrap();
    assert!(out.contains("line 0 of the answer é✓"), "{out}");
    assert!(out.contains("line 59 of the answer"));
    assert!(
        out.ends_with("Worked for 3s"),
        "prompt box rows dropped: {out:?}"
    );
    assert!(!out.contains('\x1b'));
}

#[test]
fn shell_adapter_on_terminal_bytes_never_ready_on_continuation_prompts() {
    let sh = ShellAdapter::with_shell("/bin/bash");
    for (bytes, want) in [
        (&b"pty> "[..], ScreenState::Ready),
        (b"pty> echo 'a\r\npty+ ", ScreenState::Busy),
        (b"% echo \"a\r\ndquote> ", ScreenState::Busy),
        (b"pty> cat <<EOF\r\nheredoc> ", ScreenState::Busy),
        (b"pty> ls\r\nCargo.toml  src\r\npty> ", ScreenState::Ready),
        (b"pty> sleep 100", ScreenState::Starting),
        (
            b"pty> printf 'pty> \\n'; sleep 5\r\npty> \r\n",
            ScreenState::Starting,
        ),
    ] {
        let mut s = Screen::new(80, 24);
        s.process(bytes);
        assert_eq!(
            sh.explain(&s.snapshot()).state,
            want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn fixtures() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/agents");
    assert!(
        p.join("index.yaml").is_file(),
        "fixtures missing at {}",
        p.display()
    );
    p
}

#[derive(serde::Deserialize)]
struct Index {
    fixtures: Vec<Fixture>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    file: String,
    state: String,
    cols: u16,
    rows: u16,
}

fn replay(file: &str, cols: u16, rows: u16) -> pty_manager::ScreenSnapshot {
    let bytes = std::fs::read(fixtures().join(file)).expect("fixture");
    let mut s = Screen::new(cols, rows);
    s.process(&bytes);
    s.snapshot()
}

/// Machine signals on real recordings: Codex's OSC 7501 and Gemini's window title, read by
/// minimal synthetic manifests (the real manifests live in coding-agent-adapters).
#[test]
fn osc7501_and_title_regions_on_recorded_screens() {
    let codex = DeclarativeAdapter::from_yaml(
        r#"
schema: 1
type: codex-osc
command: codex
rules:
  - { id: c.busy, signal: busy, region: osc(7501), pattern: '^state=working' }
  - { id: c.done, signal: task_complete, region: osc(7501), pattern: '^state=done' }
  - { id: c.idle, signal: ready, region: osc(7501), pattern: '^state=idle' }
  - { id: c.perm, signal: prompt, region: osc(7501), pattern: '^state=blocked:.*kind=permission', type: permission, kind: command_approval }
"#,
    )
    .unwrap();
    let gemini = DeclarativeAdapter::from_yaml(
        r#"
schema: 1
type: gemini-title
command: gemini
rules:
  - { id: g.busy, signal: busy, region: title, pattern: '^✦\s+Working' }
  - { id: g.perm, signal: prompt, region: title, pattern: '^✋\s+Action Required', type: permission, kind: tool_permission }
  - { id: g.ready, signal: ready, region: title, pattern: '^◇\s+Ready' }
"#,
    )
    .unwrap();
    let index: Index =
        serde_yaml::from_str(&std::fs::read_to_string(fixtures().join("index.yaml")).unwrap())
            .unwrap();
    let mut checked = 0;
    for f in &index.fixtures {
        let snap = replay(&f.file, f.cols, f.rows);
        let (adapter, applies): (&dyn Adapter, bool) = if f.file.starts_with("codex/") {
            (
                &codex,
                snap.osc7501.as_deref().is_some_and(|s| s != "state=clear"),
            )
        } else if f.file.starts_with("gemini/") {
            // The title says Ready during login and trust dialogs too; only the states it
            // distinguishes are compared.
            (
                &gemini,
                matches!(f.state.as_str(), "busy" | "ready") || f.file.contains("tool-confirm"),
            )
        } else {
            continue;
        };
        let e = adapter.explain(&snap);
        assert_ne!(e.state, ScreenState::Exited, "a screen never says exited");
        if applies {
            assert_eq!(e.state.as_str(), f.state, "{}: {:?}", f.file, e.matches);
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} fixtures compared");
}

/// Screen rules (bottom rows) on recorded Claude screens.
#[test]
fn bottom_region_rules_on_recorded_claude_screens() {
    let claude = DeclarativeAdapter::from_yaml(
        r#"
schema: 1
type: claude-mini
command: claude
rules:
  - { id: c.trust, signal: prompt, pattern: 'Yes, I trust this folder', type: project_select, kind: trust_folder, response: { keys: [enter] }, safe: true, once: true }
  - { id: c.theme, signal: prompt, region: screen, pattern: 'Choose the text style', type: config, kind: theme, response: { keys: [enter] }, safe: true, once: true }
  - id: c.create
    signal: prompt
    type: permission
    kind: file_create
    category: file_write
    pattern: 'Do you want to (create|make this edit to|proceed)'
    response: { keys: [enter] }
    safe: true
  - { id: c.busy, signal: busy, pattern: 'esc to interrupt' }
  - { id: c.done, signal: task_complete, pattern: '(?m)^✻ \w+ for (\d+m )?\d+s' }
  - { id: c.ready, signal: ready, pattern: '(?m)^❯', region: bottom(6) }
"#,
    )
    .unwrap();
    for (file, want, kind) in [
        (
            "claude/onboarding-trust-folder.raw",
            ScreenState::BlockingPrompt,
            Some("trust_folder"),
        ),
        (
            "claude/onboarding-theme.raw",
            ScreenState::BlockingPrompt,
            Some("theme"),
        ),
        (
            "claude/permission-create-file.raw",
            ScreenState::BlockingPrompt,
            Some("file_create"),
        ),
        ("claude/busy-mustering.raw", ScreenState::Busy, None),
        ("claude/ready.raw", ScreenState::Ready, None),
    ] {
        let e = claude.explain(&replay(file, 120, 40));
        assert_eq!(e.state, want, "{file}: {:?}", e.matches);
        assert_eq!(
            e.prompt.as_ref().and_then(|p| p.kind.as_deref()),
            kind,
            "{file}"
        );
        if let Some(p) = &e.prompt {
            assert_eq!(p.answer, ["enter"]);
        }
    }
}

#[test]
fn replaying_a_fixture_drives_the_machine_to_the_labelled_prompt_and_answers_once() {
    let claude = DeclarativeAdapter::from_yaml(
        r#"
schema: 1
type: claude-mini
command: claude
rules:
  - { id: c.trust, signal: prompt, pattern: 'Yes, I trust this folder', type: project_select, kind: trust_folder, response: { keys: [enter] }, safe: true, once: true }
"#,
    )
    .unwrap();
    let bytes = std::fs::read(fixtures().join("claude/onboarding-trust-folder.raw")).unwrap();
    let mut d = Driver::for_adapter(&claude, |_| {});
    let mut s = Screen::new(120, 40);
    // Feed in 4 KiB reads with 5 ms between them, as a reactor would see them.
    for chunk in bytes.chunks(4096) {
        s.process(chunk);
        d.snapshot(s.snapshot());
        d.wait(5);
    }
    d.wait(3000);
    assert_eq!(d.writes.len(), 1, "{:?}", d.names());
}
