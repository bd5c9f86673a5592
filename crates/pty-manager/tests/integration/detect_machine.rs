//! The session state machine against BEHAVIOR.md §1.3 / §2.1 / §4 / §5, with a fake clock.

use pty_manager::{
    Classification, DetectionEvent, HookEvent, Response, RuleSpec, SessionStatus, Signal,
    StallConfig,
};

use super::detect_support::{Driver, READY};

use SessionStatus::*;

#[test]
fn t2_t4_start_then_ready_after_settle_on_an_unchanged_screen() {
    let mut d = Driver::toy();
    assert_eq!(d.transitions(), ["pending>starting"]);
    d.screen("Toy agent v1\nloading…");
    d.wait(1000);
    assert_eq!(d.status(), Starting, "no ready signal, no ready");
    d.screen(READY);
    d.wait(200);
    // A real change re-arms the settle.
    d.screen("Toy agent v1\ntip: try /help\n────────\n> ");
    d.wait(200);
    assert_eq!(d.status(), Starting, "settle re-armed by the change");
    d.wait(100);
    assert_eq!(d.status(), Ready);
    assert_eq!(d.count("session_ready"), 1);
    // Cancelled if the signal goes before the settle ends.
    let mut d = Driver::toy();
    d.screen(READY);
    d.wait(100);
    d.screen("Toy agent v1\nloading plugins…");
    d.wait(1000);
    assert_eq!(d.status(), Starting);
}

#[test]
fn t5_login_with_url_and_device_code_then_ready() {
    let mut d = Driver::toy();
    d.screen(
        "Toy agent v1\nSign in with a device code:\n  open https://login.example/device\n  and enter the code WXYZ-1234\n",
    );
    assert_eq!(d.status(), Authenticating);
    assert_eq!(
        d.names(),
        ["session_started", "auth_required", "login_required"]
    );
    let auth = d
        .events
        .iter()
        .find_map(|e| match e {
            DetectionEvent::AuthRequired {
                url,
                device_code,
                method,
                prompt_snippet,
                ..
            } => Some((
                url.clone(),
                device_code.clone(),
                *method,
                prompt_snippet.clone(),
            )),
            _ => None,
        })
        .unwrap();
    assert_eq!(auth.0.as_deref(), Some("https://login.example/device"));
    assert_eq!(auth.1.as_deref(), Some("WXYZ-1234"));
    assert_eq!(auth.2, pty_manager::LoginMethod::DeviceCode);
    assert!(auth.3.ends_with("enter the code WXYZ-1234"), "{}", auth.3);
    // Same screen again: no second event.
    d.screen(
        "Toy agent v1\nSign in with a device code:\n  open https://login.example/device\n  and enter the code WXYZ-1234\n",
    );
    assert_eq!(d.count("auth_required"), 1);
    // Logged in: ready after the settle.
    d.screen(READY);
    d.wait(400);
    assert_eq!(d.status(), Ready);
    assert_eq!(
        d.transitions(),
        [
            "pending>starting",
            "starting>authenticating",
            "authenticating>ready"
        ]
    );
}

