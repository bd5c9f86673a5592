//! One client's bounded outgoing queue: the ordering, cap and resync rules of BEHAVIOR.md §9, kept
//! free of sockets and threads so they can be tested exactly.
//!
//! A client first gets a snapshot (a JSON text frame, then the bytes that paint the screen) and then
//! output and status frames in the order they arrived. When the client falls behind — its queue
//! would pass the byte or frame cap, or the manager reports that this subscriber lagged — everything
//! queued is dropped and the queue asks for a fresh snapshot. Nothing after a gap is ever sent
//! until that snapshot is in, so a client never paints a torn tail of output.

use std::collections::VecDeque;

/// Binary frames of output are merged up to this size before they are sent.
pub const MERGE_LIMIT: usize = 64 * 1024;

/// Caps of one client's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// Most bytes queued for one client.
    pub max_bytes: usize,
    /// Most frames queued for one client.
    pub max_frames: usize,
}

impl Default for FeedLimits {
    /// 1 MiB or 1024 frames (the manager's own subscriber queue is 1024 chunks).
    fn default() -> Self {
        FeedLimits {
            max_bytes: 1024 * 1024,
            max_frames: 1024,
        }
    }
}

/// A WebSocket frame to send: JSON text or terminal bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireFrame {
    /// A JSON message (`snapshot`, `status`, `error`).
    Text(String),
    /// Terminal output (or the bytes painting a snapshot).
    Binary(Vec<u8>),
}

impl WireFrame {
    /// Bytes of payload.
    pub fn byte_len(&self) -> usize {
        match self {
            WireFrame::Text(t) => t.len(),
            WireFrame::Binary(b) => b.len(),
        }
    }
}

/// What the sender should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send these frames, in order.
    Send(Vec<WireFrame>),
    /// The client fell behind: take a fresh snapshot and call [`FeedQueue::begin`].
    Resync,
    /// Nothing to do.
    Idle,
}

/// The bounded queue of one client (see the module docs).
#[derive(Debug)]
pub struct FeedQueue {
    limits: FeedLimits,
    frames: VecDeque<WireFrame>,
    bytes: usize,
    resync: bool,
    /// Frames dropped because of lag, since the queue was made.
    dropped: u64,
    /// Resyncs asked for, since the queue was made.
    resyncs: u64,
    /// The back frame is a snapshot's paint frame, which must stay whole.
    paint_at_back: bool,
}

impl FeedQueue {
    /// An empty queue that first needs a snapshot ([`FeedQueue::pop_batch`] answers `Resync`).
    pub fn new(limits: FeedLimits) -> Self {
        FeedQueue {
            limits,
            frames: VecDeque::new(),
            bytes: 0,
            resync: true,
            dropped: 0,
            resyncs: 0,
            paint_at_back: false,
        }
    }

    /// Starts (or restarts) the client from a snapshot: drops whatever was queued, then queues the
    /// snapshot's JSON and the bytes that paint its screen. Later pushes follow it.
    pub fn begin(&mut self, snapshot_json: String, formatted: Vec<u8>) {
        self.frames.clear();
        self.bytes = 0;
        self.resync = false;
        // A snapshot always fits: it is what a client needs to start again.
        self.bytes += snapshot_json.len() + formatted.len();
        self.frames.push_back(WireFrame::Text(snapshot_json));
        self.frames.push_back(WireFrame::Binary(formatted));
        self.paint_at_back = true;
    }

    /// Queues output bytes (merged into the previous output frame when that stays small).
    pub fn push_output(&mut self, data: &[u8]) {
        if self.resync {
            self.dropped += 1;
            return;
        }
        if !self.fits(data.len()) {
            self.overflow();
            return;
        }
        self.bytes += data.len();
        if let Some(WireFrame::Binary(last)) = self.frames.back_mut() {
            // Never merge into the snapshot's paint frame: it is the second of a pair.
            if !self.paint_at_back && last.len() + data.len() <= MERGE_LIMIT {
                last.extend_from_slice(data);
                return;
            }
        }
        self.paint_at_back = false;
        self.frames.push_back(WireFrame::Binary(data.to_vec()));
    }

    /// Queues a status message (JSON).
    pub fn push_status(&mut self, json: String) {
        if self.resync {
            self.dropped += 1;
            return;
        }
        if !self.fits(json.len()) {
            self.overflow();
            return;
        }
        self.bytes += json.len();
        self.paint_at_back = false;
        self.frames.push_back(WireFrame::Text(json));
    }

    /// The producer dropped data for this client (the manager's `Lagged`, a missed event): the
    /// stream has a gap, so the client must start again from a snapshot.
    pub fn lagged(&mut self) {
        self.overflow();
    }

    /// Takes everything queued, or asks for a resync.
    pub fn pop_batch(&mut self) -> Next {
        if self.resync {
            return Next::Resync;
        }
        if self.frames.is_empty() {
            return Next::Idle;
        }
        self.bytes = 0;
        Next::Send(self.frames.drain(..).collect())
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.bytes
    }

    /// Frames dropped for lag so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Resyncs asked for so far (not counting the first snapshot).
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    fn fits(&self, len: usize) -> bool {
        self.bytes + len <= self.limits.max_bytes && self.frames.len() < self.limits.max_frames
    }

