//! Every spawn and input error is typed and leaves nothing behind.

use pty_manager::{Error, PtyManager, SpawnConfig};

use crate::core_support::*;

#[test]
fn unknown_key_writes_nothing() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    let err = mgr
        .send_keys(&s.id, &["down", "enter", "rm -rf /"])
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKey(k) if k == "rm -rf /"),
        "{err}"
    );
    assert_eq!(err.to_string(), "unknown key: rm -rf /");
    // A valid write afterwards is the only input the program ever got.
    mgr.write_raw(&s.id, b"x").unwrap();
    wait_until("the write", || mgr.metrics(&s.id).unwrap().bytes_in == 1);
}

#[test]
fn bad_workdir_is_an_error_and_leaves_no_session() {
    let mgr = PtyManager::new().unwrap();
    let err = mgr
        .spawn(SpawnConfig::new("cat").cwd("/nonexistent/dir/x").id("w1"))
        .unwrap_err();
    assert!(matches!(err, Error::WorkdirNotFound(_)), "{err}");
    assert!(!mgr.has("w1"));
    assert!(mgr.get("w1").is_err());
}

#[test]
fn missing_program_is_an_error_and_leaves_no_session() {
    let mgr = PtyManager::new().unwrap();
    let err = mgr
        .spawn(SpawnConfig::new("definitely-not-a-program-xyz").id("m1"))
        .unwrap_err();
    assert!(matches!(err, Error::ProgramNotFound { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "program not found: definitely-not-a-program-xyz"
    );
    assert!(mgr.get("m1").is_err());
    assert!(mgr.list(None, None).is_empty());
    // The id is free again.
    mgr.spawn(SpawnConfig::new("cat").id("m1")).unwrap();
}

#[test]
fn zero_size_is_an_error() {
    let mgr = PtyManager::new().unwrap();
    let err = mgr.spawn(SpawnConfig::new("cat").size(0, 40)).unwrap_err();
    assert!(
        matches!(err, Error::InvalidSize { cols: 0, rows: 40 }),
        "{err}"
    );
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    let err = mgr.resize(&s.id, 80, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidSize { .. }), "{err}");
    assert!(mgr.list(None, None).len() == 1);
}

#[test]
fn duplicate_id_is_an_error() {
    let mgr = PtyManager::new().unwrap();
    mgr.spawn(SpawnConfig::new("cat").id("dup")).unwrap();
    let err = mgr.spawn(SpawnConfig::new("cat").id("dup")).unwrap_err();
    assert_eq!(err.to_string(), "session already exists: dup");
    assert_eq!(mgr.list(None, None).len(), 1);
    let err = mgr
        .spawn(SpawnConfig::new("cat").id("bad id/.."))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidId(_)), "{err}");
}

#[test]
fn unknown_session_is_an_error() {
    let mgr = PtyManager::new().unwrap();
    assert_eq!(
        mgr.send("nope", "x").unwrap_err().to_string(),
        "session not found: nope"
    );
    assert!(matches!(
        mgr.stop("nope", None),
        Err(Error::SessionNotFound(_))
    ));
}

/// A spawn that fails with the id of a stopped session leaves that session queryable (it was
/// dropped from the table with the failed spawn).
#[test]
fn a_failed_spawn_keeps_the_stopped_session_of_its_id() {
    let mgr = PtyManager::new().unwrap();
    let rx = mgr.events();
    let s = mgr
        .spawn(
            SpawnConfig::new("sh")
                .args(["-c", "echo first; exit 4"])
                .id("reused"),
        )
        .unwrap();
    wait_stopped(&rx, &s.id);
    let err = mgr
        .spawn(SpawnConfig::new("/nonexistent/program").id("reused"))
        .unwrap_err();
    assert!(matches!(err, Error::ProgramNotFound { .. }), "{err:?}");
    let old = mgr
        .get("reused")
        .expect("the stopped session is still there");
    assert!(!old.status.is_live());
    assert_eq!(old.pid, s.pid);
}
