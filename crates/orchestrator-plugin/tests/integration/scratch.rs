//! Scratch workspaces: START_CODING_TASK without a repository records its directory; the
//! retention policy applies when the task ends (an injected clock, no sleeps); the HTTP routes
//! list and decide.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use orchestrator_plugin::actions::{self, ChatMemory, Message};
use orchestrator_plugin::http_api::HttpApi;
use orchestrator_plugin::scratch::{
    DEFAULT_DECISION_TTL_MS, Retention, ScratchConfig, ScratchStatus, ScratchStore,
};
use orchestrator_plugin::services::PtyService;
use pty_console::{HttpRequest, Routes};

use crate::fakes::{TempDir, TestRuntime};

struct Rig {
    rt: Arc<TestRuntime>,
    store: Arc<ScratchStore>,
    clock: Arc<AtomicU64>,
    api: HttpApi,
}

fn rig(tmp: &TempDir, retention: &str, ttl: Option<&str>) -> Rig {
    let get = |k: &str| match k {
        "PARALLAX_SCRATCH_RETENTION" => Some(retention.to_string()),
        "PARALLAX_SCRATCH_DECISION_TTL_MS" => ttl.map(str::to_string),
        _ => None,
    };
    let config = ScratchConfig::from_settings(&get, &tmp.0).unwrap();
    let clock = Arc::new(AtomicU64::new(1_000));
    let c = clock.clone();
    let store = Arc::new(ScratchStore::new(config, move || c.load(Ordering::SeqCst)));
    let mut rt = TestRuntime::new(&tmp.0);
    rt.scratch = Some(store.clone());
    let rt = Arc::new(rt);
    let api = HttpApi::new(rt.clone(), None);
    Rig {
        rt,
        store,
        clock,
        api,
    }
}

impl Rig {
    /// Starts a scratch task; returns its session id and directory.
    fn start(&self, task: &str) -> (String, std::path::PathBuf) {
        let a = actions::find("START_CODING_TASK").unwrap();
        let params = json!({"agentType": "shell", "task": task});
        let r = actions::run(
            a,
            self.rt.as_ref(),
            &ChatMemory::default(),
            &Message::text("room", ""),
            params.as_object().unwrap(),
            &mut |_| {},
        );
        assert!(r.success, "{}", r.text);
        let a = &r.data["agents"][0];
        let dir = std::path::PathBuf::from(a["workdir"].as_str().unwrap());
        (a["sessionId"].as_str().unwrap().to_string(), dir)
    }
    fn http(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let req = HttpRequest {
            method: method.into(),
            path: path.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        };
        let resp = self.api.handle(&req).expect("routed");
        (resp.status, serde_json::from_slice(&resp.body).unwrap())
    }
    fn end(&self, id: &str) {
        self.rt.pty().stop_session(id, false).unwrap();
    }
    fn advance(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }
}

#[test]
fn settings_are_parsed_and_bad_values_refused() {
    let tmp = TempDir::new("scratch-settings");
    // (retention, ttl) → parsed, or None for a refused value.
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<(Retention, u64)>);
    let cases: &[Case] = &[
        (
            None,
            None,
            Some((Retention::PendingDecision, DEFAULT_DECISION_TTL_MS)),
        ),
        (
            Some("ephemeral"),
            Some("5000"),
            Some((Retention::Ephemeral, 5000)),
        ),
        (
            Some("persistent"),
            None,
            Some((Retention::Keep, DEFAULT_DECISION_TTL_MS)),
        ),
        (
            Some("keep"),
            None,
            Some((Retention::Keep, DEFAULT_DECISION_TTL_MS)),
        ),
        (
            Some("PENDING_DECISION"),
            None,
            Some((Retention::PendingDecision, DEFAULT_DECISION_TTL_MS)),
        ),
        (Some("forever"), None, None),
        (None, Some("a day"), None),
    ];
    for (retention, ttl, want) in cases {
        let get = |k: &str| match k {
            "PARALLAX_SCRATCH_RETENTION" => retention.map(str::to_string),
            "PARALLAX_SCRATCH_DECISION_TTL_MS" => ttl.map(str::to_string),
            _ => None,
        };
        let got = ScratchConfig::from_settings(&get, &tmp.0)
            .ok()
            .map(|c| (c.retention, c.decision_ttl_ms));
        assert_eq!(got, *want, "{retention:?} {ttl:?}");
    }
}

