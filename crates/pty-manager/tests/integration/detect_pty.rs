//! Detection inside the manager, on real PTYs: readiness, turn end, auto-responses written into
//! the child, unsafe prompts never answered.

use std::sync::Arc;
use std::time::Duration;

use pty_manager::{
    DeclarativeAdapter, DetectionOptions, PtyManager, QueueReceiver, RuleSpec, SessionEvent,
    SessionInfo, SessionStatus, ShellAdapter, Signal, SpawnConfig,
};

use super::core_support::{wait_event, wait_screen, wait_stopped, wait_until};

fn is<'a>(id: &'a str, name: &'a str) -> impl FnMut(&SessionEvent) -> bool + 'a {
    move |e| e.session_id() == id && e.name() == name
}

/// A manager, its event stream (subscribed before the spawn) and a session of the adapter that
/// `yaml` declares.
fn spawn_declared(yaml: &str) -> (PtyManager, QueueReceiver<SessionEvent>, SessionInfo) {
    let adapter = Arc::new(DeclarativeAdapter::from_yaml(yaml).unwrap());
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let s = mgr.spawn(SpawnConfig::with_adapter(adapter)).unwrap();
    (mgr, rx, s)
}

#[test]
fn shell_session_ready_then_a_turn_completes_with_its_output() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let sh = Arc::new(ShellAdapter::with_shell("/bin/bash"));
    let s = mgr
        .spawn(SpawnConfig::with_adapter(sh).id("sh-ready"))
        .unwrap();
    wait_event(&rx, is(&s.id, "session_ready"));
    assert_eq!(mgr.get(&s.id).unwrap().status, SessionStatus::Ready);
    mgr.send(&s.id, "echo detect-$((6*7))").unwrap();
    let ev = wait_event(&rx, is(&s.id, "task_complete"));
    let SessionEvent::TaskComplete {
        turn, turn_output, ..
    } = ev
    else {
        unreachable!()
    };
    assert_eq!(turn, 1);
    assert!(turn_output.contains("detect-42"), "{turn_output:?}");
    assert_eq!(mgr.get(&s.id).unwrap().status, SessionStatus::Ready);
    // A continuation prompt keeps the session busy.
    mgr.send(&s.id, "echo 'open quote").unwrap();
    wait_screen(&mgr, &s.id, "pty+");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mgr.get(&s.id).unwrap().status, SessionStatus::Busy);
    // Words on screen never stop a session; only the process does.
    mgr.send_keys(&s.id, &["ctrl+c"]).unwrap();
    mgr.send(&s.id, "echo exit Goodbye").unwrap();
    wait_event(&rx, is(&s.id, "task_complete"));
    assert!(mgr.get(&s.id).unwrap().status.is_live());
    mgr.send(&s.id, "exit 3").unwrap();
    wait_stopped(&rx, &s.id);
}

fn questioner(safe: bool) -> Arc<DeclarativeAdapter> {
    let yaml = format!(
        r#"
schema: 1
type: questioner
command: /bin/sh
args: ['-c', 'printf "Continue? [y/n] "; read a; echo "answer=$a"; printf "READY> "; read b; echo "got=$b"; printf "READY> "; sleep 60']
input_style: text
ready_settle_ms: 100
task_complete_settle_ms: 300
rules:
  - {{ id: q.ready, signal: ready, region: cursor_row, pattern: '^READY>$' }}
  - {{ id: q.continue, signal: prompt, type: config, region: cursor_row, pattern: 'Continue\? \[y/n\]', response: {{ text: "y" }}, safe: {safe} }}
"#
    );
    Arc::new(DeclarativeAdapter::from_yaml(&yaml).unwrap())
}

#[test]
fn a_safe_rule_answers_in_the_child_and_is_audited() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let s = mgr
        .spawn(SpawnConfig::with_adapter(questioner(true)).id("q-safe"))
        .unwrap();
    let ev = wait_event(&rx, is(&s.id, "auto_response"));
    let SessionEvent::AutoResponse { record, .. } = ev else {
        unreachable!()
    };
    assert_eq!(record.rule_id, "q.continue");
    assert_eq!(record.session_id, "q-safe");
    assert_eq!(record.sent, "text:y");
    wait_screen(&mgr, &s.id, "answer=y");
    wait_event(&rx, is(&s.id, "session_ready"));
    // The next turn: a send, the child echoes it, the turn completes.
    mgr.send(&s.id, "hello").unwrap();
    let ev = wait_event(&rx, is(&s.id, "task_complete"));
    let SessionEvent::TaskComplete { turn_output, .. } = ev else {
        unreachable!()
    };
    assert!(turn_output.contains("got=hello"), "{turn_output:?}");
    mgr.kill(&s.id).unwrap();
}

