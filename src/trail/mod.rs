//! Readers of what the CloudTrail → S3 → SQS pipeline delivers, for event-driven scans and the
//! cross-check of our own principal's calls. Pure parsing: no AWS calls, no clock, no I/O.
//!
//! The pipeline (CloudTrail User Guide, "Finding your CloudTrail log files"; S3 User Guide,
//! "Event notifications"): a trail writes one gzip-compressed JSON log file per account, Region
//! and about five minutes to its S3 bucket; the bucket sends an S3 event notification for each new
//! object to an SQS queue (directly, or through an SNS topic that wraps it in an envelope); the
//! daemon receives the message, fetches the object and reads its records.
//!
//! Every input here is hostile (a message body, a downloaded object): sizes, counts and nesting
//! are capped, and nothing panics on any input.
//!
//! - [`notification`]: one SQS message body → the S3 test event or the created log objects,
//!   refusing any bucket but the trail's;
//! - [`log`]: one log file's bytes (gzip of `{"Records":[...]}`) → its records, with bad records
//!   counted and skipped;
//! - [`record`]: one record's fields, the EC2 ids and tags it names, and who made the call;
//! - [`triggers`]: which records mean "this instance changed: scan it".

pub mod log;
pub mod notification;
pub mod record;
pub mod triggers;
