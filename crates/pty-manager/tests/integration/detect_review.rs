//! Defects an outside review of the detection engine found, each pinned by the scenario that
//! showed it (state machine, fake clock).

use pty_manager::{
    DetectionEvent, RuleSet, RuleSpec, ScreenSnapshot, ScreenState, Signal, explain,
};

use super::detect_support::{Driver, READY};

/// A secret rule's answer (a password) never leaves in a `blocking_prompt` event (it did as
/// `suggested_response` whenever the rule reported instead of answering), nor in an explanation.
#[test]
fn a_secret_answer_is_in_no_event_and_no_explanation() {
    let mut d = Driver::ready_toy();
    let mut s = RuleSpec::new("sess.pw", Signal::Prompt, "Password:").answer_text("hunter2");
    s.once = true;
    s.secret = true;
    d.m.add_rule(s.clone()).unwrap();
    d.screen("sudo ls\nPassword:");
    d.wait(50);
    d.screen(READY);
    d.wait(3000);
    // `once` is spent: this time the rule reports.
    d.screen("sudo ls\nPassword:");
    d.wait(100);
    let mut reported = 0;
    for e in &d.events {
        let text = format!("{e:?}");
        assert!(!text.contains("hunter2"), "secret in an event: {text}");
        if let DetectionEvent::BlockingPrompt {
            info,
            auto_responded: false,
        } = e
        {
            reported += 1;
            assert_eq!(info.suggested_response, None);
        }
    }
    assert_eq!(reported, 1);
    assert!(
        d.writes.len() == 1,
        "answered once, then reported: {:?}",
        d.writes
    );

    let rules = RuleSet::compile(&[s]).unwrap();
    let e = explain(
        &rules,
        &ScreenSnapshot::from_text("sudo ls\nPassword:", 120, 40),
    );
    assert_eq!(e.state, ScreenState::BlockingPrompt);
    assert!(!format!("{e:?}").contains("hunter2"));
    let answer = e.prompt.expect("the prompt").answer;
    assert_eq!(answer, vec!["<redacted>".to_string(), "enter".to_string()]);
}

/// `u64::MAX` as an "off" timing (settle, stall timeout) waits forever instead of overflowing a
/// deadline on the reactor thread.
#[test]
fn huge_timings_mean_never() {
    use pty_manager::{SessionStatus, StallConfig};
    let mut d = Driver::with(|c| {
        c.ready_settle_ms = u64::MAX;
        c.task_complete_settle_ms = u64::MAX;
        c.stall = StallConfig {
            timeout_ms: u64::MAX,
            max_backoff_ms: u64::MAX,
            loading_cap_ms: u64::MAX,
            ..StallConfig::on()
        };
    });
    d.screen(READY);
    d.wait(60_000);
    assert_eq!(d.status(), SessionStatus::Starting);
    assert!(d.m.next_deadline().is_some());
}

/// Aider's busy scanner (`░█` moving through a field of blanks) is a spinner: ten minutes of it
/// alone is a stall, reported (it reset the stall timer and backoff at every frame).
#[test]
fn aider_scanner_frames_alone_are_a_stall() {
    use pty_manager::{DeclarativeAdapter, StallConfig};
    let aider = DeclarativeAdapter::from_yaml(include_str!(
        "../../../coding-agent-adapters/manifests/aider.yaml"
    ))
    .unwrap();
    let mut d = Driver::for_adapter(&aider, |c| c.stall = StallConfig::on());
    d.send("Say hello");
    let frames = [
        "░█         ",
        " ░█        ",
        "  ░█       ",
        "   ░█      ",
        "    ░█     ",
        "     █░    ",
        "      █░   ",
        "       █░  ",
        "        █░ ",
        "█░         ",
    ];
    for i in 0..6000 {
        d.screen(&format!(
            "Aider v0.86.2\n────\n> Say hello\n\n{}Waiting for openai/fake-model",
            frames[i % frames.len()]
        ));
        d.wait(100);
    }
    assert!(d.count("stall_detected") > 0, "{:?}", d.names());
}

/// A redraw that blanks a reported prompt for one pass (erase, then repaint) leaves the session
/// blocked on it; it went `ready` with the dialog on screen and stayed there.
#[test]
fn a_prompt_blanked_by_a_redraw_keeps_the_session_blocked() {
    use pty_manager::SessionStatus;
    const UPDATE: &str = "Update available!\n❯ 1. Update now  2. Skip";
    let mut d = Driver::ready_toy();
    d.screen(UPDATE);
    d.wait(50);
    assert_eq!(d.status(), SessionStatus::Blocked);
    d.screen("Toy agent v1");
    d.wait(10);
    d.screen(UPDATE);
    d.wait(3000);
    assert_eq!(d.status(), SessionStatus::Blocked, "{:?}", d.transitions());
    assert_eq!(d.transitions(), vec!["ready>blocked"]);
    assert!(d.m.prompt().is_some());
    // Gone for good: back to ready once the debounce has passed, with no further screen.
    d.screen(READY);
    d.wait(1000);
    assert_eq!(d.status(), SessionStatus::Ready, "{:?}", d.transitions());
    assert_eq!(d.count("blocking_prompt"), 1);
}