/// A prompt printed right after a long flood of coloured lines: the screen defers the flood
/// (`Screen::feed`), detection reads the visible rows through a view and answers, and once the
/// program is quiet the screen has caught up with every row, scrolled ones included.
#[test]
fn a_prompt_after_a_flood_is_answered_and_the_screen_catches_up() {
    let yaml = r#"
schema: 1
type: flooder
command: /usr/bin/python3
args: ['-c', 'import sys,os; os.write(1, b"".join(b"\x1b[32mline %05d\x1b[0m some text\n" % i for i in range(6000))); os.write(1, b"Continue? [y/n] "); a = sys.stdin.readline().strip(); os.write(1, ("answer=" + a + "\nREADY> ").encode()); sys.stdin.readline()']
input_style: text
ready_settle_ms: 100
rules:
  - { id: f.ready, signal: ready, region: cursor_row, pattern: '^READY>$' }
  - { id: f.continue, signal: prompt, type: config, region: cursor_row, pattern: 'Continue\? \[y/n\]', response: { text: "y" }, safe: true }
"#;
    let (mgr, rx, s) = spawn_declared(yaml);
    let ev = wait_event(&rx, is(&s.id, "auto_response"));
    let SessionEvent::AutoResponse { record, .. } = ev else {
        unreachable!()
    };
    assert_eq!(record.rule_id, "f.continue");
    let text = wait_screen(&mgr, &s.id, "answer=y");
    let snap = mgr.snapshot(&s.id).unwrap();
    // 40 rows: the last 37 flood lines, the answered prompt, the answer, READY>.
    let want: Vec<String> = (5963..6000)
        .map(|i| format!("line {i:05} some text"))
        .collect();
    assert_eq!(snap.lines[..37], want[..], "{text}");
    assert!(snap.lines[37].starts_with("Continue? [y/n]"), "{text}");
    assert_eq!(snap.lines[38], "answer=y");
    assert_eq!(snap.lines[39], "READY>");
    // The kept scrollback (1000 rows) ends with the line before the visible ones.
    assert_eq!(snap.scrolled.len(), 1000);
    assert_eq!(snap.scrolled[999], "line 05962 some text");
    assert_eq!(snap.scrolled[0], "line 04963 some text");
    mgr.kill(&s.id).unwrap();
}

#[test]
fn an_unsafe_rule_never_writes_and_the_session_is_blocked() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let s = mgr
        .spawn(SpawnConfig::with_adapter(questioner(false)).id("q-unsafe"))
        .unwrap();
    let ev = wait_event(&rx, is(&s.id, "blocking_prompt"));
    let SessionEvent::BlockingPrompt {
        info,
        auto_responded,
        ..
    } = ev
    else {
        unreachable!()
    };
    assert!(!auto_responded);
    assert_eq!(info.suggested_response.as_deref(), Some("text:y"));
    wait_until("blocked", || {
        mgr.get(&s.id).unwrap().status == SessionStatus::Blocked
    });
    assert!(mgr.get(&s.id).unwrap().prompt.is_some());
    // Give a wrong answer a generous chance to appear: none does.
    std::thread::sleep(Duration::from_millis(500));
    let raw = String::from_utf8_lossy(&mgr.raw_output(&s.id).unwrap()).into_owned();
    assert!(!raw.contains("answer="), "{raw:?}");
    // A person answers: the prompt leaves the screen and the session goes on.
    mgr.write_raw(&s.id, b"n\r").unwrap();
    wait_screen(&mgr, &s.id, "answer=n");
    wait_event(&rx, is(&s.id, "session_ready"));
    mgr.kill(&s.id).unwrap();
}

#[test]
fn session_rules_answer_before_adapter_rules_and_bad_ones_fail_spawn() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let mut options = DetectionOptions::default();
    options.rules.push(
        RuleSpec::new("mine.continue", Signal::Prompt, r"Continue\?")
            .answer_text("yes-from-session"),
    );
    let s = mgr
        .spawn(
            SpawnConfig::with_adapter(questioner(false))
                .id("q-session")
                .detection(options),
        )
        .unwrap();
    let ev = wait_event(&rx, is(&s.id, "auto_response"));
    let SessionEvent::AutoResponse { record, .. } = ev else {
        unreachable!()
    };
    assert_eq!(record.rule_id, "mine.continue");
    wait_screen(&mgr, &s.id, "answer=yes-from-session");
    mgr.kill(&s.id).unwrap();
    let mut bad = DetectionOptions::default();
    bad.rules.push(RuleSpec::new("bad", Signal::Prompt, "("));
    assert!(
        mgr.spawn(SpawnConfig::with_adapter(questioner(true)).detection(bad))
            .is_err()
    );
}