#[test]
fn pending_decision_waits_for_a_person_or_the_ttl() {
    let tmp = TempDir::new("scratch-pending");
    let r = rig(&tmp, "pending_decision", Some("60000"));
    let (id, dir) = r.start("echo hi");
    assert!(dir.is_dir() && dir.starts_with(&tmp.0));
    let (st, list) = r.http("GET", "/api/coding-agents/scratch", json!({}));
    assert_eq!(st, 200);
    assert_eq!(list[0]["sessionId"], id);
    assert_eq!(list[0]["status"], "active");

    // Running: a delete is refused (409) and the directory stays.
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id}/scratch/delete"),
        json!({}),
    );
    assert_eq!(st, 409, "{v}");
    assert!(dir.is_dir());

    // The task ends: kept, pending a decision, until the TTL.
    r.end(&id);
    r.advance(10);
    r.store.sweep(r.rt.pty());
    let rec = r.store.get(&id).unwrap();
    assert_eq!(rec.status, ScratchStatus::PendingDecision);
    assert_eq!((rec.ended_at, rec.expires_at), (Some(1_010), Some(61_010)));
    r.advance(59_999);
    assert!(r.store.sweep(r.rt.pty()).removed.is_empty());
    assert!(dir.is_dir(), "kept until the TTL");
    r.advance(1);
    assert_eq!(r.store.sweep(r.rt.pty()).removed, vec![id.clone()]);
    assert!(!dir.exists(), "removed at the TTL");
    assert_eq!(
        r.http("GET", "/api/coding-agents/scratch", json!({})).1,
        json!([])
    );
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id}/scratch/keep"),
        json!({}),
    );
    assert_eq!(
        (st, v),
        (
            404,
            json!({"error": format!("Scratch workspace {id} not found")})
        )
    );

    // Decided in time: keep stops the clock.
    let (id2, dir2) = r.start("echo two");
    r.end(&id2);
    r.http("GET", "/api/coding-agents/scratch", json!({}));
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id2}/scratch/keep"),
        json!({}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["success"].as_bool(), v["scratch"]["status"].as_str()),
        (Some(true), Some("kept"))
    );
    r.advance(10 * 60_000);
    r.store.sweep(r.rt.pty());
    assert!(dir2.is_dir(), "kept past the TTL");

    // Promote moves it under a name; delete removes it.
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id2}/scratch/promote"),
        json!({"name": "../escape"}),
    );
    assert_eq!(st, 400, "{v}");
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id2}/scratch/promote"),
        json!({"name": "parser-spike"}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["scratch"]["status"], "promoted");
    assert!(tmp.0.join("parser-spike").is_dir() && !dir2.exists());
    let (st, v) = r.http(
        "POST",
        &format!("/api/coding-agents/{id2}/scratch/delete"),
        json!({}),
    );
    assert_eq!(
        (st, v),
        (
            200,
            json!({"success": true, "deleted": true, "sessionId": id2})
        )
    );
    assert!(!tmp.0.join("parser-spike").exists());
}

#[test]
fn ephemeral_goes_at_once_and_keep_stays() {
    let tmp = TempDir::new("scratch-ephemeral");
    let r = rig(&tmp, "ephemeral", None);
    let (id, dir) = r.start("echo hi");
    r.store.sweep(r.rt.pty());
    assert!(dir.is_dir(), "running tasks keep their directory");
    r.end(&id);
    assert_eq!(r.store.sweep(r.rt.pty()).removed, vec![id]);
    assert!(!dir.exists());

    let tmp2 = TempDir::new("scratch-keep");
    let r = rig(&tmp2, "persistent", None);
    let (id, dir) = r.start("echo hi");
    r.end(&id);
    r.store.sweep(r.rt.pty());
    r.advance(10 * DEFAULT_DECISION_TTL_MS);
    r.store.sweep(r.rt.pty());
    assert_eq!(r.store.get(&id).unwrap().status, ScratchStatus::Kept);
    assert!(dir.is_dir());
}

#[test]
fn one_directory_that_cannot_be_removed_does_not_stop_the_sweep() {
    let tmp = TempDir::new("scratch-stuck");
    let r = rig(&tmp, "ephemeral", None);
    // A record whose directory leads outside the base directory: its removal is refused. Its
    // id sorts before the real task's, so the sweep meets it first.
    let outside = TempDir::new("scratch-outside");
    let link = tmp.0.join("0-link");
    std::os::unix::fs::symlink(&outside.0, &link).unwrap();
    r.store.register("0-stuck", "stuck", &link);
    let (id, dir) = r.start("echo hi");
    r.end(&id);
    let sweep = r.store.sweep(r.rt.pty());
    assert_eq!(sweep.removed, vec![id.clone()]);
    assert_eq!(sweep.failed.len(), 1);
    assert_eq!(sweep.failed[0].0, "0-stuck");
    assert!(!dir.exists(), "the other task's directory is removed");
    assert!(
        outside.0.is_dir(),
        "nothing outside the base directory is removed"
    );
    // The listing still answers, and shows why the stuck one stays.
    let (status, list) = r.http("GET", "/api/coding-agents/scratch", json!({}));
    assert_eq!(status, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["sessionId"], "0-stuck");
    assert!(
        list[0]["removalError"]
            .as_str()
            .is_some_and(|e| e.contains("not a scratch directory")),
        "{list:?}"
    );
    // Tried again at every sweep, still refused, and not reported again for the same reason.
    let again = r.store.sweep(r.rt.pty());
    assert!(
        again.removed.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
    assert!(r.store.get("0-stuck").unwrap().removal_error.is_some());
    // Kept by a person: no longer removed, and no error shown.
    let kept = r.store.keep("0-stuck").unwrap();
    assert_eq!(kept.removal_error, None);
    assert!(r.store.sweep(r.rt.pty()).failed.is_empty());
    assert!(link.exists());
}
