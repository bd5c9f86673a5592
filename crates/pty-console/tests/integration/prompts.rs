//! Prompts answered by people (approve / deny, checked against the prompt they saw), session
//! auto-response rules added and cleared over HTTP, and audit records in snapshots.

use std::time::{Duration, Instant};

use pty_console::feed::WireFrame;
use serde_json::{Value, json};

use crate::support::{Harness, has_prompt, http};

/// Prints `Proceed? (y/n) `, reads a line and echoes `got-<answer>`. The typed command does not
/// contain the prompt's text, so only the printed question matches the rule.
const ASK: &str = "printf 'Pro''ceed? (y/n) '; read a; echo got-$a";

fn rule(safe: bool) -> Value {
    json!({
        "id": "test.proceed",
        "signal": "prompt",
        "type": "permission",
        "pattern": r"Proceed\? \(y/n\)",
        "safe": safe,
        "response": { "text": "y" },
        "description": "test question",
    })
}

/// POSTs a control request; returns the status and the JSON body.
fn control(h: &Harness, id: &str, body: &Value) -> (u16, Value) {
    let bearer = format!("Bearer {}", h.token());
    let (status, _, body) = http(
        h.server.http_addr(),
        "POST",
        &format!("/api/console/sessions/{id}/control"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Waits until the snapshot shows a waiting prompt; returns its `promptInfo`.
fn wait_prompt(h: &Harness, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snap = h.console.snapshot(id).unwrap().to_json();
        if snap["promptInfo"].is_object() {
            assert_eq!(snap["session"]["status"], "blocked");
            return snap["promptInfo"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no waiting prompt; snapshot: {snap:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn blocked_session(h: &Harness, name: &str) -> (String, Value) {
    let id = h.shell(name);
    h.wait_screen(&id, "the prompt", has_prompt);
    assert_eq!(
        control(h, &id, &json!({"type": "add_rule", "rule": rule(false)})),
        (200, json!({"success": true}))
    );
    h.console.manager().send(&id, ASK).unwrap();
    let info = wait_prompt(h, &id);
    (id, info)
}

#[test]
fn approve_types_the_suggested_answer_only_for_the_prompt_shown() {
    let h = Harness::start("approve");
    let (id, info) = blocked_session(&h, "approve");
    assert_eq!(info["suggested_response"], "text:y");
    assert_eq!(info["rule_id"], "test.proceed");
    let mut feed = h.console.open_feed(&id).unwrap();
    feed.poll(Duration::from_millis(10)).unwrap();

    // A prompt the client did not see, or from another rule: refused, nothing typed.
    let (status, body) = control(
        &h,
        &id,
        &json!({"type": "approve", "prompt": "Delete everything? (y/n)"}),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("stale prompt"),
        "{body}"
    );
    let (status, _) = control(
        &h,
        &id,
        &json!({"type": "approve", "prompt": info["prompt"], "ruleId": "other.rule"}),
    );
    assert_eq!(status, 409);
    assert_eq!(
        h.console.manager().get(&id).unwrap().status.to_string(),
        "blocked"
    );

    let (status, body) = control(
        &h,
        &id,
        &json!({"type": "approve", "prompt": info["prompt"], "ruleId": "test.proceed"}),
    );
    assert_eq!(status, 200, "{body}");
    h.wait_screen(&id, "the approved answer", |l| {
        l.iter().any(|l| l == "got-y")
    });
    // A second click finds no prompt waiting.
    let (status, _) = control(
        &h,
        &id,
        &json!({"type": "approve", "prompt": info["prompt"]}),
    );
    assert_eq!(status, 409);

    // The watchers are told who answered, and the snapshot carries the record.
    let deadline = Instant::now() + Duration::from_secs(20);
    let human = loop {
        let found = feed
            .poll(Duration::from_millis(100))
            .unwrap()
            .into_iter()
            .find_map(|f| match f {
                WireFrame::Text(t) if t.contains("\"human_response\"") => {
                    Some(serde_json::from_str::<Value>(&t).unwrap())
                }
                _ => None,
            });
        if let Some(v) = found {
            break v;
        }
        assert!(Instant::now() < deadline, "no human_response status");
    };
    let ev = &human["event"];
    assert_eq!(ev["decision"], "approve");
    assert_eq!(ev["promptRuleId"], "test.proceed");
    assert_eq!(ev["record"]["rule_id"], "supervisor:human");
    assert_eq!(ev["record"]["sent"], "text:y");
    assert!(
        ev["record"]["prompt_excerpt"]
            .as_str()
            .unwrap()
            .contains("Proceed? (y/n)")
    );
    let snap = h.console.snapshot(&id).unwrap().to_json();
    let audit = snap["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["source"], "supervisor");
    assert_eq!(audit[0]["sent"], "text:y");
}

#[test]
fn deny_declines_a_text_prompt_with_n() {
    let h = Harness::start("deny");
    let (id, info) = blocked_session(&h, "deny");
    let (status, body) = control(&h, &id, &json!({"type": "deny", "prompt": info["prompt"]}));
    assert_eq!(status, 200, "{body}");
    h.wait_screen(&id, "the refusal", |l| l.iter().any(|l| l == "got-n"));
    let snap = h.console.snapshot(&id).unwrap().to_json();
    assert_eq!(snap["audit"][0]["sent"], "text:n");
}

#[test]
fn rules_added_over_http_answer_prompts_and_can_be_cleared() {
    let h = Harness::start("rules");
    let id = h.shell("rules");
    h.wait_screen(&id, "the prompt", has_prompt);
    let mut bad = rule(true);
    bad["pattern"] = json!("Proceed(");
    let (status, body) = control(&h, &id, &json!({"type": "add_rule", "rule": bad}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("test.proceed"),
        "{body}"
    );
    let (status, _) = control(&h, &id, &json!({"type": "add_rule", "rule": {"id": "x"}}));
    assert_eq!(status, 400);

    let (status, _) = control(&h, &id, &json!({"type": "add_rule", "rule": rule(true)}));
    assert_eq!(status, 200);
    let snap = h.console.snapshot(&id).unwrap().to_json();
    assert_eq!(snap["rules"][0]["id"], "test.proceed");
    h.console.manager().send(&id, ASK).unwrap();
    h.wait_screen(&id, "the automatic answer", |l| {
        l.iter().any(|l| l == "got-y")
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snap = h.console.snapshot(&id).unwrap().to_json();
        if let Some(r) = snap["audit"].as_array().and_then(|a| a.first()) {
            assert_eq!(r["rule_id"], "test.proceed");
            assert_eq!(r["source"], "session");
            assert_eq!(r["sent"], "text:y");
            break;
        }
        assert!(Instant::now() < deadline, "no audit record: {snap:#}");
        std::thread::sleep(Duration::from_millis(20));
    }

    let (status, _) = control(&h, &id, &json!({"type": "remove_rule", "id": "nope"}));
    assert_eq!(status, 404);
    let (status, _) = control(&h, &id, &json!({"type": "clear_rules"}));
    assert_eq!(status, 200);
    assert!(h.console.manager().rules(&id).unwrap().is_empty());
    let snap = h.console.snapshot(&id).unwrap().to_json();
    assert_eq!(snap["rules"], json!([]));
}

#[test]
fn deny_dismisses_a_keys_prompt_with_escape() {
    let h = Harness::start("deny-menu");
    let id = h.shell("deny-menu");
    h.wait_screen(&id, "the prompt", has_prompt);
    let mut menu = rule(false);
    menu["pattern"] = json!(r"Pick one:");
    menu["response"] = json!({ "keys": ["enter"] });
    let (status, _) = control(&h, &id, &json!({"type": "add_rule", "rule": menu}));
    assert_eq!(status, 200);
    // One key, shown quoted: Escape prints as $'\E'.
    h.console
        .manager()
        .send(
            &id,
            r#"printf 'Pi''ck one: '; read -rsn1 k; printf 'key=%q\n' "$k""#,
        )
        .unwrap();
    let info = wait_prompt(&h, &id);
    assert_eq!(info["suggested_response"], "keys:enter");
    let (status, body) = control(&h, &id, &json!({"type": "deny", "prompt": info["prompt"]}));
    assert_eq!(status, 200, "{body}");
    h.wait_screen(&id, "Escape read by the program", |l| {
        l.iter().any(|l| l.contains(r"key=$'\E'"))
    });
    let snap = h.console.snapshot(&id).unwrap().to_json();
    assert_eq!(snap["audit"][0]["sent"], "keys:escape");
}

/// The console's per-session state (status times, waiting prompts, people's answers) follows the
/// manager: 50 sessions started, answered, stopped and removed leave entries for the live ones
/// only, while a stopped session the manager still holds keeps what its tile shows.
#[test]
fn per_session_state_is_pruned_when_the_manager_forgets_a_session() {
    let h = Harness::start("prune");
    let m = h.console.manager().clone();
    let wait_stopped = |id: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while m.get(id).unwrap().status.is_live() {
            assert!(Instant::now() < deadline, "{id} did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // A few sessions with a waiting prompt, answered by a person or left waiting.
    let mut answered = Vec::new();
    for i in 0..3 {
        let (id, info) = blocked_session(&h, &format!("asked-{i}"));
        if i < 2 {
            let (status, body) = control(
                &h,
                &id,
                &json!({"type": "approve", "prompt": info["prompt"]}),
            );
            assert_eq!(status, 200, "{body}");
            answered.push(id);
        } else {
            m.kill(&id).unwrap();
            wait_stopped(&id);
            m.remove(&id).unwrap();
        }
    }
    let [since, waiting, human] = h.console.tracked_sessions();
    assert!(since >= 2 && human == 2, "{:?}", [since, waiting, human]);
    let mut removed = 1;
    while removed < 50 {
        let id = h.shell(&format!("s-{removed}"));
        m.kill(&id).unwrap();
        wait_stopped(&id);
        m.remove(&id).unwrap();
        removed += 1;
    }
    // One answered session stops but stays known to the manager: its tile keeps its record.
    let kept = answered.pop().unwrap();
    m.kill(&kept).unwrap();
    wait_stopped(&kept);
    let live = h.console.sessions();
    assert_eq!(live.len(), 1, "the other answered session");
    let known = live.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The pump may still be working through the last stops.
        let t = h.console.sessions();
        let [since, waiting, human] = h.console.tracked_sessions();
        if since <= known && waiting == 0 && human == 2 {
            assert_eq!(t.len(), 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "entries {:?} for {known} known sessions",
            [since, waiting, human]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let snap = h.console.snapshot(&kept).unwrap().to_json();
    assert!(
        snap["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule_id"] == "supervisor:human" || r["ruleId"] == "supervisor:human"),
        "{snap:#}"
    );
    // Once the manager forgets it, so does the console.
    m.remove(&kept).unwrap();
    h.console.sessions();
    assert_eq!(h.console.tracked_sessions()[2], 1);
    assert!(h.console.tracked_sessions()[0] <= 1);
}
