//! Bytes in and out of real PTYs: echo, size, tty, keys, paste, volume.

use std::time::Duration;

use pty_manager::{OutputChunk, PtyManager, SessionEvent, SpawnConfig};

use crate::core_support::*;

fn sh(script: &str) -> SpawnConfig {
    SpawnConfig::new("/bin/sh").args(["-c", script])
}

#[test]
fn echo_round_trip() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    mgr.write_raw(&s.id, b"hello pty\r").unwrap();
    let text = wait_screen(&mgr, &s.id, "hello pty\nhello pty");
    // The terminal echoed the line, then cat printed it.
    assert!(text.starts_with("hello pty\nhello pty"), "{text}");
    let m = mgr.metrics(&s.id).unwrap();
    assert_eq!(m.bytes_in, 10);
    assert!(m.bytes_out >= 22, "{m:?}");
    assert_eq!(mgr.logs(&s.id, 10).unwrap(), ["hello pty", "hello pty"]);
}

#[test]
fn stty_size_sees_size_and_resize() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr
        .spawn(sh("stty size; read x; stty size; read x").size(100, 30))
        .unwrap();
    wait_screen(&mgr, &s.id, "30 100");
    mgr.resize(&s.id, 90, 20).unwrap();
    mgr.write_raw(&s.id, b"\r").unwrap();
    wait_screen(&mgr, &s.id, "20 90");
    let snap = mgr.snapshot(&s.id).unwrap();
    assert_eq!((snap.cols, snap.rows, snap.lines.len()), (90, 20, 20));
}

#[test]
fn child_sees_a_terminal() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr
        .spawn(sh(
            "test -t 0 && test -t 1 && test -t 2 && echo ALL-TTY; tty; echo \"TERM=$TERM\"",
        ))
        .unwrap();
    let stopped = wait_stopped(&events, &s.id);
    let text = mgr.snapshot(&s.id).unwrap().lines.join("\n");
    assert!(text.contains("ALL-TTY"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("TERM=xterm-256color"), "{text}");
    assert!(matches!(
        stopped,
        SessionEvent::Stopped { code: Some(0), .. }
    ));
}

#[test]
fn ctrl_c_interrupts_sleep() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(SpawnConfig::new("sleep").args(["100"])).unwrap();
    // Give sleep a moment to be the foreground process (it is from exec on; this only avoids
    // racing the exec itself).
    std::thread::sleep(Duration::from_millis(200));
    mgr.send_keys(&s.id, &["ctrl+c"]).unwrap();
    match wait_stopped(&events, &s.id) {
        SessionEvent::Stopped { signal, reason, .. } => {
            assert_eq!(signal, Some(libc::SIGINT));
            assert_eq!(reason, "signal SIGINT");
        }
        other => panic!("{other:?}"),
    }
}

