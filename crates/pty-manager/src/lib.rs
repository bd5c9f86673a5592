//! Synchronous PTY session manager.
//!
//! `pty-manager` runs programs in pseudo-terminals on one `mio` reactor thread, keeps a `vt100`
//! screen model per session, and (in later modules) reads that screen with a rule-driven detection
//! engine to tell what each session is doing.
#![deny(missing_docs)]

mod adapter;
mod autorespond;
mod clock;
mod env;
mod error;
pub mod events;
mod explain;
pub mod keys;
mod manager;
mod pty;
mod queue;
mod reactor;
mod ring;
mod rules;
mod screen;
mod session;
mod shadow;
mod skim;
mod snapshot;
mod stall;
mod status;

pub use adapter::{Adapter, DeclarativeAdapter, ShellAdapter};
pub use autorespond::{
    AUDIT_CAPACITY, AuditRecord, AuditSource, AutoResponsePolicy, ReportReason, decide,
};
pub use clock::{Clock, FakeClock, SystemClock};
pub use env::PASS_THROUGH as PASS_THROUGH_ENV;
pub use error::Error;
pub use events::{ExitInfo, Message, MessageKind, SessionEvent, SessionInfo, SessionMetrics};
pub use explain::{
    Detector, Explanation, LoginInfo, Observation, ObservedHit, PromptHit, PromptInfo, RuleMatch,
    ScreenState, TURN_OUTPUT_MAX, explain,
};
pub use manager::{
    Attachment, DEFAULT_STOP_GRACE, OutputChunk, PtyManager, SHUTDOWN_GRACE, SpawnConfig,
};
pub use queue::QueueReceiver;
pub use ring::RawRing;
pub use rules::{
    AdapterManifest, CompiledRule, Evaluation, InputStyle, LoginMethod, MANIFEST_SCHEMA,
    PromptType, Region, Response, ResponseSpec, RuleHit, RuleSet, RuleSpec, Signal, region_text,
};
pub use screen::{DEFAULT_SCROLLBACK, FEED_MAX, Screen};
pub use session::{
    Action, BlockingPromptInfo, CompletionSource, DetectionEvent, DetectionOptions, HookEvent,
    SessionConfig, SessionMachine,
};
pub use snapshot::ScreenSnapshot;
pub use stall::{
    Classification, Normalizer, StallClassifier, StallConfig, StallContext, redact_for_classifier,
};
pub use status::SessionStatus;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