#[test]
fn without_an_adapter_nothing_is_detected_or_answered() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr
        .spawn(
            SpawnConfig::new("/bin/sh")
                .args(["-c", "printf 'Continue? [y/n] '; read a; echo answer=$a"]),
        )
        .unwrap();
    wait_screen(&mgr, &s.id, "Continue?");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mgr.get(&s.id).unwrap().status, SessionStatus::Starting);
    assert!(!String::from_utf8_lossy(&mgr.raw_output(&s.id).unwrap()).contains("answer="));
    mgr.kill(&s.id).unwrap();
}

#[test]
fn runtime_rules_audit_and_hooks_through_the_manager() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let sh = Arc::new(ShellAdapter::with_shell("/bin/bash"));
    let s = mgr
        .spawn(SpawnConfig::with_adapter(sh).id("sh-rules"))
        .unwrap();
    wait_event(&rx, is(&s.id, "session_ready"));
    mgr.add_rule(
        &s.id,
        // On the cursor row and anchored: the echoed command line also says "your name?".
        RuleSpec::new("mine.name", Signal::Prompt, r"^your name\?$")
            .region(pty_manager::Region::CursorRow)
            .answer_text("pty"),
    )
    .unwrap();
    assert_eq!(mgr.rules(&s.id).unwrap().len(), 1);
    assert!(
        mgr.add_rule(&s.id, RuleSpec::new("bad", Signal::Prompt, "("))
            .is_err()
    );
    mgr.send(&s.id, "read -p 'your name? ' n; echo hello-$n")
        .unwrap();
    wait_screen(&mgr, &s.id, "hello-pty");
    let audit = mgr.audit(&s.id).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].rule_id, "mine.name");
    assert_eq!(audit[0].session_id, s.id);
    assert!(mgr.remove_rule(&s.id, "mine.name").unwrap());
    assert!(!mgr.remove_rule(&s.id, "mine.name").unwrap());
    mgr.clear_rules(&s.id).unwrap();
    wait_event(&rx, is(&s.id, "task_complete"));
    // A turn-end hook ends a turn even while the screen says nothing.
    mgr.send(&s.id, "sleep 30").unwrap();
    mgr.hook(&s.id, pty_manager::HookEvent::TurnStarted)
        .unwrap();
    mgr.hook(&s.id, pty_manager::HookEvent::TurnEnded { error: None })
        .unwrap();
    let ev = wait_event(&rx, is(&s.id, "task_complete"));
    let SessionEvent::TaskComplete { source, .. } = ev else {
        unreachable!()
    };
    assert_eq!(source, pty_manager::CompletionSource::Hook);
    assert!(matches!(
        mgr.add_rule("nope", RuleSpec::new("x", Signal::Prompt, "x")),
        Err(pty_manager::Error::SessionNotFound(_))
    ));
    mgr.kill(&s.id).unwrap();
}

#[test]
fn a_foreground_tool_keeps_the_stall_timer_silent() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let sh = Arc::new(ShellAdapter::with_shell("/bin/bash"));
    let options = DetectionOptions {
        stall: pty_manager::StallConfig {
            timeout_ms: 200,
            ..pty_manager::StallConfig::on()
        },
        ..Default::default()
    };
    let s = mgr
        .spawn(SpawnConfig::with_adapter(sh).id("sh-fg").detection(options))
        .unwrap();
    wait_event(&rx, is(&s.id, "session_ready"));
    // `sleep` runs in its own foreground process group: a running tool, not a stall.
    mgr.send(&s.id, "sleep 3; echo slept").unwrap();
    let ev = wait_event(&rx, |e| {
        e.session_id() == s.id && matches!(e.name(), "stall_detected" | "task_complete")
    });
    assert_eq!(
        ev.name(),
        "task_complete",
        "stalled while a tool ran: {ev:?}"
    );
    mgr.kill(&s.id).unwrap();
}

struct Finished;

impl pty_manager::StallClassifier for Finished {
    fn classify(&self, ctx: &pty_manager::StallContext) -> Option<pty_manager::Classification> {
        assert!(!ctx.session_id.is_empty());
        Some(pty_manager::Classification::TaskComplete)
    }
}

