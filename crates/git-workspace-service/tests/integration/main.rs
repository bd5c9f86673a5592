//! Integration tests: real `git`, local bare remotes in temporary directories, and the loopback
//! fake GitHub from `test-support`. Every test isolates git from the machine's configuration
//! (its own HOME, GIT_CONFIG_GLOBAL and GIT_CONFIG_NOSYSTEM), so it passes on a fresh CI machine.

mod app_jwt;
mod cleanup;
mod device_flow;
mod forge;
mod hooks;
mod injection;
mod provision;
mod remote_head;
mod secrets;
mod support;
