//! Feeds generated terminal output through the screen model and prints MB/s.
//!
//! ```text
//! cargo run --release -p pty-manager --example screen_throughput [MB]
//! ```

use std::time::Instant;

use pty_manager::Screen;

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    // 80-column printable lines, as a build log or base64 would print them (CRLF as the tty
    // delivers them).
    let mut block = Vec::new();
    for i in 0..1024 {
        let line = format!(
            "{i:06} ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGH"
        );
        block.extend_from_slice(&line.as_bytes()[..79.min(line.len())]);
        block.extend_from_slice(b"\r\n");
    }
    let total = mb * 1_000_000;
    let sb: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(pty_manager::DEFAULT_SCROLLBACK);
    let mut screen = Screen::with_scrollback(120, 40, sb);
    let start = Instant::now();
    let mut fed = 0;
    while fed < total {
        for chunk in block.chunks(65536) {
            screen.process(chunk);
            fed += chunk.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.1} MB in {secs:.2} s: {:.1} MB/s, {:.2} ms/MB",
        fed as f64 / 1e6,
        fed as f64 / 1e6 / secs,
        secs * 1000.0 / (fed as f64 / 1e6)
    );
}