#[test]
fn a_stall_asks_the_classifier_and_its_answer_completes_the_turn() {
    let mgr = PtyManager::new().unwrap();
    mgr.set_classifier(Arc::new(Finished)).unwrap();
    let rx = mgr.events();
    let sh = Arc::new(ShellAdapter::with_shell("/bin/bash"));
    let options = DetectionOptions {
        stall: pty_manager::StallConfig {
            timeout_ms: 300,
            ..pty_manager::StallConfig::on()
        },
        ..Default::default()
    };
    let s = mgr
        .spawn(
            SpawnConfig::with_adapter(sh)
                .id("sh-stall")
                .detection(options),
        )
        .unwrap();
    wait_event(&rx, is(&s.id, "session_ready"));
    // `read` is a builtin: the shell itself waits, no tool holds the terminal.
    mgr.send(&s.id, "read -r answer").unwrap();
    let ev = wait_event(&rx, is(&s.id, "stall_detected"));
    let SessionEvent::StallDetected { emission, .. } = ev else {
        unreachable!()
    };
    assert_eq!(emission, 1);
    let ev = wait_event(&rx, is(&s.id, "task_complete"));
    let SessionEvent::TaskComplete { source, .. } = ev else {
        unreachable!()
    };
    assert_eq!(source, pty_manager::CompletionSource::Classifier);
    mgr.kill(&s.id).unwrap();
}

/// The reverse of the test below: a prompt shown while a task's text is typed and its Enter is
/// still waiting is answered after that Enter, so the answer does not join the task's line.
#[test]
fn an_answer_inside_a_tasks_enter_delay_waits_for_that_enter() {
    // The program reads bytes as they come (no line editing, set before its first prompt so no
    // input is flushed), shows the prompt as soon as the task's first byte arrives, and prints
    // the two lines it got (CR or LF, whichever the terminal settings deliver).
    let yaml = r#"
schema: 1
type: tui-typing
command: /usr/bin/python3
args: ['-c', "import os,tty,termios,time\ntty.setcbreak(0, termios.TCSANOW)\nos.write(1, b'ready> ')\ngot = os.read(0, 1)\nos.write(1, b'\\r\\nContinue? [y/n] ')\nwhile got.replace(b'\\r', b'\\n').count(b'\\n') < 2: got += os.read(0, 64)\ngot = got.replace(b'\\r', b'\\n')\nos.write(1, b'\\r\\ngot=' + repr(got).encode() + b'\\r\\n')\ntime.sleep(60)"]
input_style: tui
min_enter_delay_ms: 1500
ready_settle_ms: 100
rules:
  - { id: t.ready, signal: ready, region: cursor_row, pattern: '^ready>$' }
  - { id: t.continue, signal: prompt, type: config, region: cursor_row, pattern: 'Continue\? \[y/n\]', response: { text: "y" }, safe: true }
"#;
    let (mgr, rx, s) = spawn_declared(yaml);
    wait_event(&rx, is(&s.id, "session_ready"));
    mgr.send(&s.id, "write the tests").unwrap();
    wait_event(&rx, is(&s.id, "auto_response"));
    let text = wait_screen(&mgr, &s.id, "got=");
    assert!(
        text.contains(r"got=b'write the tests\ny\n'"),
        "the task's line, then the answer's: {text}"
    );
    mgr.kill(&s.id).unwrap();
}

/// A TUI's automatic answer waits its Enter delay; a task sent inside that delay is typed after
/// the answer's Enter, not between the answer and its Enter (which merged them into one input).
#[test]
fn a_send_inside_an_answers_enter_delay_waits_for_that_enter() {
    let yaml = r#"
schema: 1
type: tui-questioner
command: /bin/sh
args: ['-c', 'printf "Continue? [y/n] "; read a; echo "answer=$a"; read b; echo "task=$b"; sleep 60']
input_style: tui
min_enter_delay_ms: 1500
rules:
  - { id: t.continue, signal: prompt, type: config, region: cursor_row, pattern: 'Continue\? \[y/n\]', response: { text: "y" }, safe: true }
"#;
    let (mgr, rx, s) = spawn_declared(yaml);
    wait_event(&rx, is(&s.id, "auto_response"));
    // The answer is typed; its Enter follows 1.5 s later.
    wait_screen(&mgr, &s.id, "[y/n] y");
    assert!(
        !mgr.snapshot(&s.id)
            .unwrap()
            .lines
            .join("\n")
            .contains("answer=")
    );
    mgr.send(&s.id, "write the tests").unwrap();
    let text = wait_screen(&mgr, &s.id, "task=");
    assert!(text.contains("answer=y\n"), "{text}");
    assert!(text.contains("task=write the tests"), "{text}");
    mgr.kill(&s.id).unwrap();
}
