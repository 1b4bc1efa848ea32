//! agentless: scans EC2 instances for installed software and configuration weaknesses without
//! installing anything on them. This crate is the orchestrator; the guest agent that reads the
//! snapshotted disks is the `scanner-ami` crate.
//!
//! Modules: [`cli`] (the command line), [`cloud`] (the cloud seam, its policy guard, the AWS
//! backend and the simulated account [`cloud::sim`]), [`policy`] (IAM policy evaluation), [`job`]
//! (the scan job's state machine), [`ledger`] (the durable record of jobs), [`collector`] (result
//! bundles), [`schedule`] and [`api`] (the daemon), [`audit`] (the leak auditor), [`report`] and
//! [`vuln`] (results and vulnerability findings). The design is in docs/ (docs/architecture.md
//! first).

pub mod api;
pub mod audit;
pub mod cli;
pub mod cloud;
pub mod collector;
pub mod events;
pub mod job;
pub mod ledger;
pub mod policy;
pub mod report;
pub mod schedule;
pub mod teardown;
pub mod trail;
pub mod vuln;