#[test]
fn t6_safe_prompt_is_answered_status_unchanged_with_audit() {
    let mut d = Driver::toy();
    d.screen("Quick check\nTrust this folder?\n❯ 1. Yes  2. No");
    assert_eq!(d.status(), Starting);
    assert_eq!(
        d.writes,
        [(
            "toy.trust".to_string(),
            Response::Keys(vec!["enter".into()])
        )]
    );
    assert_eq!(
        d.names(),
        ["session_started", "blocking_prompt(auto)", "auto_response"]
    );
    let rec = d.m.audit().next().unwrap().clone();
    assert_eq!(rec.rule_id, "toy.trust");
    assert_eq!(rec.sent, "keys:enter");
    assert_eq!(rec.prompt_excerpt, "Trust this folder?");
    let info = d
        .events
        .iter()
        .find_map(|e| match e {
            DetectionEvent::BlockingPrompt { info, .. } => Some(info.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(info.kind.as_deref(), Some("trust_folder"));
    assert_eq!(info.rule_id.as_deref(), Some("toy.trust"));
    // The dialog goes, the prompt comes: ready.
    d.screen(READY);
    d.wait(400);
    assert_eq!(d.status(), Ready);
    assert_eq!(d.writes.len(), 1, "edge-triggered: one answer");
}

#[test]
fn t7_t8_unsafe_prompt_blocks_never_writes_and_unblocks_when_gone() {
    let mut d = Driver::ready_toy();
    d.screen("Update available! 1.2 -> 1.3\n❯ 1. Update now  2. Skip");
    d.wait(50);
    assert_eq!(d.status(), Blocked);
    assert!(d.writes.is_empty(), "safe: false never writes");
    let suggested = d
        .events
        .iter()
        .find_map(|e| match e {
            DetectionEvent::BlockingPrompt {
                info,
                auto_responded,
            } => {
                assert!(!auto_responded);
                Some(info.suggested_response.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(suggested.as_deref(), Some("keys:down,enter"));
    // Still shown: reported once, not again.
    for _ in 0..5 {
        d.wait(500);
        d.screen("Update available! 1.2 -> 1.3\n❯ 1. Update now  2. Skip");
    }
    assert_eq!(d.count("blocking_prompt"), 1);
    assert!(d.writes.is_empty());
    d.screen(READY);
    // Gone for a debounce (a redraw may blank it for a pass), then unblocked.
    assert_eq!(d.status(), Blocked);
    d.wait(300);
    assert_eq!(d.status(), Ready, "back to the interrupted status");
    assert_eq!(d.transitions(), ["ready>blocked", "blocked>ready"]);
}

#[test]
fn t8_a_task_sent_while_blocked_stays_blocked_until_the_prompt_leaves_then_busy() {
    let mut d = Driver::ready_toy();
    d.screen("Update available!\n❯ 1. Update now  2. Skip");
    d.wait(50);
    assert_eq!(d.status(), Blocked);
    d.send("skip it and write the tests");
    // Blocked while the prompt is shown (§1.3 #8): the text may not have dismissed it.
    assert_eq!(d.status(), Blocked);
    d.screen("Update available!\n❯ 1. Update now  2. Skip\nskip it and write the tests");
    d.wait(1000);
    assert_eq!(d.status(), Blocked);
    assert_eq!(d.count("blocking_prompt"), 1);
    d.screen("Toy agent v1\nupdating…");
    d.wait(300);
    assert_eq!(d.status(), Busy);
    assert_eq!(d.transitions(), ["ready>blocked", "blocked>busy"]);
    let mut d = Driver::ready_toy();
    d.screen("Update available!\n❯ 1. Update now  2. Skip");
    d.wait(50);
    d.m.keys_sent(d.now);
    d.screen("Toy agent v1\nskipped");
    d.wait(300);
    assert_eq!(d.status(), Ready);
}

#[test]
fn preset_gate_and_skip_adapter_auto_response() {
    // No preset: a category-gated permission rule reports.
    let mut d = Driver::ready_toy();
    d.screen("Create hello.txt?\n❯ 1. Yes  2. No");
    d.wait(50);
    assert_eq!(d.status(), Blocked);
    assert!(d.writes.is_empty());
    // A preset that approves file_write: answered.
    let mut d = Driver::with(|c| c.policy.approved_categories = vec!["file_write".into()]);
    d.screen("Create hello.txt?\n❯ 1. Yes  2. No");
    assert_eq!(d.writes.len(), 1);
    // skip_adapter_auto_response: adapter rules report, session rules still answer.
    let mut d = Driver::with(|c| c.policy.skip_adapter_auto_response = true);
    d.screen("Trust this folder?\n❯ 1. Yes  2. No");
    d.wait(50);
    assert!(d.writes.is_empty());
    assert_eq!(d.status(), Blocked);
    let mut d = Driver::with(|c| c.policy.skip_adapter_auto_response = true);
    d.m.add_rule(
        RuleSpec::new("mine.trust", Signal::Prompt, r"Trust this folder\?").answer_keys(&["enter"]),
    )
    .unwrap();
    d.screen("Trust this folder?\n❯ 1. Yes  2. No");
    assert_eq!(
        d.writes,
        [(
            "mine.trust".to_string(),
            Response::Keys(vec!["enter".into()])
        )]
    );
    assert_eq!(
        d.m.audit().next().unwrap().source,
        pty_manager::AuditSource::Session
    );
}

#[test]
fn session_rules_come_first_and_runtime_api_works() {
    let mut d = Driver::toy();
    d.m.add_rule(RuleSpec::new("mine.q", Signal::Prompt, r"Continue\?").answer_text("n"))
        .unwrap();
    d.screen("Continue? [y/n]");
    assert_eq!(
        d.writes,
        [("mine.q".to_string(), Response::Text("n".into()))]
    );
    // Replace (same id), remove, set, clear.
    d.m.add_rule(RuleSpec::new("mine.q", Signal::Prompt, r"Other").answer_text("x"))
        .unwrap();
    assert_eq!(d.m.rules().len(), 1);
    assert_eq!(d.m.rules()[0].pattern, "Other");
    assert!(d.m.remove_rule("mine.q"));
    assert!(!d.m.remove_rule("mine.q"));
    d.m.set_rules(vec![
        RuleSpec::new("a", Signal::Prompt, "A"),
        RuleSpec::new("b", Signal::Prompt, "B"),
    ])
    .unwrap();
    assert_eq!(d.m.rules().len(), 2);
    assert!(
        d.m.set_rules(vec![RuleSpec::new("bad", Signal::Prompt, "(")])
            .is_err()
    );
    assert_eq!(d.m.rules().len(), 2, "a failed set changes nothing");
    assert!(
        d.m.add_rule(RuleSpec::new("r", Signal::Ready, "x"))
            .is_err()
    );
    d.m.clear_rules();
    assert!(d.m.rules().is_empty());
}

#[test]
fn once_fires_once_and_removing_the_rule_forgets_it() {
    let mut d = Driver::toy();
    d.screen("Trust this folder?\n❯ 1. Yes  2. No");
    d.screen("Toy agent v1");
    d.wait(1000);
    d.screen("Trust this folder?\n❯ 1. Yes  2. No");
    d.wait(50);
    assert_eq!(d.writes.len(), 1, "once: answered only the first time");
    assert_eq!(d.status(), Blocked, "the second time it is reported");
    // A session `once` rule: removing it forgets the once state.
    let mut d = Driver::toy();
    let mut r = RuleSpec::new("mine.go", Signal::Prompt, r"Go\?").answer_text("y");
    r.once = true;
    d.m.add_rule(r.clone()).unwrap();
    d.screen("Go?");
    d.screen("...");
    d.wait(1000);
    d.m.remove_rule("mine.go");
    d.m.add_rule(r).unwrap();
    d.screen("Go?");
    assert_eq!(d.writes.len(), 2);
}

#[test]
fn answered_prompt_still_shown_after_2s_is_reported_blocked() {
    let mut d = Driver::ready_toy();
    d.screen("Continue? [y/n]");
    assert_eq!(d.writes.len(), 1);
    assert_eq!(d.status(), Ready);
    d.wait(1900);
    assert_eq!(d.status(), Ready);
    d.wait(200);
    assert_eq!(d.status(), Blocked);
    assert_eq!(d.writes.len(), 1, "never answered twice");
    assert_eq!(
        d.names(),
        ["blocking_prompt(auto)", "auto_response", "blocking_prompt"]
    );
}

#[test]
fn a_prompt_inside_the_debounce_is_still_reported() {
    let mut d = Driver::ready_toy();
    d.screen("Update available!\n❯ 1. Update now  2. Skip");
    d.wait(50);
    assert_eq!(d.count("blocking_prompt"), 1);
    d.wait(100);
    // A different prompt 100 ms later, inside the 250 ms debounce.
    d.screen("Create hello.txt?\n❯ 1. Yes  2. No");
    assert_eq!(d.count("blocking_prompt"), 1, "not yet: debounced");
    d.wait(200);
    assert_eq!(
        d.count("blocking_prompt"),
        2,
        "re-checked at the end of the gap and reported"
    );
    // One that left before the gap ended is not reported.
    let mut d = Driver::ready_toy();
    d.screen("Update available!\n❯ 1. Update now  2. Skip");
    d.wait(50);
    d.screen("Create hello.txt?\n❯ 1. Yes  2. No");
    d.wait(50);
    d.screen("Toy agent v1\nworking");
    d.wait(500);
    assert_eq!(d.count("blocking_prompt"), 1);
}

#[test]
fn a_redraw_that_blanks_a_prompt_briefly_does_not_answer_twice() {
    let mut d = Driver::ready_toy();
    d.screen("Continue? [y/n]");
    d.wait(20);
    d.screen("");
    d.wait(20);
    d.screen("Continue? [y/n]");
    d.wait(20);
    assert_eq!(d.writes.len(), 1);
}

#[test]
fn t9_t10_send_busy_then_task_complete_with_turn_output_surviving_redraws() {
    let mut d = Driver::ready_toy();
    d.send("say hello");
    assert_eq!(d.status(), Busy);
    assert_eq!(d.m.turn(), 1);
    d.screen("> say hello\n✶ Thinking… (esc to interrupt · 1s)");
    d.wait(500);
    d.screen("> say hello\nHello there.\nWorked for 3s\n────────\n> ");
    d.wait(1000);
    // Decorative redraws (a timer) do not re-arm the settle.
    d.screen("> say hello\nHello there.\nWorked for 4s\n────────\n> ");
    d.wait(400);
    assert_eq!(d.status(), Busy);
    d.wait(100);
    assert_eq!(d.status(), Ready);
    let (turn, out, source) = d
        .events
        .iter()
        .find_map(|e| match e {
            DetectionEvent::TaskComplete {
                turn,
                turn_output,
                source,
                ..
            } => Some((*turn, turn_output.clone(), *source)),
            _ => None,
        })
        .unwrap();
    assert_eq!(turn, 1);
    assert_eq!(source, pty_manager::CompletionSource::Screen);
    assert_eq!(out, "> say hello\nHello there.\nWorked for 4s");
    // A real change during the settle re-arms it.
    d.clear();
    d.send("again");
    d.screen("> again\nHello there.\nWorked for 1s\n────────\n> ");
    d.wait(1000);
    d.screen("> again\nHello there.\nAnd more.\nWorked for 1s\n────────\n> ");
    d.wait(1000);
    assert_eq!(d.status(), Busy);
    d.wait(600);
    assert_eq!(d.status(), Ready);
}

#[test]
fn send_right_after_ready_does_not_complete_on_the_old_screen() {
    let mut d = Driver::ready_toy();
    d.send("task");
    d.screen(READY);
    d.wait(5000);
    assert_eq!(
        d.status(),
        Busy,
        "the old idle screen is not a finished turn"
    );
}

#[test]
fn console_typing_busy_signal_starts_a_turn() {
    let mut d = Driver::ready_toy();
    d.screen("> typed by a person\n✶ Thinking… (esc to interrupt)");
    assert_eq!(d.status(), Busy);
    assert_eq!(d.m.turn(), 1);
}

#[test]
fn a_stale_busy_marker_does_not_hold_a_finished_session_busy() {
    let mut d = Driver::ready_toy();
    d.send("go");
    // The turn finished but a frozen "esc to interrupt" row stays drawn above the prompt.
    d.screen("> go\n✶ Thinking… (esc to interrupt)\nDone.\nWorked for 2s\n────────\n> ");
    d.wait(2000);
    assert_eq!(d.status(), Busy, "not yet: the marker could still be live");
    d.wait(3000);
    assert_eq!(
        d.status(),
        Ready,
        "a marker frozen for 3 s beside a finished turn is stale"
    );
    // A live marker (its timer moves) keeps the session busy.
    let mut d = Driver::ready_toy();
    d.send("go");
    for s in 0..10 {
        d.screen(&format!(
            "> go\n✶ Thinking… (esc to interrupt · {s}s)\nWorked for 2s\n────────\n> "
        ));
        d.wait(1000);
    }
    assert_eq!(d.status(), Busy);
}

#[test]
fn t11_hooks_decide_turn_end_and_a_stale_hook_falls_back_to_the_screen() {
    let mut d = Driver::ready_toy();
    d.send("go");
    let acts = d.m.hook(
        d.now,
        HookEvent::ToolStarted {
            name: "Write".into(),
        },
    );
    d.absorb(acts);
    assert_eq!(d.m.tool(), Some("Write"));
    d.screen("> go\nWrote file\nWorked for 2s\n────────\n> ");
    d.wait(3000);
    assert_eq!(
        d.status(),
        Busy,
        "hooks lead: the screen alone does not end the turn"
    );
    let acts = d.m.hook(d.now, HookEvent::TurnEnded { error: None });
    d.absorb(acts);
    assert_eq!(d.status(), Ready);
    let src = d.events.iter().find_map(|e| match e {
        DetectionEvent::TaskComplete { source, .. } => Some(*source),
        _ => None,
    });
    assert_eq!(src, Some(pty_manager::CompletionSource::Hook));
    // Next turn the turn-end hook is lost: after the staleness window the screen decides.
    d.clear();
    d.send("again");
    let acts = d.m.hook(d.now, HookEvent::TurnStarted);
    d.absorb(acts);
    d.screen("> again\nok\nWorked for 1s\n────────\n> ");
    d.wait(59_000);
    assert_eq!(d.status(), Busy);
    d.wait(3000);
    assert_eq!(d.status(), Ready);
    // A turn-end hook after stop is dropped.
    let acts = d.m.exited(d.now, Some(0), None);
    d.absorb(acts);
    let acts = d.m.hook(d.now, HookEvent::TurnEnded { error: None });
    assert!(acts.is_empty());
    assert_eq!(d.status(), Stopped);
}

#[test]
fn tool_running_is_reported_when_the_name_changes() {
    let mut d = Driver::ready_toy();
    d.send("go");
    d.screen("Running Bash\nesc to interrupt");
    d.screen("Running Bash\nesc to interrupt\nmore");
    d.screen("Running Edit\nesc to interrupt");
    let tools: Vec<String> = d
        .events
        .iter()
        .filter_map(|e| match e {
            DetectionEvent::ToolRunning { tool_name, .. } => Some(tool_name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tools, ["Bash", "Edit"]);
}

#[test]
fn exit_only_from_the_process() {
    let mut d = Driver::ready_toy();
    d.screen("Goodbye!\nexit\ncommand not found: exit\n> ");
    d.wait(10_000);
    assert!(d.status().is_live());
    let acts = d.m.exited(d.now, None, Some(15));
    d.absorb(acts);
    assert_eq!(d.status(), Stopped);
    let reason = d.events.iter().find_map(|e| match e {
        DetectionEvent::SessionStopped { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("signal SIGTERM"));
    // Nothing revives a stopped session.
    d.screen(READY);
    d.wait(1000);
    assert_eq!(d.status(), Stopped);
    assert!(d.m.send(d.now, "s1", "x").is_err());
}

#[test]
fn t18_t20_stop_and_io_error() {
    let mut d = Driver::ready_toy();
    let acts = d.m.stop_requested(d.now);
    d.absorb(acts);
    assert_eq!(d.status(), Stopping);
    assert!(d.m.send(d.now, "s1", "x").is_err());
    let mut d = Driver::ready_toy();
    let acts = d.m.io_error(d.now, "read failed: EIO");
    d.absorb(acts);
    assert_eq!(d.status(), SessionStatus::Error);
    assert_eq!(d.names(), ["session_error"]);
}

fn stall_on() -> Driver {
    let mut d = Driver::with(|c| c.stall = StallConfig::on());
    d.screen(READY);
    d.wait(400);
    d.clear();
    d
}

#[test]
fn t14_stall_fires_with_backoff_and_a_spinner_alone_never_resets_it() {
    let mut d = stall_on();
    d.send("go");
    d.screen("> go\nthinking hard");
    // Spinner frames in the first column change every 100 ms for 2 minutes.
    let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴'];
    let mut stalls = Vec::new();
    for i in 0..1200u64 {
        d.screen(&format!(
            "> go\nthinking hard\n{} {}s",
            frames[i as usize % 6],
            i / 10
        ));
        d.wait(100);
        for e in d.events.drain(..) {
            if let DetectionEvent::StallDetected {
                emission,
                stalled_for_ms,
                ..
            } = e
            {
                stalls.push((emission, stalled_for_ms));
            }
        }
    }
    // 8 s, then +16 s, +30 s (cap), +30 s, +30 s: five emissions, then silent.
    let at: Vec<u64> = stalls.iter().map(|s| s.1 / 1000).collect();
    assert_eq!(
        stalls.iter().map(|s| s.0).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(at, [8, 24, 54, 84, 114]);
    assert_eq!(d.classify.len(), 5);
    assert!(d.m.stalled());
    // A meaningful change resets the episode.
    d.screen("> go\nthinking hard\nwrote a.txt");
    assert!(!d.m.stalled());
    assert_eq!(d.m.stall_backoff_ms(), 8000);
    d.wait(8000);
    assert_eq!(d.count("stall_detected"), 1);
}

#[test]
fn t14_loading_suppresses_stall_up_to_the_cap_and_usage_limit_is_not_a_stall() {
    let mut d = stall_on();
    d.send("go");
    d.screen("> go\n✶ Thinking… (esc to interrupt)");
    d.wait(299_000);
    assert_eq!(d.count("stall_detected"), 0);
    d.wait(11_000);
    assert_eq!(
        d.count("stall_detected"),
        1,
        "after the 300 s cap a frozen busy screen is a stall"
    );
    let mut d = stall_on();
    d.send("go");
    d.screen("Usage limit reached · continuing automatically at 15:00");
    d.wait(120_000);
    assert_eq!(d.count("stall_detected"), 0);
}

#[test]
fn t12_stall_timer_with_task_complete_on_screen_completes_the_turn() {
    let mut d = stall_on();
    d.send("go");
    let acts = d.m.hook(d.now, HookEvent::TurnStarted);
    d.absorb(acts);
    d.screen("> go\nok\nWorked for 1s\n────────\n> ");
    d.wait(8100);
    assert_eq!(
        d.status(),
        Ready,
        "lost turn-end hook caught by the stall timer"
    );
    assert_eq!(d.count("stall_detected"), 0);
}

fn stalled_busy(auto: bool) -> (Driver, pty_manager::StallContext) {
    let mut d = Driver::with(|c| {
        c.stall = StallConfig::on();
        c.policy.classifier_auto_respond = auto;
    });
    d.screen(READY);
    d.wait(400);
    d.send("go");
    d.screen("> go\nPick a colour (red/blue):");
    d.wait(8000);
    let ctx = d.classify.pop().expect("classifier asked");
    (d, ctx)
}

#[test]
fn classifier_answers_apply_only_to_the_same_turn() {
    let (mut d, ctx) = stalled_busy(true);
    assert_eq!(ctx.turn, 1);
    d.send("next task");
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::TaskComplete));
    assert!(acts.is_empty(), "an answer for an old turn is ignored");
    assert_eq!(d.status(), Busy);
    // Same turn: applied (#13).
    let (mut d, ctx) = stalled_busy(false);
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::TaskComplete));
    d.absorb(acts);
    assert_eq!(d.status(), Ready);
}

#[test]
fn t11_codex_osc_7501_done_ends_the_turn_at_once() {
    let mut d = Driver::ready_toy();
    let osc = |payload: &str| {
        let mut s = pty_manager::ScreenSnapshot::from_text("> go\nworking on it", 120, 40);
        s.osc7501 = Some(payload.to_owned());
        s
    };
    d.send("go");
    d.snapshot(osc("state=working"));
    assert_eq!(d.status(), Busy);
    d.snapshot(osc("state=done"));
    assert_eq!(d.status(), Ready, "no settle wait for the turn-end signal");
    assert!(d.events.iter().any(|e| matches!(
        e,
        pty_manager::DetectionEvent::TaskComplete {
            source: pty_manager::CompletionSource::Hook,
            ..
        }
    )));
    // The same payload still shown in the next turn is not a new signal.
    d.send("next");
    d.clear();
    d.snapshot(osc("state=done"));
    assert_eq!(d.status(), Busy);
    assert_eq!(d.count("task_complete"), 0);
    // Other states never end a turn.
    d.snapshot(osc("state=blocked:x:kind=permission"));
    d.snapshot(osc("state=idle"));
    assert_eq!(d.count("task_complete"), 0);
    // The screen still ends a turn whose `done` was missed (OSC 7501 is no hook lead).
    d.screen(READY);
    d.wait(2000);
    assert_eq!(d.status(), Ready);
    assert_eq!(d.count("task_complete"), 1);
}

#[test]
fn a_classifier_answer_after_the_30s_timeout_is_dropped() {
    // Just inside the timeout: applied.
    let (mut d, ctx) = stalled_busy(false);
    d.wait(29_900);
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::TaskComplete));
    d.absorb(acts);
    assert_eq!(d.status(), Ready);
    assert_eq!(d.m.classifier_timeouts(), 0);
    // Past it (fake clock): the request was given up on, the stall stayed unclassified and the
    // late answer changes nothing.
    let (mut d, ctx) = stalled_busy(false);
    d.wait(30_001);
    assert_eq!(d.m.classifier_timeouts(), 1);
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::TaskComplete));
    assert!(acts.is_empty(), "late answer applied: {acts:?}");
    assert_eq!(d.status(), Busy);
    // The same answer twice counts once.
    let (mut d, ctx) = stalled_busy(false);
    let acts = d.m.classified(d.now, &ctx, None);
    d.absorb(acts);
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::TaskComplete));
    assert!(acts.is_empty());
    assert_eq!(d.status(), Busy);
}

#[test]
fn classifier_suggestions_are_reported_unless_policy_allows_and_screen_unchanged() {
    let waiting = || {
        Some(Classification::WaitingForInput {
            prompt: "Pick a colour".into(),
            suggested_response: Some("red".into()),
        })
    };
    // Default policy: blocked with the suggestion attached (#16), nothing typed.
    let (mut d, ctx) = stalled_busy(false);
    d.clear();
    let acts = d.m.classified(d.now, &ctx, waiting());
    d.absorb(acts);
    assert_eq!(d.status(), Blocked);
    assert!(d.writes.is_empty());
    // A meaningful change ends a classifier block.
    d.screen("> go\nPick a colour (red/blue): red\nok");
    assert_eq!(d.status(), Busy);
    // Policy on, screen unchanged: typed (#15) with an audit record.
    let (mut d, ctx) = stalled_busy(true);
    let acts = d.m.classified(d.now, &ctx, waiting());
    d.absorb(acts);
    assert_eq!(
        d.writes,
        [("classifier".to_string(), Response::Text("red".into()))]
    );
    assert_eq!(d.status(), Busy);
    // Policy on but the screen changed since the request: reported.
    let (mut d, ctx) = stalled_busy(true);
    d.screen("> go\nPick a colour (red/blue):\n(hint: blue)");
    let acts = d.m.classified(d.now, &ctx, waiting());
    d.absorb(acts);
    assert!(d.writes.is_empty());
    assert_eq!(d.status(), Blocked);
}

#[test]
fn classifier_never_types_into_a_shell() {
    let sh = pty_manager::ShellAdapter::with_shell("/bin/bash");
    let mut d = Driver::for_adapter(&sh, |c| {
        c.stall = StallConfig::on();
        c.policy.classifier_auto_respond = true;
    });
    d.screen("pty> ");
    d.wait(200);
    d.send("read x");
    d.screen("pty> read x\n");
    d.wait(8000);
    let ctx = d.classify.pop().unwrap();
    let acts = d.m.classified(
        d.now,
        &ctx,
        Some(Classification::WaitingForInput {
            prompt: "?".into(),
            suggested_response: Some("rm -rf ~".into()),
        }),
    );
    d.absorb(acts);
    assert!(d.writes.is_empty());
    assert_eq!(d.status(), Blocked);
}

#[test]
fn t17_classifier_error_pauses_the_stall_timer_until_a_change() {
    let (mut d, ctx) = stalled_busy(false);
    d.clear();
    let acts =
        d.m.classified(d.now, &ctx, Some(Classification::Error { prompt: None }));
    d.absorb(acts);
    assert_eq!(d.names(), ["session_error"]);
    d.wait(120_000);
    assert_eq!(d.count("stall_detected"), 0);
    d.screen("> go\nsomething new");
    d.wait(8000);
    assert_eq!(d.count("stall_detected"), 1);
}

#[test]
fn synchronized_update_defers_the_pass_at_most_200ms() {
    let mut d = Driver::toy();
    let mut s = pty_manager::ScreenSnapshot::from_text("Trust this folder?", 120, 40);
    s.synchronized_update = true;
    d.snapshot(s.clone());
    assert!(d.writes.is_empty(), "half-drawn frame not read");
    d.wait(250);
    d.snapshot(s);
    assert_eq!(
        d.writes.len(),
        1,
        "read after 200 ms even if the update never closes"
    );
}

#[test]
fn send_during_login_answers_it_and_stays_authenticating() {
    let mut d = Driver::toy();
    d.screen("Sign in with a device code: https://login.example/d\ncode ABCD-1234");
    assert_eq!(d.status(), Authenticating);
    d.send("my-api-key-is-not-logged");
    assert_eq!(d.status(), Authenticating);
    assert_eq!(d.m.turn(), 1);
    d.screen(READY);
    d.wait(400);
    assert_eq!(d.status(), Ready);
}
