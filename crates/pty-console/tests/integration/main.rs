//! Integration tests of pty-console: real PTYs, real servers on 127.0.0.1, a real browser.

mod bridge;
mod browser;
mod cdp;
mod first_task;
mod load;
mod prompts;
mod server;
mod support;
