//! The bridge over a real manager: feeds in order, and a lagging client resynced from a fresh
//! snapshot so that what it paints equals the real screen.

use std::time::{Duration, Instant};

use pty_console::feed::WireFrame;

use crate::support::{Harness, has_prompt};

/// Applies frames like a browser terminal would: a snapshot message resets the model.
fn replay(frames: &[WireFrame], model: &mut Option<pty_manager::Screen>) -> usize {
    let mut snapshots = 0;
    for f in frames {
        match f {
            WireFrame::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t).unwrap();
                if v["type"] == "snapshot" {
                    snapshots += 1;
                    let cols = v["screen"]["cols"].as_u64().unwrap() as u16;
                    let rows = v["screen"]["rows"].as_u64().unwrap() as u16;
                    *model = Some(pty_manager::Screen::new(cols, rows));
                }
            }
            WireFrame::Binary(b) => model
                .as_mut()
                .expect("output before any snapshot")
                .process(b),
        }
    }
    snapshots
}

#[test]
fn a_feed_starts_with_the_snapshot_and_follows_in_order() {
    let h = Harness::start("feed-order");
    let id = h.shell("order");
    h.wait_screen(&id, "the prompt", has_prompt);
    let mut feed = h.console.open_feed(&id).unwrap();
    let first = feed.poll(Duration::from_millis(10)).unwrap();
    assert!(matches!(&first[0], WireFrame::Text(t) if t.contains("\"type\":\"snapshot\"")));
    assert!(matches!(&first[1], WireFrame::Binary(_)));
    let mut model = None;
    replay(&first, &mut model);
    h.console
        .manager()
        .write_raw(&id, b"for i in 1 2 3 4 5; do echo n$i; done\r")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let frames = feed.poll(Duration::from_millis(100)).unwrap();
        assert_eq!(
            replay(&frames, &mut model),
            0,
            "no resync for a client that keeps up"
        );
        let lines = model.as_ref().unwrap().lines();
        let pos: Vec<_> = (1..=5)
            .map(|i| lines.iter().position(|l| *l == format!("n{i}")))
            .collect();
        if pos.iter().all(Option::is_some) {
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "in order: {lines:?}");
            break;
        }
        assert!(Instant::now() < deadline, "output never arrived: {lines:?}");
    }
    assert_eq!(feed.resyncs(), 0);
    let second = h.console.open_feed(&id).unwrap();
    assert_eq!(second.watchers(), 2);
    drop(feed);
    assert_eq!(second.watchers(), 1, "a closed feed unregisters at once");
}

#[test]
fn a_lagging_client_is_resynced_from_a_fresh_snapshot_never_a_torn_tail() {
    // A small per-client cap, so that the flood below certainly overflows it.
    let limits = pty_console::feed::FeedLimits {
        max_bytes: 16 * 1024,
        max_frames: 64,
    };
    let h = Harness::start_with("feed-lag", limits);
    let id = h.shell("lag");
    h.wait_screen(&id, "the prompt", has_prompt);
    let mut feed = h.console.open_feed(&id).unwrap();
    let mut model = None;
    replay(&feed.poll(Duration::from_millis(10)).unwrap(), &mut model);
    // Far more chunks than a subscriber queue holds, while this client reads nothing.
    h.console
        .manager()
        .write_raw(
            &id,
            b"i=0; while [ $i -lt 30000 ]; do echo line-$i; i=$((i+1)); done; echo DONE-$((1+1))\r",
        )
        .unwrap();
    h.wait_screen(&id, "the end of the flood", |l| {
        l.iter().any(|l| l == "DONE-2")
    });
    // Everything the client now gets must paint exactly the real screen.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let frames = feed.poll(Duration::from_millis(200)).unwrap();
        replay(&frames, &mut model);
        let real = h.console.manager().snapshot(&id).unwrap().lines;
        if frames.is_empty() && model.as_ref().unwrap().lines() == real {
            break;
        }
        assert!(Instant::now() < deadline, "the client never caught up");
    }
    assert!(feed.resyncs() >= 1, "the flood must have lagged the client");
    assert!(model.unwrap().lines().iter().any(|l| l == "DONE-2"));
}

#[test]
fn status_events_reach_the_feed() {
    let h = Harness::start("feed-status");
    let id = h.shell("status");
    h.wait_screen(&id, "the prompt", has_prompt);
    let mut feed = h.console.open_feed(&id).unwrap();
    let _ = feed.poll(Duration::from_millis(10)).unwrap();
    h.console.manager().write_raw(&id, b"exit 3\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut texts = Vec::new();
    while !texts
        .iter()
        .any(|t: &String| t.contains("\"kind\":\"stopped\""))
    {
        assert!(Instant::now() < deadline, "no stopped event: {texts:?}");
        for f in feed.poll(Duration::from_millis(100)).unwrap() {
            if let WireFrame::Text(t) = f {
                texts.push(t);
            }
        }
    }
    let stopped = texts
        .iter()
        .find(|t| t.contains("\"kind\":\"stopped\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stopped).unwrap();
    assert_eq!(v["event"]["reason"], "exit code 3");
    assert_eq!(v["event"]["session"]["id"], id.as_str());
}
