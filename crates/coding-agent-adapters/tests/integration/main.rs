//! Integration tests of `coding-agent-adapters`: the manifests against real recordings and against
//! ordinary transcript text.

mod fixtures;
mod negative;
mod quoted_dialogs;
mod variants;
