//! Integration tests of the `agentless` orchestrator binary (one test binary, ripgrep style: one
//! module per area). The guest agent's own tests live in `scanner-ami/tests/agent/`.

mod cli;
mod cloud;
mod policy;
mod policy_plan;
