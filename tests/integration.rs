//! Integration tests of the `agentless` orchestrator binary (one test binary, ripgrep style: one
//! module per area). The guest agent's own tests live in `scanner-ami/tests/agent/`.

mod audit;
mod aws;
mod chaos;
mod cli;
mod cloud;
mod conformance;
mod job;
mod layers;
mod ledger;
mod moto;
mod policy;
mod policy_plan;
mod serve;
mod sim;
mod trail;
mod util;
mod vuln;
