//! What the CloudTrail → S3 → SQS pipeline gives the daemon (docs/trail.md): scans of instances
//! that events show changed, and a cross-check of every CloudTrail record of our principal
//! against the calls we sent.
//!
//! - [`reader`]: one account's pipeline: the queue, the log objects (each read once), the ledger.
//! - [`analyze`]: what a log file's records mean (pure): scans, our records, alerts.
//! - [`recorder`]: the guard's hook that records each call our principal sends.
//!
//! The daemon ([`crate::schedule::daemon`]) runs one reader per account with a pipeline and starts
//! the due event scans as runs of the reserved schedule [`EVENTS`].

pub mod analyze;
pub mod config;
pub mod reader;
pub mod recorder;

/// The reserved schedule name of event-driven runs.
pub const EVENTS: &str = "events";