    fn overflow(&mut self) {
        if !self.resync {
            self.resyncs += 1;
        }
        self.dropped += self.frames.len() as u64;
        self.frames.clear();
        self.bytes = 0;
        self.resync = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> WireFrame {
        WireFrame::Text(s.to_owned())
    }
    fn bin(b: &[u8]) -> WireFrame {
        WireFrame::Binary(b.to_vec())
    }

    #[test]
    fn a_new_client_starts_with_a_snapshot() {
        let mut q = FeedQueue::new(FeedLimits::default());
        assert_eq!(q.pop_batch(), Next::Resync);
        q.push_output(b"before the snapshot");
        assert_eq!(
            q.pop_batch(),
            Next::Resync,
            "nothing is sent before a snapshot"
        );
        q.begin("{snap}".into(), b"paint".to_vec());
        assert_eq!(
            q.pop_batch(),
            Next::Send(vec![text("{snap}"), bin(b"paint")])
        );
        assert_eq!(q.pop_batch(), Next::Idle);
        assert_eq!(q.resyncs(), 0);
    }

    #[test]
    fn output_and_status_keep_arrival_order() {
        let mut q = FeedQueue::new(FeedLimits::default());
        q.begin("{snap}".into(), b"paint".to_vec());
        q.push_output(b"a");
        q.push_output(b"b");
        q.push_status("{s1}".into());
        q.push_output(b"c");
        q.push_status("{s2}".into());
        assert_eq!(
            q.pop_batch(),
            Next::Send(vec![
                text("{snap}"),
                bin(b"paint"),
                bin(b"ab"),
                text("{s1}"),
                bin(b"c"),
                text("{s2}")
            ])
        );
    }

    #[test]
    fn merged_output_frames_stay_under_the_merge_limit() {
        let mut q = FeedQueue::new(FeedLimits::default());
        q.begin("{}".into(), Vec::new());
        let _ = q.pop_batch();
        let chunk = vec![b'x'; MERGE_LIMIT / 2 + 1];
        q.push_output(&chunk);
        q.push_output(&chunk);
        q.push_output(b"y");
        let Next::Send(frames) = q.pop_batch() else {
            panic!("expected frames")
        };
        assert_eq!(frames.len(), 2);
        assert!(frames.iter().all(|f| f.byte_len() <= MERGE_LIMIT));
        let all: Vec<u8> = frames
            .into_iter()
            .flat_map(|f| match f {
                WireFrame::Binary(b) => b,
                WireFrame::Text(_) => unreachable!(),
            })
            .collect();
        assert_eq!(all.len(), 2 * chunk.len() + 1);
    }

    #[test]
    fn passing_the_byte_cap_drops_everything_and_asks_for_a_snapshot() {
        let mut q = FeedQueue::new(FeedLimits {
            max_bytes: 100,
            max_frames: 1000,
        });
        q.begin("{snap}".into(), b"paint".to_vec());
        let _ = q.pop_batch();
        q.push_output(&[b'a'; 60]);
        q.push_status("{s}".into());
        assert!(q.queued_bytes() <= 100);
        q.push_output(&[b'b'; 60]); // would pass 100 bytes
        assert_eq!(q.queued_bytes(), 0);
        assert_eq!(q.pop_batch(), Next::Resync);
        // Output after the gap is never delivered on its own: it would be a torn tail.
        q.push_output(b"tail");
        q.push_status("{late}".into());
        assert_eq!(q.pop_batch(), Next::Resync);
        q.begin("{fresh}".into(), b"repaint".to_vec());
        q.push_output(b"next");
        assert_eq!(
            q.pop_batch(),
            Next::Send(vec![text("{fresh}"), bin(b"repaint"), bin(b"next")])
        );
        assert_eq!(q.resyncs(), 1);
        assert!(q.dropped() >= 4);
    }

    #[test]
    fn passing_the_frame_cap_also_resyncs() {
        let mut q = FeedQueue::new(FeedLimits {
            max_bytes: 1 << 20,
            max_frames: 4,
        });
        q.begin("{snap}".into(), Vec::new());
        for i in 0..3 {
            q.push_status(format!("{{{i}}}"));
        }
        assert_eq!(q.pop_batch(), Next::Resync);
    }

    #[test]
    fn a_producer_lag_notice_resyncs_even_with_room_left() {
        let mut q = FeedQueue::new(FeedLimits::default());
        q.begin("{snap}".into(), Vec::new());
        q.push_output(b"kept only until the gap");
        q.lagged();
        assert_eq!(q.pop_batch(), Next::Resync);
        q.lagged();
        assert_eq!(q.resyncs(), 1, "one gap, one resync");
    }

    #[test]
    fn the_snapshot_paint_frame_is_never_merged_with_output() {
        let mut q = FeedQueue::new(FeedLimits::default());
        q.begin("{snap}".into(), b"paint".to_vec());
        q.push_output(b"live");
        assert_eq!(
            q.pop_batch(),
            Next::Send(vec![text("{snap}"), bin(b"paint"), bin(b"live")])
        );
    }
}