/// Regression: run from a background job of a non-interactive shell (as CI scripts do), the test
/// process ignored SIGINT, `sleep` inherited that, and Ctrl-C did nothing.
#[test]
fn ctrl_c_interrupts_a_child_even_when_the_manager_ignores_sigint() {
    // SAFETY: setting a disposition to SIG_IGN and back is sound at any time; other tests' children
    // are unaffected because every spawn resets dispositions before exec, which is what this tests.
    let previous = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(SpawnConfig::new("sleep").args(["100"]));
    // SAFETY: as above; restores what the test runner had.
    unsafe { libc::signal(libc::SIGINT, previous) };
    let s = s.unwrap();
    std::thread::sleep(Duration::from_millis(200));
    mgr.send_keys(&s.id, &["ctrl+c"]).unwrap();
    match wait_stopped(&events, &s.id) {
        SessionEvent::Stopped { signal, .. } => assert_eq!(signal, Some(libc::SIGINT)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn paste_100k_into_cat_is_byte_exact() {
    let dir = temp_dir("paste");
    let out = dir.join("pasted.txt");
    let mut text = String::new();
    let mut i = 0u32;
    while text.len() < 100 * 1024 {
        text.push_str(&format!("line {i:05} {}\n", "abcdefghij".repeat(8)));
        i += 1;
    }
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(sh("cat > pasted.txt").cwd(&dir)).unwrap();
    mgr.paste(&s.id, &text, true).unwrap();
    // The text ends with a newline, so ctrl+d at the start of a line is end of file for cat.
    mgr.send_keys(&s.id, &["ctrl+d"]).unwrap();
    wait_stopped(&events, &s.id);
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got.len(), text.len());
    assert!(got == text, "pasted text differs");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_gib_through_the_manager_exact() {
    const N: u64 = 1 << 30;
    let mgr = PtyManager::new().unwrap();
    // Subscribed from the first byte: `attach` after `spawn` misses whatever `head` wrote before
    // it (this test failed that way when the machine was loaded).
    let (s, att) = mgr
        .spawn_attached(SpawnConfig::new("head").args(["-c", &N.to_string(), "/dev/zero"]))
        .unwrap();
    let (mut got, mut dropped) = (0u64, 0u64);
    // The stream ends (disconnects) after the last byte, once the process is reaped.
    while let Ok(chunk) = att.output.recv_timeout(TIMEOUT) {
        match chunk {
            OutputChunk::Data(d) => got += d.len() as u64,
            OutputChunk::Lagged { dropped_bytes, .. } => dropped += dropped_bytes,
        }
    }
    assert_eq!(mgr.get(&s.id).unwrap().exit.and_then(|e| e.code), Some(0));
    // A slow consumer may be told it lagged; nothing is ever lost silently.
    assert_eq!(got + dropped, N);
    assert_eq!(mgr.metrics(&s.id).unwrap().bytes_out, N);
}

#[test]
fn spawn_attached_gets_what_the_program_printed_before_the_caller_looked() {
    let mgr = PtyManager::new().unwrap();
    let (s, att) = mgr
        .spawn_attached(SpawnConfig::new("printf").args(["first\\nsecond\\n"]))
        .unwrap();
    // The program prints and exits before the caller reads anything.
    wait_until("printf exited", || mgr.get(&s.id).unwrap().exit.is_some());
    let mut out = Vec::new();
    while let Ok(chunk) = att.output.recv_timeout(TIMEOUT) {
        match chunk {
            OutputChunk::Data(d) => out.extend_from_slice(&d),
            OutputChunk::Lagged { .. } => panic!("a two-line stream lagged"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out), "first\r\nsecond\r\n");
    // Attaching now gets the painted screen and a stream that is already over.
    let late = mgr.attach(&s.id).unwrap();
    assert!(String::from_utf8_lossy(&late.initial).contains("second"));
    assert!(late.output.recv_timeout(Duration::from_secs(1)).is_err());
}

#[test]
fn send_types_text_then_enter_and_marks_busy() {
    let mgr = PtyManager::new().unwrap();
    let events = mgr.events();
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    assert_eq!(s.status.as_str(), "starting");
    let msg = mgr.send(&s.id, "first task").unwrap();
    assert_eq!(msg, format!("{}-msg-1", s.id));
    wait_screen(&mgr, &s.id, "first task\nfirst task");
    let info = mgr.get(&s.id).unwrap();
    assert_eq!((info.status.as_str(), info.turn), ("busy", 1));
    wait_event(
        &events,
        |e| matches!(e, SessionEvent::Message { message } if message.content == "first task"),
    );
}

#[test]
fn cursor_position_query_is_answered() {
    let mgr = PtyManager::new().unwrap();
    // The shell asks for the cursor position and prints the raw reply it reads.
    let s = mgr
        .spawn(sh(
            "stty raw -echo; printf 'ab\\033[6n'; r=$(dd bs=1 count=6 2>/dev/null); stty sane; printf '\\r\\nGOT:%s' \"$r\" | tr '\\033' E; sleep 5",
        ))
        .unwrap();
    wait_screen(&mgr, &s.id, "GOT:E[1;3R");
}

#[test]
fn late_joiner_gets_the_screen_then_the_stream() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    mgr.write_raw(&s.id, b"before\r").unwrap();
    wait_screen(&mgr, &s.id, "before\nbefore");
    let att = mgr.attach(&s.id).unwrap();
    let mut viewer = pty_manager::Screen::new(120, 40);
    viewer.process(&att.initial);
    assert_eq!(viewer.lines()[..2], ["before", "before"]);
    mgr.write_raw(&s.id, b"after\r").unwrap();
    wait_until("the live stream", || {
        while let Ok(OutputChunk::Data(d)) = att.output.try_recv() {
            viewer.process(&d);
        }
        viewer.lines()[3] == "after"
    });
}

/// Sends issued back to back (no wait for the first one's Enter) used to cancel the pending Enter,
/// so `cat` got `hiecho hi` as one line. Each send must arrive as its own line, written once.
#[test]
fn back_to_back_sends_are_two_lines() {
    let mgr = PtyManager::new().unwrap();
    // The terminal echo is turned off so each line appears once, as the script saw it.
    let s = mgr
        .spawn(sh(
            "stty -echo; echo READY; while IFS= read -r l; do echo \"got<$l>\"; done",
        ))
        .unwrap();
    wait_screen(&mgr, &s.id, "READY");
    mgr.send(&s.id, "hi").unwrap();
    mgr.send(&s.id, "echo hi").unwrap();
    mgr.send(&s.id, "third").unwrap();
    let text = wait_screen(&mgr, &s.id, "got<third>");
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("got<")).collect();
    assert_eq!(got, ["got<hi>", "got<echo hi>", "got<third>"], "{text}");
    // Nothing typed twice, no stray Enter: no further line shows up.
    std::thread::sleep(Duration::from_millis(1500));
    let text = mgr.snapshot(&s.id).unwrap().lines.join("\n");
    let got = text.lines().filter(|l| l.starts_with("got<")).count();
    assert_eq!(got, 3, "{text}");
}

/// Output that makes the terminal parser panic (vt100 0.18, a U+FE0F-widened character at the
/// margin of a 5-column screen, then cursor-up) must not take the session or the manager down:
/// the grid is reset, the program goes on, and other sessions are untouched.
#[test]
fn output_that_panics_the_parser_leaves_the_session_working() {
    let mgr = PtyManager::new().unwrap();
    let other = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    let s = mgr
        .spawn(
            sh(r"printf '\n\n\n\t\342\235\244\357\270\217\033[1A\303\251 b'; read x; echo alive")
                .size(5, 4),
        )
        .unwrap();
    wait_until("the program to print its bytes", || {
        mgr.metrics(&s.id).is_ok_and(|m| m.bytes_out >= 20)
    });
    mgr.write_raw(&s.id, b"x\r").unwrap();
    wait_screen(&mgr, &s.id, "alive");
    mgr.write_raw(&other.id, b"still here\r").unwrap();
    wait_screen(&mgr, &other.id, "still here\nstill here");
}

/// `send` while `send_keys` was still typing (its next key on the stagger timer) drops the rest
/// of those keys with the turn, and later keys are typed again (they were queued for good).
#[test]
fn keys_are_typed_after_a_send_cut_a_key_stagger_short() {
    let mgr = PtyManager::new().unwrap();
    let s = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    // The first key goes at once, the second waits 50 ms: the send lands in between.
    mgr.send_keys(&s.id, &["ctrl+e", "ctrl+f"]).unwrap();
    mgr.send(&s.id, "hello").unwrap();
    wait_screen(&mgr, &s.id, "hello\nhello");
    mgr.send_keys(&s.id, &["ctrl+a", "ctrl+b"]).unwrap();
    wait_screen(&mgr, &s.id, "^A^B");
    mgr.kill(&s.id).unwrap();
}

/// Durations from callers cannot take the reactor down: a stop grace of `Duration::MAX` waits
/// (the program obeys SIGTERM here) and every other session keeps working.
#[test]
fn a_huge_stop_grace_leaves_the_reactor_running() {
    let mgr = PtyManager::new().unwrap();
    let a = mgr.spawn(SpawnConfig::new("sleep").args(["100"])).unwrap();
    let b = mgr.spawn(SpawnConfig::new("cat")).unwrap();
    let stopped = mgr.stop(&a.id, Some(Duration::MAX)).unwrap();
    assert!(!stopped.status.is_live(), "{stopped:?}");
    mgr.write_raw(&b.id, b"still here\r").unwrap();
    wait_screen(&mgr, &b.id, "still here\nstill here");
    mgr.kill(&b.id).unwrap();
}

/// A subscriber attaching in the middle of a flood gets each byte once: its initial screen and
/// first chunk do not overlap (the screen is fed between reads, a few KiB at a time, while
/// whole buffers go out).
#[test]
fn attach_during_a_flood_neither_doubles_nor_drops_bytes() {
    use pty_manager::Screen;
    let mgr = PtyManager::new().unwrap();
    let s = mgr
        .spawn(SpawnConfig::new("seq").args(["1", "40000000"]).size(80, 24))
        .unwrap();
    wait_screen(&mgr, &s.id, "00");
    let mut checked = 0;
    for _ in 0..200 {
        let Ok(att) = mgr.attach(&s.id) else { break };
        let mut screen = Screen::new(80, 24);
        screen.process(&att.initial);
        let nums: Vec<u64> = screen
            .lines()
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if nums.len() < 3 {
            continue;
        }
        // The last row may be cut short: the one before it is whole.
        let last_whole = nums[nums.len() - 2];
        let first = loop {
            match att.output.recv_timeout(TIMEOUT) {
                Ok(OutputChunk::Data(d)) => break d,
                Ok(_) => continue,
                Err(e) => panic!("no output after attaching: {e:?}"),
            }
        };
        let text = String::from_utf8_lossy(&first);
        // The chunk may start inside a line: its first whole line follows the first line end.
        if let Some(n) = text
            .split("\r\n")
            .nth(1)
            .and_then(|l| l.parse::<u64>().ok())
        {
            checked += 1;
            assert!(
                n > last_whole,
                "the initial screen ends at {last_whole} and the first chunk repeats from {n}"
            );
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    mgr.kill(&s.id).unwrap();
    assert!(checked > 20, "too few attaches compared ({checked})");
}
