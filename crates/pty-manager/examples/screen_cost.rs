//! Per-byte cost of [`pty_manager::Screen::process`] on recorded output, against a bare `vt100`
//! parser (no callbacks, no scrollback): `cargo run --release -p pty-manager --example
//! screen_cost -- FILE [CHUNK_BYTES] [REPEATS]`.
//!
//! The file holds the bytes a PTY reader would see (CRLF line ends). Prints the median ns per
//! byte of each over `REPEATS` passes, and of [`pty_manager::Screen::feed`] (what the reactor
//! calls while output floods in) with one flush at the end.

use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: screen_cost FILE [CHUNK_BYTES] [REPEATS]");
        std::process::exit(2);
    };
    let chunk: usize = args
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 * 1024);
    let repeats: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(5);
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("reading {path}: {e}");
        std::process::exit(1);
    });
    let n = data.len() as f64;
    let mut screen_ns = Vec::new();
    let mut feed_ns = Vec::new();
    let mut bare_ns = Vec::new();
    let mut skipped = 0;
    for _ in 0..repeats {
        let mut s = pty_manager::Screen::new(120, 40);
        let t = Instant::now();
        for c in data.chunks(chunk) {
            s.process(c);
        }
        screen_ns.push(t.elapsed().as_nanos() as f64 / n);
        skipped = s.skipped_bytes();
        let rows = std::hint::black_box(s.lines()).len();
        assert_eq!(rows, 40);

        let mut f = pty_manager::Screen::new(120, 40);
        let t = Instant::now();
        for c in data.chunks(chunk) {
            f.feed(c);
        }
        f.flush();
        feed_ns.push(t.elapsed().as_nanos() as f64 / n);
        assert_eq!(
            f.lines(),
            s.lines(),
            "feed and process end on the same screen"
        );

        let nz = |v| std::num::NonZeroU16::new(v).unwrap_or(std::num::NonZeroU16::MIN);
        if std::env::var_os("SCREEN_ONLY").is_some() {
            continue;
        }
        let mut p = vt100::Parser::new(nz(40), nz(120), 0);
        let t = Instant::now();
        for c in data.chunks(chunk) {
            p.process(c);
        }
        bare_ns.push(t.elapsed().as_nanos() as f64 / n);
        std::hint::black_box(p.screen().cursor_position());
    }
    println!(
        "{path}: {} bytes, chunks of {chunk}: Screen::process {:.2} ns/byte ({:.1}% skipped), Screen::feed {:.2} ns/byte, bare vt100 {:.2} ns/byte",
        data.len(),
        median(screen_ns),
        100.0 * skipped as f64 / n,
        median(feed_ns),
        if bare_ns.is_empty() {
            f64::NAN
        } else {
            median(bare_ns)
        },
    );
}
