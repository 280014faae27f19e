//! One module per command; `main.rs` parses the arguments and dispatches here.

pub(crate) mod bench;
pub(crate) mod demo;
pub(crate) mod detect;
pub(crate) mod eval;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod suite;
