//! A task given at spawn is typed only once the session is ready: never echoed by the terminal
//! before the program's prompt, sent anyway to a session still starting after the ready timeout,
//! never into a prompt waiting for a person.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pty_console::{Delivery, SpawnRequest, TaskTiming, send_when_ready};
use pty_manager::{DeclarativeAdapter, PtyManager, SpawnConfig};

use crate::support::{Harness, has_prompt};

/// A program that prints `toy> ` after `delay`, echoes what it reads as `got-<line>`, and waits.
fn toy(manager: &PtyManager, script: &str) -> String {
    let adapter = DeclarativeAdapter::from_yaml(&format!(
        r#"
schema: 1
type: toy
command: /bin/sh
args: ["-c", {script:?}]
rules:
  - {{ id: toy.ready, signal: ready, pattern: '^toy> ?$', region: cursor_row }}
  - {{ id: toy.proceed, signal: prompt, pattern: 'Proceed\? \[y/N\]', region: cursor_row, type: permission }}
"#
    ))
    .unwrap();
    manager
        .spawn(SpawnConfig::with_adapter(Arc::new(adapter)).cwd(std::env::temp_dir()))
        .unwrap()
        .id
}

fn raw(manager: &PtyManager, id: &str) -> String {
    String::from_utf8_lossy(&manager.raw_output(id).unwrap()).into_owned()
}

fn wait_raw(manager: &PtyManager, id: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = raw(manager, id);
        if r.contains(what) {
            return r;
        }
        assert!(Instant::now() < deadline, "no {what:?} in {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_slow_program_gets_its_task_after_its_prompt_once() {
    let m = Arc::new(PtyManager::new().unwrap());
    // Typed at once, `hello` would be echoed by the terminal during the sleep, before `toy> `.
    let id = toy(
        &m,
        "sleep 1; printf 'toy> '; read a; echo got-$a; printf 'toy> '; sleep 30",
    );
    let sent = send_when_ready(&m, id.clone(), "hello".into(), TaskTiming::default());
    let out = sent.join().unwrap().unwrap();
    assert!(matches!(out, Delivery::AfterReady(_)), "{out:?}");
    let r = wait_raw(&m, &id, "got-hello");
    let prompt = r.find("toy> ").unwrap();
    assert!(
        r.find("hello").unwrap() > prompt,
        "task before the prompt: {r:?}"
    );
    assert_eq!(
        r.matches("hello").count(),
        2,
        "echo once, then got-hello: {r:?}"
    );
    m.kill(&id).unwrap();
}

#[test]
fn a_session_still_starting_gets_it_at_the_ready_timeout_and_a_prompt_never() {
    let m = Arc::new(PtyManager::new().unwrap());
    let timing = TaskTiming {
        ready_timeout: Duration::from_millis(300),
        ..TaskTiming::default()
    };
    // Never reads as ready: the task goes at the timeout.
    let id = toy(&m, "read a; echo got-$a; sleep 30");
    let out = send_when_ready(&m, id.clone(), "late".into(), timing)
        .join()
        .unwrap()
        .unwrap();
    assert!(matches!(out, Delivery::AfterTimeout(_)), "{out:?}");
    wait_raw(&m, &id, "got-late");
    m.kill(&id).unwrap();

    // Blocked on a question from the start: the task waits (it would answer it), and goes
    // nowhere when the session ends.
    let id = toy(
        &m,
        "printf 'Proceed? [y/N] '; read a; echo got-$a; sleep 30",
    );
    wait_raw(&m, &id, "Proceed?");
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.get(&id).unwrap().status.to_string() != "blocked" {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            m.get(&id).unwrap().status
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pending = send_when_ready(&m, id.clone(), "yes".into(), timing);
    std::thread::sleep(Duration::from_millis(900));
    assert!(!pending.is_finished(), "sent into a prompt");
    assert!(!raw(&m, &id).contains("yes"), "{}", raw(&m, &id));
    m.kill(&id).unwrap();
    assert_eq!(pending.join().unwrap().unwrap(), Delivery::SessionEnded);
}

/// The spawn form's shell: its command runs once, typed after the first `pty> `.
#[test]
fn the_spawn_forms_shell_command_is_typed_after_the_prompt() {
    let h = Harness::start("first-task");
    let req = SpawnRequest {
        agent: "shell".into(),
        workdir: h.dir.clone(),
        task: "echo first-$((40+2))".into(),
        name: None,
    };
    let id = h.console.spawn(&req).unwrap().id;
    h.wait_screen(&id, "the command's output and the prompt again", |l| {
        l.iter().any(|l| l == "first-42")
            && has_prompt(l)
            && l.iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim_end())
                == Some("pty>")
    });
    let m = h.console.manager();
    let r = wait_raw(m, &id, "first-42");
    assert!(
        r.find("echo first").unwrap() > r.find("pty> ").unwrap(),
        "typed before the prompt: {r:?}"
    );
    let screen = m.snapshot(&id).unwrap().lines;
    assert_eq!(
        screen.iter().filter(|l| l.contains("echo first")).count(),
        1,
        "{screen:#?}"
    );
    m.kill(&id).unwrap();
}