/// After a turn-end hook, a spinner frame still drawn for a moment does not start a turn nobody
/// sent (hooks decide busy and turn end while they report, BEHAVIOR.md §1.2).
#[test]
fn a_spinner_frame_after_a_turn_end_hook_is_not_a_new_turn() {
    use pty_manager::{HookEvent, SessionStatus, StallConfig};
    let mut d = Driver::with(|c| {
        c.stall = StallConfig {
            timeout_ms: 4000,
            ..StallConfig::on()
        }
    });
    d.screen(READY);
    d.wait(400);
    d.clear();
    d.send("go");
    let a = d.m.hook(d.now, HookEvent::TurnStarted);
    d.absorb(a);
    d.screen("> go\n✶ Thinking… (esc to interrupt · 1s)\n────────\n> ");
    d.wait(1000);
    let a = d.m.hook(d.now, HookEvent::TurnEnded { error: None });
    d.absorb(a);
    assert_eq!(d.status(), SessionStatus::Ready);
    d.screen("> go\n✻ Thinking… (esc to interrupt · 2s)\n────────\n> ");
    d.wait(100);
    d.screen("> go\nHello.\n✻ Worked for 2s\n────────\n> ");
    d.wait(70_000);
    assert_eq!(d.m.turn(), 1, "{:?}", d.transitions());
    assert_eq!(d.transitions(), ["ready>busy", "busy>ready"]);
    assert_eq!(d.count("task_complete"), 1);
}

/// A session rule with an adapter rule's id keeps its own `once` state: adding it does not let the
/// adapter's `once` rule answer a second time.
#[test]
fn session_and_adapter_rules_keep_separate_once_states() {
    let mut d = Driver::ready_toy();
    d.screen("Trust this folder?\n1. Yes");
    d.wait(50);
    assert_eq!(d.writes.len(), 1, "the adapter's once rule answers");
    d.screen(READY);
    d.wait(3000);
    let mut s = RuleSpec::new("toy.trust", Signal::Prompt, "zzz-never").answer_keys(&["enter"]);
    s.once = true;
    d.m.add_rule(s).unwrap();
    d.screen("Trust this folder?\n1. Yes");
    d.wait(50);
    assert_eq!(d.writes.len(), 1, "answered twice: {:?}", d.writes);
}

/// Hooks gone quiet while a screen pass already started the task-complete settle: the stale-hook
/// deadline is dealt with, not left in the past (the reactor spun on it until the settle ended).
#[test]
fn a_stale_hook_deadline_does_not_stay_in_the_past() {
    use pty_manager::HookEvent;
    use std::time::Duration;
    let mut d = Driver::ready_toy();
    d.send("go");
    let a = d.m.hook(d.now, HookEvent::TurnStarted);
    d.absorb(a);
    d.screen("> go\n✶ Thinking… (esc to interrupt · 1s)\n────────\n> ");
    d.wait(1000);
    // 61 s later (hooks stale), a pass over the finished screen comes before the timer tick.
    d.now += Duration::from_secs(61);
    d.screen("> go\nHello.\n✻ Worked for 2s\n────────\n> ");
    let a = d.m.tick(d.now);
    d.absorb(a);
    let next = d.m.next_deadline().expect("the task-complete settle");
    assert!(next > d.now, "a deadline {:?} in the past", d.now - next);
    d.wait(3000);
    assert_eq!(d.count("task_complete"), 1, "{:?}", d.names());
}

/// A prompt recheck that falls due while newer output is unread (here a pass deferred by an open
/// synchronized update) leaves the decision to the pass that reads it: no answer is typed into a
/// dialog that may have gone.
#[test]
fn a_recheck_does_not_answer_from_an_older_screen() {
    use pty_manager::ScreenSnapshot;
    let mut d = Driver::ready_toy();
    d.screen("Continue? [y/n]");
    d.screen(READY);
    d.wait(100);
    // A second prompt inside the 250 ms debounce: re-checked at its end.
    d.screen("Trust this folder?\n1. Yes");
    d.wait(50);
    let answered = d.writes.len();
    // The program moves on, inside an open synchronized update (the pass waits for it).
    let mut snap = ScreenSnapshot::from_text("> some other screen", 120, 40);
    snap.synchronized_update = true;
    d.snapshot(snap);
    d.wait(150);
    assert_eq!(
        d.writes.len(),
        answered,
        "answered from an older screen: {:?}",
        d.writes
    );
    // The update closes: the screen without the dialog is read, nothing more is typed.
    d.screen("> some other screen");
    d.wait(500);
    assert_eq!(d.writes.len(), answered, "{:?}", d.writes);
}
