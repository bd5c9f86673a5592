//! Runs the fake model server until killed, printing its address, key and each request it serves.
//!
//! `cargo run -p test-support --example fake-model -- [--port-file FILE] [--delay-ms N] [--escalate]`

use std::time::Duration;
use test_support::model::{FakeModel, FakeModelOptions};

fn main() {
    let mut options = FakeModelOptions::default();
    let mut port_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port-file" => port_file = args.next(),
            "--delay-ms" => {
                let ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--delay-ms N");
                options = options.reply_delay(Duration::from_millis(ms));
            }
            "--escalate" => options = options.escalate_commands(true),
            other => panic!("unknown argument {other}"),
        }
    }
    let server = FakeModel::start_with(options).expect("start the fake model server");
    println!(
        "fake model at {} (key {})",
        server.base_url(),
        server.api_key()
    );
    if let Some(f) = port_file {
        std::fs::write(f, server.port().to_string()).expect("write the port file");
    }
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let log = server.requests();
        for r in &log[seen..] {
            println!(
                "{} {} -> {} {:?} tools={:?} user={:?}",
                r.method,
                r.path,
                r.status,
                r.reply,
                r.tools,
                r.user_text.chars().take(80).collect::<String>()
            );
        }
        seen = log.len();
    }
}
