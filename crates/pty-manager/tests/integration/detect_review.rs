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
