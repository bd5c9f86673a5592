//! Supervisor tests: plain values, a number for the clock, no sleeps.

use super::*;

fn spec(id: &str) -> TaskSpec {
    TaskSpec {
        session_id: id.into(),
        label: format!("app/{id}"),
        task: "add a parser".into(),
        workdir: PathBuf::from("/ws/one"),
        repo: Some("https://github.com/acme/app".into()),
    }
}

fn blocked(id: &str, prompt: &str, auto: bool) -> Event {
    Event::Blocked {
        session_id: id.into(),
        prompt: prompt.into(),
        auto_responded: auto,
        recent_output: "Do you want to proceed?".into(),
    }
}

fn chats(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Chat(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn has_event(effects: &[Effect], kind: &str) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::Broadcast(v) if v["type"] == kind))
}

fn asks(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::AskModel { .. }))
        .count()
}

#[test]
fn autonomous_blocked_prompt_goes_to_the_model_and_its_answer_is_typed() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    let out = s.on_event(1, blocked("a", "Run npm test?", false));
    assert_eq!(asks(&out), 1);
    let out = s.on_model_answer(
        2,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"tests are safe"}"#.into()),
    );
    assert!(out.contains(&Effect::SendText {
        session_id: "a".into(),
        text: "y".into()
    }));
    let t = s.task("a").unwrap();
    assert_eq!(t.decisions.last().unwrap().decision, "respond");
    assert_eq!(t.last_input_sent_at, Some(2));
}

#[test]
fn decision_table_of_model_answers() {
    // (answer, expected chat prefix, expected stop)
    let table: [(Result<&str, &str>, Option<&str>, bool); 5] = [
        (
            Ok(r#"{"action":"escalate","reasoning":"asks for a password"}"#),
            Some("[app/a] Needs your attention: asks for a password"),
            false,
        ),
        (
            Ok(r#"{"action":"ignore","reasoning":"transient"}"#),
            None,
            false,
        ),
        (
            Ok("I would say yes"),
            Some("[app/a] Needs your attention: the supervisor could not decide"),
            false,
        ),
        (
            Ok(r#"{"action":"respond","reasoning":"no text"}"#),
            Some("[app/a] Needs your attention"),
            false,
        ),
        (
            Err("model call failed"),
            Some("[app/a] Needs your attention"),
            false,
        ),
    ];
    for (answer, chat, stop) in table {
        let mut s = Supervisor::new(Level::Autonomous);
        s.register(0, spec("a"));
        s.on_event(1, blocked("a", "Allow?", false));
        let out = s.on_model_answer(2, "a", answer.map(str::to_string).map_err(str::to_string));
        let c = chats(&out);
        match chat {
            Some(prefix) => assert!(c.iter().any(|x| x.starts_with(prefix)), "{answer:?}: {c:?}"),
            None => assert!(c.is_empty(), "{answer:?}: {c:?}"),
        }
        assert_eq!(out.iter().any(|e| matches!(e, Effect::Stop { .. })), stop);
        if answer.is_err() || answer.is_ok_and(|a| !a.contains("escalate") && !a.contains("ignore"))
        {
            assert!(
                out.iter().any(
                    |e| matches!(e, Effect::Broadcast(v) if v["reason"] == "invalid_llm_response")
                ),
                "{answer:?}"
            );
        }
    }
}

#[test]
fn complete_stops_the_session_and_reports_the_evidence() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    let out = s.on_event(20_000, Event::TurnComplete {
        session_id: "a".into(),
        turn_output: "[milady/x 1a2b3c4d] add parser\n 2 files changed, 10 insertions(+)\nhttps://github.com/acme/app/pull/7\nchatter".into(),
    });
    assert_eq!(asks(&out), 1);
    let out = s.on_model_answer(
        20_001,
        "a",
        Ok(r#"{"action":"complete","reasoning":"PR open"}"#.into()),
    );
    assert!(out.contains(&Effect::MarkCompleted {
        session_id: "a".into()
    }));
    assert!(out.contains(&Effect::Stop {
        session_id: "a".into(),
        force: false
    }));
    let c = chats(&out);
    assert_eq!(
        c[0],
        "Finished \"app/a\".\n\n[milady/x 1a2b3c4d] add parser\n2 files changed, 10 insertions(+)\nhttps://github.com/acme/app/pull/7"
    );
    assert_eq!(
        c[1],
        "All 1 coding agents finished (1 completed, 0 stopped, 0 errored). Review their work when you're ready."
    );
    assert_eq!(s.task("a").unwrap().status, TaskStatus::Completed);
}

#[test]
fn out_of_workspace_approval_is_rewritten_and_rule_approvals_stop_the_session() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    s.on_event(1, blocked("a", "Allow write to /etc/hosts?", false));
    let out = s.on_model_answer(
        2,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"ok"}"#.into()),
    );
    assert!(out.contains(&Effect::SendText {
        session_id: "a".into(),
        text: "No — that path is outside your workspace. Use /ws/one instead. Create any files or directories you need there.".into()
    }));
    assert!(chats(&out)[0].starts_with(
        "[app/a] Declined out-of-scope access and redirected to workspace (/ws/one)."
    ));

    let out = s.on_event(3, blocked("a", "Read /etc/shadow?", true));
    assert!(out.contains(&Effect::Stop {
        session_id: "a".into(),
        force: true
    }));
    assert!(chats(&out)[0].starts_with("[app/a] WARNING: Auto-approved access to path outside workspace (/ws/one). Prompt: \"Read /etc/shadow?\""));
    assert_eq!(s.task("a").unwrap().status, TaskStatus::Error);
}

#[test]
fn ten_rule_answers_in_a_row_make_the_next_prompt_escalate() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    for i in 0..MAX_AUTO_RESPONSES {
        let out = s.on_event(u64::from(i), blocked("a", "Trust this folder?", true));
        assert!(has_event(&out, "blocked_auto_resolved"));
    }
    let out = s.on_event(100, blocked("a", "Run rm -rf build?", false));
    assert_eq!(asks(&out), 0);
    assert!(out.iter().any(
        |e| matches!(e, Effect::Broadcast(v) if v["reason"] == "max_auto_responses_exceeded")
    ));
}

