//! AWS facts in one place: the numbers AWS publishes (or that we infer, marked INFERENCE) that
//! both the real backend's pacing and the simulated account read, each with its source once, in
//! docs/references.md: [`throttle`] (the EC2 API's token buckets: "EC2 API throttling") and
//! [`limits`] (EBS snapshot quotas, VPC quotas, EBS volume limits per instance, instance-type
//! vCPUs, and the latencies of snapshots and instance state changes).
//!
//! Readers: the client-side [`super::pacer::Pacer`] (rates), the daemon's dispatcher and
//! configuration defaults (quotas, vCPUs), and the simulated account ([`super::sim`], whose fleet
//! file may override the quotas and latencies).

pub mod limits;
pub mod throttle;
