//! Integration tests (real git, loopback GitHub).