#[test]
fn one_decision_at_a_time_and_duplicates_are_skipped() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    assert_eq!(asks(&s.on_event(1, blocked("a", "First?", false))), 1);
    assert!(s.on_event(2, blocked("a", "First?", false)).is_empty());
    assert!(has_event(
        &s.on_event(3, blocked("a", "Second?", false)),
        "blocked_buffered"
    ));
    let out = s.on_model_answer(4, "a", Ok(r#"{"action":"ignore","reasoning":"x"}"#.into()));
    assert_eq!(asks(&out), 1, "the buffered prompt is asked next");
}

#[test]
fn turn_complete_right_after_our_input_waits_for_the_quiet_window() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    s.record_input(1_000, "a");
    let tc = Event::TurnComplete {
        session_id: "a".into(),
        turn_output: "done".into(),
    };
    assert!(has_event(&s.on_event(2_000, tc), "turn_complete_buffered"));
    assert_eq!(asks(&s.tick(10_000, &[])), 0);
    let probe = Probe {
        session_id: "a".into(),
        alive: true,
        output_key: 1,
        last_activity_at: 16_000,
    };
    assert_eq!(asks(&s.tick(16_001, &[probe])), 1);
}

#[test]
fn confirm_level_waits_for_a_person() {
    let mut s = Supervisor::new(Level::Confirm);
    s.register(0, spec("a"));
    s.on_event(1, blocked("a", "Run tests?", false));
    let out = s.on_model_answer(
        2,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"ok"}"#.into()),
    );
    assert!(has_event(&out, "pending_confirmation"));
    assert!(!out.iter().any(|e| matches!(e, Effect::SendText { .. })));
    assert_eq!(
        s.pending(),
        [(
            "a".to_string(),
            "Run tests?".to_string(),
            "respond".to_string()
        )]
    );
    let out = s.confirm(3, "a", true, None).unwrap();
    assert!(has_event(&out, "confirmation_approved"));
    assert!(out.contains(&Effect::SendText {
        session_id: "a".into(),
        text: "y".into()
    }));
    assert!(s.confirm(4, "a", true, None).is_none());

    s.on_event(5, blocked("a", "Delete?", false));
    s.on_model_answer(
        6,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"ok"}"#.into()),
    );
    let out = s.confirm(7, "a", false, None).unwrap();
    assert!(has_event(&out, "confirmation_rejected"));
    assert!(!out.iter().any(|e| matches!(e, Effect::SendText { .. })));
}

#[test]
fn notify_level_only_tells() {
    let mut s = Supervisor::new(Level::Notify);
    s.register(0, spec("a"));
    let out = s.on_event(1, blocked("a", "Allow?", false));
    assert_eq!(asks(&out), 0);
    assert_eq!(
        chats(&out),
        ["[app/a] Needs your attention: waiting for input: \"Allow?\""]
    );
}

#[test]
fn idle_watchdog_asks_then_stops_on_the_fourth_check_and_notices_lost_sessions() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    let probe = |_t: u64| Probe {
        session_id: "a".into(),
        alive: true,
        output_key: 7,
        last_activity_at: 0,
    };
    // The first scan only learns the output.
    assert_eq!(asks(&s.tick(60_000, &[probe(0)])), 0);
    let mut t = 6 * 60_000;
    for check in 1..IDLE_STOP_CHECK {
        let out = s.tick(t, &[probe(t)]);
        assert_eq!(asks(&out), 1, "check {check}");
        s.on_model_answer(t, "a", Ok("garbage".into()));
        t += 60_000;
    }
    let out = s.tick(t, &[probe(t)]);
    assert!(out.contains(&Effect::Stop {
        session_id: "a".into(),
        force: false
    }));
    assert!(
        chats(&out)[0]
            .starts_with("[app/a] Session stopped — idle for 9 minutes with no progress.")
    );

    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("b"));
    let out = s.tick(60_000, &[]);
    assert_eq!(
        chats(&out)[0],
        "[app/b] Session lost — the agent process is no longer running (likely killed during a restart)."
    );
}

