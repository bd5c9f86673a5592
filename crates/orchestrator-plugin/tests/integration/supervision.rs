//! Supervision through a real HTTP model client against loopback model servers.
