//! Integration tests of `pty-manager`, on real PTYs. One binary, one module per area.

mod core_errors;
mod core_io;
mod core_lifecycle;
mod core_support;
mod detect_machine;
mod detect_pty;
mod detect_review;
mod detect_screen;
mod detect_support;
