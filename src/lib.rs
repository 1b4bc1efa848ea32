//! agentless: scans EC2 instances for installed software and configuration weaknesses without
//! installing anything on them. This crate is the orchestrator; the guest agent that reads the
//! snapshotted disks is the `scanner-ami` crate.
//!
//! So far: the command-line skeleton, the IAM policy evaluator and the authorization mapping
//! ([`policy`]), and the cloud seam with its policy guard, the AWS backend and the simulated AWS
//! account ([`cloud`], [`cloud::sim`]), the durable ledger ([`ledger`]), and the leak auditor
//! ([`audit`]). The job state machine, collector and scheduler are described in the design
//! (`../shared/DESIGN.md`) and land in later issues.

pub mod api;
pub mod audit;
pub mod cli;
pub mod cloud;
pub mod collector;
pub mod job;
pub mod ledger;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod teardown;
pub mod vuln;