#[test]
fn events_of_unregistered_sessions_are_held_briefly() {
    let mut s = Supervisor::new(Level::Autonomous);
    assert!(s.on_event(0, blocked("late", "Allow?", false)).is_empty());
    assert_eq!(asks(&s.register(500, spec("late"))), 1);
    let mut s = Supervisor::new(Level::Autonomous);
    s.on_event(0, blocked("late", "Allow?", false));
    s.tick(3_000, &[]);
    assert_eq!(asks(&s.register(3_000, spec("late"))), 0);
}

#[test]
fn longer_responses_carry_other_agents_key_decisions() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    s.register(0, spec("b"));
    s.on_event(1, blocked("a", "Which db?", false));
    s.on_model_answer(2, "a", Ok(r#"{"action":"respond","response":"sqlite","reasoning":"x","keyDecision":"use sqlite"}"#.into()));
    s.on_event(3, blocked("b", "How should I store data?", false));
    let out = s.on_model_answer(
        4,
        "b",
        Ok(
            r#"{"action":"respond","response":"store it in the shared database","reasoning":"x"}"#
                .into(),
        ),
    );
    assert!(
        out.contains(&Effect::SendText {
            session_id: "b".into(),
            text:
                "store it in the shared database\n\n(Context from other agents: [app/a] use sqlite)"
                    .into()
        })
    );
}

#[test]
fn notices_pass_through_for_supervised_sessions_and_turns_are_assessed() {
    let mut s = Supervisor::new(Level::Autonomous);
    s.register(0, spec("a"));
    let notice = |id: &str, kind: &'static str| Event::Notice {
        session_id: id.into(),
        kind,
        data: json!({"toolName": "Bash"}),
    };
    let out = s.on_event(1, notice("a", "tool_running"));
    assert_eq!(
        out,
        vec![Effect::Broadcast(
            json!({"type": "tool_running", "sessionId": "a", "toolName": "Bash"})
        )]
    );
    assert!(s.on_event(1, notice("unknown", "ready")).is_empty());
    assert!(s.on_event(1, notice("a", "snapshot")).is_empty());
    // Paused: held like every other event, delivered on resume.
    s.pause(2);
    assert!(s.on_event(3, notice("a", "ready")).is_empty());
    let out = s.resume(4);
    assert!(has_event(&out, "coordinator_resumed") && has_event(&out, "ready"));

    let out = s.on_event(
        20_000,
        Event::TurnComplete {
            session_id: "a".into(),
            turn_output: "done".into(),
        },
    );
    assert_eq!(asks(&out), 1);
    let out = s.on_model_answer(
        20_001,
        "a",
        Ok(r#"{"action":"respond","response":"Now open a PR","reasoning":"no PR yet"}"#.into()),
    );
    assert!(out.contains(&Effect::Broadcast(
        json!({"type": "turn_assessment", "sessionId": "a",
        "decision": "respond", "reasoning": "no PR yet"})
    )));
}

/// A person's answer goes only to the prompt they saw: once a newer prompt has replaced the
/// pending confirmation, a confirmation naming the old prompt decides nothing.
#[test]
fn a_confirmation_for_a_replaced_prompt_decides_nothing() {
    let mut s = Supervisor::new(Level::Confirm);
    s.register(0, spec("a"));
    s.on_event(1, blocked("a", "Allow read foo?", false));
    s.on_model_answer(
        2,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"ok"}"#.into()),
    );
    assert_eq!(s.pending()[0].1, "Allow read foo?");
    // The person seeing "Allow read foo?" approves; the prompt is still that one.
    let out = s
        .confirm_seen(3, "a", Some("Allow read foo?"), true, None)
        .unwrap()
        .unwrap();
    assert!(has_event(&out, "confirmation_approved"));
    s.on_event(4, blocked("a", "Run rm -rf build?", false));
    s.on_model_answer(
        5,
        "a",
        Ok(r#"{"action":"respond","response":"y","reasoning":"ok"}"#.into()),
    );
    // A second click on the old prompt's dialog: refused, and the new prompt stays pending.
    assert_eq!(
        s.confirm_seen(6, "a", Some("Allow read foo?"), true, None),
        Err("Run rm -rf build?".to_string())
    );
    assert_eq!(s.pending()[0].1, "Run rm -rf build?");
}
