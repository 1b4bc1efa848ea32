#!/usr/bin/env python3
"""Point module docs and comments into docs/ instead of files outside the repository
(DESIGN.md, ../shared/reference/*.md) and issue numbers, and fix two stale module docs.

Usage (from the repository root):
    python3 docs/apply-module-doc-edits.py            # apply; stops before writing if any edit fails
    python3 docs/apply-module-doc-edits.py --check    # only report what would happen
    python3 docs/apply-module-doc-edits.py --skip-missing  # apply what matches, list the rest
    python3 docs/apply-module-doc-edits.py --markdown # print the table of docs/MODULE-DOC-EDITS.md

Each edit is an exact string replacement (old -> new) in one file, with the number of times
`old` must occur (1 unless stated). Every line an edit changes must be a comment before and
after: `//` comments in Rust files, `#` comments in shell and systemd files; Markdown files are
documentation throughout. An edit that would touch anything else is refused. Nothing is written
unless every edit of every file passes (or --skip-missing is given, which skips failing edits).
"""

import difflib
import os
import sys

# (path, old, new[, count])
EDITS = [
    # --- the two stale module docs named in issue 16, item 7 ---
    ("src/policy/mod.rs",
     "//! IAM identity-policy evaluation: the proof that the orchestrator needs nothing beyond the custom\n"
     "//! policy (`policies/agentless-scan.json`), and the engine behind `agentless policy explain`, the\n"
     "//! simulated account and (later) the policy guard around every cloud call.\n",
     "//! IAM identity-policy evaluation: the engine behind the policy guard around every cloud call\n"
     "//! ([`crate::cloud::Guard`]), the simulated account's IAM, `agentless policy explain` and\n"
     "//! `agentless policy check` (the proof that the orchestrator needs nothing beyond the custom\n"
     "//! policy, `policies/agentless-scan.json`). What each call is authorized as is [`authz`]; the\n"
     "//! policy, the guard's own rules and the policy's gaps are described in docs/policy.md.\n"),
    ("src/schedule/mod.rs",
     "//! Scheduled scans (issue 9; DESIGN.md \"Suggested modules\": `schedule/`): what the daemon\n"
     "//! `agentless serve` runs and when, and how its jobs share the accounts' quotas.\n",
     "//! The scheduled-scan daemon behind `agentless serve`: which scans run when (cron schedules in a\n"
     "//! time zone), how its jobs share each account's quotas and the process's job slots, and the\n"
     "//! daemon's life (jobs resumed on start, the scheduled audit, retention, the graceful stop). Its\n"
     "//! HTTP API is [`crate::api`]; docs/architecture.md (\"The three uses\") has the overview.\n"),
    # src/lib.rs: "So far ... land in later issues" is stale too.
    ("src/lib.rs",
     "//! So far: the command-line skeleton, the IAM policy evaluator and the authorization mapping\n"
     "//! ([`policy`]), and the cloud seam with its policy guard, the AWS backend and the simulated AWS\n"
     "//! account ([`cloud`], [`cloud::sim`]), the durable ledger ([`ledger`]), and the leak auditor\n"
     "//! ([`audit`]). The job state machine, collector and scheduler are described in the design\n"
     "//! (`../shared/DESIGN.md`) and land in later issues.\n",
     "//! Modules: [`cli`] (the command line), [`cloud`] (the cloud seam, its policy guard, the AWS\n"
     "//! backend and the simulated account [`cloud::sim`]), [`policy`] (IAM policy evaluation), [`job`]\n"
     "//! (the scan job's state machine), [`ledger`] (the durable record of jobs), [`collector`] (result\n"
     "//! bundles), [`schedule`] and [`api`] (the daemon), [`audit`] (the leak auditor), [`report`] and\n"
     "//! [`vuln`] (results and vulnerability findings). The design is in docs/ (docs/architecture.md\n"
     "//! first).\n"),
    # src/cloud/sim/faults.rs: the hypervisor exists now.
    ("src/cloud/sim/faults.rs",
     "for the hypervisor\n"
     "//! (issue 6, item 5; not built yet): it must not run the scanner agent for such an instance, which\n"
     "//! then runs — never powering off, never uploading a bundle — until terminated. Until the\n"
     "//! hypervisor exists, no instance powers off by itself, so the flag only marks the intent.\n",
     "for the hypervisor,\n"
     "//! which does not run the scanner agent for such an instance: it runs — never powering off,\n"
     "//! never uploading a bundle — until terminated.\n"),
    ("src/cloud/sim/faults.rs", "can be tested (issue 6, \"Faults injected from a seed\").", "can be tested."),
    # tests/conformance.rs: the simulated account enforces grants now.
    ("tests/conformance.rs",
     "// moto does not enforce grants or their constraints (moto.md 1, KMS); the simulated account\n"
     "    // does not yet either (issue 6).",
     "// moto does not enforce grants or their constraints (docs/references.md, KMS); the simulated\n"
     "    // account does, at RunInstances (tests/sim)."),

    # --- src/collector ---
    ("src/collector/server.rs", "(DESIGN.md,\n//! \"The result bundle\").",
     "(docs/bundle.md,\n//! \"Signature and credential headers\")."),
    ("src/collector/server.rs", "/// The signature header (DESIGN.md, \"The result bundle\").",
     "/// The signature header (docs/bundle.md, \"Signature and credential headers\")."),
    ("src/collector/mod.rs", "//! The collector (DESIGN.md, \"The result bundle\"):",
     "//! The collector (docs/bundle.md, \"The collector's checks\"):"),

    # --- src/job ---
    ("src/job/track.rs", "(DESIGN.md, \"A scan job\"; `crate::ledger::intents`)",
     "(docs/job.md, \"Crash safety and resume\"; `crate::ledger::intents`)"),
    ("src/job/snapshot.rs", "create call (DESIGN.md, \"Tags\");", "create call (docs/tags.md);"),
    ("src/job/budget.rs", "with other jobs (issue 9, item 3):", "with other jobs:"),
    ("src/job/mod.rs", "//! Scan jobs (issue 7; DESIGN.md, \"A scan job\"):", "//! Scan jobs (docs/job.md):"),
    ("src/job/mod.rs", "/// (orchestrator-anchors 4.2); 10 are left",
     "/// (docs/references.md, \"EBS snapshot quotas\"); 10 are left"),
    ("src/job/mod.rs", "changed (orchestrator-anchors 4.3); 2 h",
     "changed (docs/references.md); 2 h"),
    ("src/job/mod.rs", "(orchestrator-anchors §2.5, elastic/cloudbeat #958)",
     "(elastic/cloudbeat issue #958; docs/references.md)"),
    ("src/job/share.rs", "carries;\n//! DESIGN.md \"Tags\"),", "carries;\n//! docs/tags.md),"),
    ("src/job/retry.rs", "(DESIGN.md, \"A scan job\"):", "(docs/cloud-seam.md, \"Pacing and retries\"):"),
    ("src/job/retry.rs", "is 20 s (orchestrator\n/// anchors 4.1), so",
     "is 20 s\n/// (docs/references.md, \"EC2 API throttling\"), so"),
    ("src/job/teardown.rs", "dependency order (DESIGN.md, \"A scan job\"):", "dependency order (docs/job.md, \"Teardown\"):"),

    # --- src/policy ---
    ("src/policy/plan.rs", "has realistic ids and the tags of DESIGN.md:", "has realistic ids and the tags of docs/tags.md:"),
    ("src/policy/plan.rs", "(`../shared/reference/orchestrator-anchors.md` 4.4)",
     "(docs/references.md, \"Volume attachments per instance\")"),
    ("src/policy/plan.rs", "(DESIGN.md teardown)", "(docs/job.md, \"Teardown\")"),

    # --- src/audit ---
    ("src/audit/mod.rs", "//! The leak auditor (issue 8; DESIGN.md \"Tags\" and \"A scan job\"):",
     "//! The leak auditor (docs/tags.md, docs/job.md):"),
    ("src/audit/mod.rs", "(orchestrator-anchors 4.1)", "(docs/references.md, \"EC2 API throttling\")"),
    ("src/audit/delete.rs", "(DESIGN.md \"A\n//! scan job\", teardown)", "(docs/job.md,\n//! \"Teardown\")"),
    ("src/audit/delete.rs", "0.3/s, orchestrator-anchors 4.1)", "0.3/s, docs/references.md)"),
    ("src/audit/retry.rs", "(DESIGN.md \"A scan job\": throttling,", "(docs/cloud-seam.md, \"Pacing and retries\": throttling,"),
    ("src/audit/retry.rs", "calls, orchestrator-anchors 4.1)", "calls, docs/references.md)"),

    # --- src/api, src/cli, src/schedule ---
    ("src/api/mod.rs", "//! The daemon's HTTP API (issue 9, item 4), served", "//! The daemon's HTTP API, served"),
    ("src/api/metrics.rs", "/// orchestrator-anchors 4.3).", "/// docs/references.md, \"Snapshot creation time\")."),
    ("src/cli/audit.rs", "the resources our scans leaked (issue 8).", "the resources our scans leaked."),
    ("src/cli/serve.rs", "the scheduled-scan daemon (issue 9). Reads", "the scheduled-scan daemon. Reads"),
    ("src/schedule/timer.rs", "//! When schedules fire (issue 9, item 2): each", "//! When schedules fire: each"),
    ("src/schedule/dispatch.rs", "shared by every job of the daemon (issue 9, item 3).", "shared by every job of the daemon."),
    ("src/schedule/config.rs", "(quota `L-94D7AB7D`, orchestrator-anchors 4.2)", "(quota `L-94D7AB7D`, docs/references.md)"),
    ("src/schedule/config.rs", "per volume (orchestrator-anchors 4.2).", "per volume (docs/references.md, \"EBS snapshot quotas\")."),
    ("src/schedule/config.rs", "per destination Region (orchestrator-anchors 4.2).",
     "per destination Region (docs/references.md, \"EBS snapshot quotas\")."),
    ("src/schedule/config.rs", "(quota `L-F678F1CE`, orchestrator-anchors 4.5)", "(quota `L-F678F1CE`, docs/references.md)"),

    # --- src/ledger ---
    ("src/ledger/state.rs", "//! (`../shared/DESIGN.md`, \"A scan job\").", "//! (docs/job.md, \"States and transitions\")."),
    ("src/ledger/state.rs", "(as in DESIGN.md)", "(as in docs/job.md)"),
    ("src/ledger/mod.rs", "(issue 7, item 2; DESIGN.md, \"A scan job\")", "(docs/job.md, \"What is persisted\")"),
    ("src/ledger/mod.rs", "auditor\n//! (issue 8) reads", "auditor\n//! reads"),
    ("src/ledger/intents.rs", "(DESIGN.md, \"A scan job\"):", "(docs/job.md, \"Crash safety and resume\"):"),
    ("src/ledger/targets.rs", "fails its targets, not the job; issue 7).", "fails its targets, not the job)."),
    ("src/ledger/resource.rs", "(DESIGN.md, \"Tags\" and \"A scan job\")", "(docs/tags.md, docs/job.md)"),

    # --- src/vuln ---
    ("src/vuln/osv.rs", "the ranges, reference/vulnerabilities.md §3).", "the ranges, docs/references.md, \"Matching pitfalls\")."),
    ("src/vuln/mod.rs", "//! Vulnerability findings (issue 18): an", "//! Vulnerability findings: an"),
    ("src/vuln/db/mod.rs", "advisory database (issue 18, item 1): OSV", "advisory database: OSV"),
    ("src/vuln/db/limits.rs", "(reference/vulnerabilities.md §1)", "(docs/references.md, \"OSV advisory data\")"),
    ("src/vuln/db/update.rs", "(reference/vulnerabilities.md §1; Amazon", "(docs/references.md, \"OSV advisory data\"; Amazon"),
    ("src/vuln/assess.rs", "//! Assessing stored results (issue 18, item 5): for", "//! Assessing stored results: for"),
    ("src/vuln/matcher/range.rs", "(osv.dev #4383, #5754; reference/vulnerabilities.md §3)",
     "(osv.dev issues #4383, #5754; docs/references.md)"),
    ("src/vuln/matcher/tests.rs", "figure of the design (issue 18): 10,000", "figure of the design: 10,000"),
    ("src/vuln/matcher/mod.rs", "per-CVE records; reference/vulnerabilities.md §3)", "per-CVE records; docs/references.md)"),
    ("src/vuln/matcher/ecosystem.rs", "`ecosystems.json`, reference/vulnerabilities.md\n//! §1)",
     "`ecosystems.json`, docs/references.md,\n//! \"OSV advisory data\")"),

    # --- src/cloud ---
    ("src/cloud/mod.rs", "(DESIGN.md, \"The cloud seam\")", "(docs/cloud-seam.md)"),
    ("src/cloud/mod.rs",
     "//! Exactly those of issue 5 (the scan, the teardown and the leak auditor need them, and the custom\n"
     "//! policy allows them):",
     "//! Exactly those the scan, the teardown and the leak auditor need and the custom policy allows\n"
     "//! (docs/cloud-seam.md):"),
    ("src/cloud/mod.rs", "settings of DESIGN.md (see", "settings of docs/job.md, \"The scanner launch\" (see"),
    ("src/cloud/tags.rs", "//! (`../shared/DESIGN.md`, \"Tags\"): what", "//! (docs/tags.md): what"),
    ("src/cloud/tags.rs", "One deviation from the table in DESIGN.md, forced",
     "One deviation from the original design (docs/tags.md), forced"),
    ("src/cloud/tags.rs", "(DESIGN.md).", "(docs/tags.md).", 3),
    ("src/cloud/ops.rs", "same call; DESIGN.md \"Tags\").", "same call; docs/tags.md)."),
    ("src/cloud/ops.rs", "moto ignores `OwnerIds=self`, `../shared/reference/moto.md`)",
     "moto ignores `OwnerIds=self`, docs/references.md)"),
    ("src/cloud/ops.rs", "(DESIGN.md; Datadog terraform module PR #139)", "(docs/references.md, \"Other AWS facts\")"),
    ("src/cloud/pacer.rs",
     "//! Client-side token buckets (issue 7: \"Client-side token buckets per (account, region, action)\n"
     "//! keep the job under AWS's limits\"): before",
     "//! Client-side token buckets per (account, Region, action), which keep jobs under AWS's limits:\n"
     "//! before"),
    ("src/cloud/pacer.rs", "the rates of orchestrator-anchors\n//! 4.1)", "the rates of docs/references.md,\n//! \"EC2 API throttling\")"),
    ("src/cloud/aws/mod.rs", "//! (`../shared/reference/moto.md`); the throttling", "//! (docs/cloud-seam.md, \"moto\"); the throttling"),
    ("src/cloud/aws/ec2.rs", "(moto.md, 4.4)", "(docs/references.md, \"moto versus AWS\")"),
    ("src/cloud/aws/ec2.rs", "the fixed settings of DESIGN.md:", "the fixed settings of docs/job.md (\"The scanner launch\"):"),
    ("src/cloud/sim/mod.rs", "(DESIGN.md, \"The cloud seam and the\n//! embedded default\")",
     "(docs/cloud-seam.md,\n//! \"The simulated account\")"),
    ("src/cloud/sim/mod.rs", "(`../shared/reference/moto.md` 1-3)", "(docs/references.md, \"moto versus AWS\")"),
    ("src/cloud/sim/mod.rs", "of orchestrator-anchors 4 (", "of docs/references.md ("),
    ("src/cloud/sim/hypervisor.rs", "hypervisor (issue 6, item 5): when", "hypervisor: when"),
    ("src/cloud/sim/snapshots.rs", "used size (orchestrator-anchors 4.3);", "used size (docs/references.md, \"Snapshot creation time\");"),
    ("src/cloud/sim/snapshots.rs", "//! - Quotas (orchestrator-anchors 4.2):", "//! - Quotas (docs/references.md):"),
    ("src/cloud/sim/snapshots.rs", "(moto.md 1: AWS", "(unlike moto; AWS"),
    ("src/cloud/sim/compute.rs", ", orchestrator-anchors 4.4)", ", docs/references.md)"),
    ("src/cloud/sim/network.rs", "which moto lacks (moto.md 1, \"Deletes in the wrong\n//! order\"):",
     "which moto lacks\n//! (docs/references.md, \"moto versus AWS\"):"),
    ("src/cloud/sim/network.rs", "//! Quotas (orchestrator-anchors 4.5):", "//! Quotas (docs/references.md, \"VPC quotas\"):"),
    ("src/cloud/sim/fleet.rs", "as on AWS, orchestrator-anchors 4.5)", "as on AWS, docs/references.md)"),
    ("src/cloud/sim/kms.rs", "which moto does not do, moto.md 1 KMS)", "which moto does not do)"),
    ("src/cloud/sim/kms.rs", "(DESIGN.md; Datadog terraform module PR #139)", "(docs/references.md, \"Other AWS facts\")"),
    ("src/cloud/sim/limits.rs",
     "//! Sources: `../shared/reference/orchestrator-anchors.md` section 4 (\"AWS hard limits\"), which\n"
     "//! cites the AWS pages (EBS quotas with their quota codes, VPC quotas, EBS volume limits). Where\n"
     "//! AWS publishes no number (how long a snapshot or a boot takes), the value is marked INFERENCE\n"
     "//! and chosen to be of the order the anchors report.\n",
     "//! Sources: the AWS pages condensed in docs/references.md (EBS quotas with their quota codes, VPC\n"
     "//! quotas, EBS volume limits, EC2 API throttling). Where AWS publishes no number (how long a\n"
     "//! snapshot or a boot takes), the value is marked INFERENCE and chosen to be of the order those\n"
     "//! pages and other scanners report.\n"),
    ("src/cloud/sim/limits.rs", "(quota `L-94D7AB7D`,\n/// orchestrator-anchors 4.2).",
     "(quota `L-94D7AB7D`,\n/// docs/references.md, \"EBS snapshot quotas\")."),
    ("src/cloud/sim/limits.rs", "`SnapshotCreationPerVolumeRateExceeded` (orchestrator-anchors 4.2).",
     "`SnapshotCreationPerVolumeRateExceeded` (docs/references.md)."),
    ("src/cloud/sim/limits.rs", "/// (orchestrator-anchors 4.2 and 0.5).", "/// (docs/references.md, \"EBS snapshot quotas\")."),
    ("src/cloud/sim/limits.rs", "the default VPC counts (orchestrator-anchors 4.5).", "the default VPC counts (docs/references.md)."),
    ("src/cloud/sim/limits.rs", "tied to the VPC quota (orchestrator-anchors 4.5).",
     "tied to the VPC quota (docs/references.md, \"VPC quotas\")."),
    ("src/cloud/sim/limits.rs", "limits\", orchestrator-anchors 4.4).", "limits\"; docs/references.md)."),
    ("src/cloud/sim/limits.rs",
     "The anchors (4.3) say a large first snapshot \"can\n"
     "/// take several hours\" and that Datadog's 15-minute pending timeout is hit in practice;",
     "The EBS User Guide says a large first snapshot \"can\n"
     "/// take several hours\"; Datadog's 15-minute pending timeout is hit in practice (docs/references.md);"),
    ("src/cloud/sim/limits.rs", "/// The buckets of orchestrator-anchors 4.1.", "/// The buckets of docs/references.md, \"EC2 API throttling\"."),
    ("src/cloud/sim/throttle.rs", "as tabulated in\n//! `../shared/reference/orchestrator-anchors.md` 4.1):",
     "as tabulated in\n//! docs/references.md, \"EC2 API throttling\"):"),
    ("src/cloud/sim/throttle.rs", "(their quotas are not in the anchors)", "(their quotas are not in docs/references.md)"),
    ("src/cloud/sim/throttle.rs", "(anchors 4.1)", "(docs/references.md)", 10),
    ("src/cloud/sim/throttle.rs", "(anchors 4.1; membership is the anchors' INFERENCE)",
     "(docs/references.md; the membership is INFERENCE)"),
    ("src/cloud/sim/throttle.rs", "(anchors 4.1: \"CreateSnapshot / CreateSnapshots\")",
     "(docs/references.md, \"EC2 API throttling\")"),

    # --- scanner-ami/src ---
    ("scanner-ami/src/purl.rs", "conventions in reference/inventory-anchors.md 1.2:", "conventions in docs/references.md, \"Package URLs\":"),
    ("scanner-ami/src/agent/upload.rs", "(DESIGN.md, \"The result bundle\")", "(docs/bundle.md)"),
    ("scanner-ami/src/agent/imds.rs", "(DESIGN.md, \"A scan job\")", "(docs/job.md, \"The scanner launch\")"),
    ("scanner-ami/src/agent.rs", "(DESIGN.md, \"The guest agent\")", "(docs/bundle.md, \"The agent's `run` mode\")"),
    ("scanner-ami/src/job.rs", "(DESIGN.md, \"A scan job\")", "(docs/bundle.md, \"The job manifest (user data)\")"),
    ("scanner-ami/src/job.rs", "Nitro types, orchestrator-anchors 1)", "Nitro types, docs/references.md)"),
    ("scanner-ami/src/bundle.rs", "(DESIGN.md, \"The result bundle\")", "(docs/bundle.md)", 2),
    ("scanner-ami/src/inventory/rpm/mod.rs", "(Trivy's list, inventory-anchors 1.1)", "(Trivy's list, docs/references.md)"),
    ("scanner-ami/src/os.rs", "see\n//! reference/inventory-anchors.md 1.1).",
     "see\n//! docs/references.md, \"Package databases and OS detection\")."),
    ("scanner-ami/src/apps/golang.rs", "(reference/app-inventory.md\n//! §2 \"Go\")", "(docs/references.md,\n//! \"Application inventory\")"),
    ("scanner-ami/src/apps/golang.rs", "(reference/app-inventory.md §5)", "(docs/references.md)", 2),
    ("scanner-ami/src/apps/rustaudit.rs", "reference/app-inventory.md §2 \"Rust\")", "docs/references.md, \"Application inventory\")"),
    ("scanner-ami/src/apps/rustaudit.rs", "(reference/app-inventory.md §5)", "(docs/references.md, \"Application inventory bounds\")"),
    ("scanner-ami/src/apps/elf.rs", "(reference/app-inventory.md §3 and §5)", "(docs/references.md, \"Application inventory bounds\")"),
    ("scanner-ami/src/apps/elf.rs", "(reference/app-inventory.md §5)", "(docs/references.md)", 2),
    ("scanner-ami/src/apps/walk.rs", "developer machine measured for reference/app-inventory.md §5: 392,501 regular files)",
     "developer machine held 392,501 regular files, docs/references.md)"),
    ("scanner-ami/src/apps/java.rs", "(reference app-inventory.md, issue B: 64 MiB per\n/// nested jar).",
     "(docs/references.md, \"Application inventory bounds\":\n/// 64 MiB per nested jar)."),
    ("scanner-ami/src/apps/zip.rs", "the research notes' cap (reference\n/// app-inventory.md, issue B);",
     "a bound of docs/references.md\n/// (\"Application inventory bounds\");"),

    # --- tests ---
    ("tests/conformance.rs", "(`../shared/reference/moto.md`)", "(docs/references.md, \"moto versus AWS\")"),
    ("tests/conformance.rs", "moto.md 1", "docs/references.md", 9),
    ("tests/conformance.rs", "moto.md 2", "docs/references.md"),
    ("tests/conformance.rs", "moto.md 3", "docs/references.md"),
    ("tests/moto/hypervisor.rs", "ignored by moto (moto.md):", "ignored by moto (docs/references.md):"),
    ("tests/moto/mod.rs", "(moto.md: start it as", "(start it as"),
    ("tests/sim/semantics.rs", "(moto.md 1-3)", "(docs/references.md)"),
    ("tests/sim/semantics.rs", "(moto deletes it, moto.md 3)", "(moto deletes it)"),
    ("tests/sim/semantics.rs", "(moto.md 3: moto terminates it)", "(moto terminates it)"),
    ("tests/sim/semantics.rs", "(refused as AWS refuses, moto.md 1),", "(refused as AWS refuses),"),
    ("tests/sim/semantics.rs", "(DESIGN.md \"Teardown\")", "(docs/job.md, \"Teardown\")"),
    ("tests/sim/semantics.rs", "(moto.md 1: moto launches a second one)", "(moto launches a second one)"),
    ("tests/sim/semantics.rs", "(moto accepts it,\n/// moto.md 1).", "(moto accepts\n/// it)."),
    ("tests/sim/semantics.rs", "(orchestrator-anchors 4.1)", "(docs/references.md)"),
    ("tests/sim/mod.rs", "// What moto drops (moto.md 1):", "// What moto drops:"),
    ("tests/sim/quotas.rs", "(orchestrator-anchors 4.1, 4.2, 4.4, 4.5)", "(docs/references.md)"),
    ("tests/sim/quotas.rs", "(orchestrator-anchors 4.5)", "(docs/references.md, \"VPC quotas\")"),
    ("tests/sim/quotas.rs", "(orchestrator-anchors 4.4)", "(docs/references.md)"),
    ("tests/sim/quotas.rs", "(orchestrator-anchors 4.1)", "(docs/references.md)"),
    ("tests/ledger.rs", "//! The durable ledger (issue 7, item 2): the", "//! The durable ledger: the"),
    ("tests/chaos/mod.rs", "//! Chaos tests (issue 8, item 5): for", "//! Chaos tests: for"),
    ("tests/job/mod.rs", "//! The orchestrator (issue 7): end to end", "//! The orchestrator: end to end"),
    ("tests/job/vulns.rs", "end to end (issue 18, item 5): the", "end to end: the"),
    ("tests/serve/daemon.rs", "//! The done-when test of issue 9: `agentless serve`", "//! The daemon end to end: `agentless serve`"),
    ("tests/serve/shutdown.rs", "//! Issue 9, item 2: `agentless serve` stopped", "//! The graceful stop: `agentless serve` stopped"),
    ("tests/serve/mod.rs", "//! The scheduled-scan daemon (issue 9): when", "//! The scheduled-scan daemon: when"),
    ("tests/serve/vulns.rs", "on the simulated account (issue 18, item 5):", "on the simulated account:"),
    ("tests/audit/bad_input.rs", "//! Bad input (issue 8, item 6): a customer", "//! Bad input: a customer"),
    ("tests/audit/mod.rs", "(`agentless::audit`, issue 8)", "(`agentless::audit`)"),
    ("tests/vuln/mod.rs", "//! Vulnerability findings (issue 18): the", "//! Vulnerability findings: the"),
    ("tests/vuln/fleet_bench.rs", "through the real path (issue 18, \"Performance\"): 10,000", "through the real path: 10,000"),
    ("tests/vuln/db.rs", "(reference/vulnerabilities.md §1)", "(docs/references.md, \"OSV advisory data\")"),
    ("scanner-ami/tests/agent/apps_meta.rs", "//! Application metadata readers (issue 17): Python", "//! Application metadata readers: Python"),

    # --- scripts ---
    ("scripts/deploy/agentless.service", "daemon `agentless serve` (issue 9).", "daemon `agentless serve`."),
    ("scripts/oscap-crosscheck.sh", "# (inventory-anchors.md 1.3). Output:", "# (docs/references.md, \"Baseline checks (CIS)\"). Output:"),
    ("scripts/oscap-crosscheck.sh", "in chroot mode (inventory-anchors 1.3).", "in chroot mode (docs/references.md)."),
    ("scripts/setup-test-env.sh", "(../shared/reference/moto.md: 5.2.x)", "(docs/cloud-seam.md, \"moto\"; 5.2.x)"),

    # --- README.md, policies/README.md ---
    ("README.md", "(design: `../shared/DESIGN.md`)", "(design: `docs/`, starting at `docs/architecture.md`)"),
    ("README.md", "| `agentless scan` / `jobs` (issue 7) |", "| `agentless scan` / `jobs` |"),
    ("README.md", "| `agentless audit` (issue 8) |", "| `agentless audit` |"),
    ("README.md", "| simulated account (issue 6) |", "| simulated account |"),
    ("README.md", "| vulnerabilities (issue 18) |", "| vulnerabilities |"),
    ("README.md", "| `agentless serve` (issue 9) |", "| `agentless serve` |"),
    ("README.md", "`../shared/reference/inventory-anchors.md` 1.4, each", "`docs/references.md` (\"Baseline checks (CIS)\"), each"),
    ("README.md", "`reference/crates.md` §12: 766 s", "`docs/references.md`, \"Build times\": 766 s"),
    ("policies/README.md",
     "(`../shared/reference/aws-agentless-onboarding.txt`, \"Create a custom policy for Agentless Detection\")",
     "(Alibaba Cloud Security Center, \"Accessing AWS assets using an access key\", section \"Create a custom "
     "policy for Agentless Detection\"; see `docs/policy.md`)"),
    ("policies/README.md", "(`../shared/DESIGN.md`, \"A scan job\")", "(`docs/job.md`)"),
    ("policies/README.md", " (issue 5) |", " |", 2),
]

# References to files outside the repository that are left alone: they are not prose but paths the
# code, tests or scripts read (test fixtures, tools, the RustSec snapshot), or text inside a string
# literal. Listed so that `--markdown` can show them.
KEPT = [
    ("scanner-ami/src/inventory/apk.rs", "../../shared/fixtures/trivy/apk", "test fixture path (code)"),
    ("scanner-ami/src/inventory/rpm/sqlite.rs", "../../shared/fixtures/go-rpmdb/", "test fixture path (code)"),
    ("scanner-ami/src/inventory/rpm/ndb.rs", "../../shared/fixtures/go-rpmdb/", "test fixture path (code)"),
    ("scanner-ami/src/inventory/rpm/bdb.rs", "../../shared/fixtures/go-rpmdb/", "test fixture path (code)"),
    ("scanner-ami/src/inventory/rpm/mod.rs", "../../shared/fixtures/{rel}", "test fixture path (code)"),
    ("scanner-ami/src/inventory/rpm/manifest.rs", "../../shared/fixtures/syft/redhat", "test fixture path (code)"),
    ("scanner-ami/tests/agent/util.rs", "shared/fixtures", "test fixture path (code) and its doc line"),
    ("scanner-ami/tests/agent/apps_meta.rs", "reference/app-inventory.md", "inside a string literal (a test's reason text), not a comment"),
    ("scripts/bench-apps.sh", "../shared/", "fixture and tool paths the script runs"),
    ("scripts/make-demo-image.sh", "../shared/fixtures", "fixture path the script reads"),
    ("scripts/make-demo-fleet.sh", "../shared/fixtures", "fixture path the script reads"),
    ("scripts/test.sh", "../shared", "the RustSec advisory snapshot cargo-audit reads"),
    ("README.md", "../shared/advisory-db", "the RustSec advisory snapshot the test command reads"),
    ("README.md", "../shared/fixtures", "the fixtures the tests read"),
    ("tests/data/demo/README.md", "../shared/fixtures", "where the demo images' package databases came from"),
    ("tests/data/vuln/versions/README.md", "../shared/fixtures/trivy", "provenance of a test vector file"),
]


def is_comment(path, line):
    s = line.strip()
    if path.endswith(".md"):
        return True
    if path.endswith(".rs"):
        return s.startswith("//")
    return s.startswith("#")


def plan(root):
    """Per file: (new text, [(edit, ok, message)])."""
    by_file = {}
    for e in EDITS:
        by_file.setdefault(e[0], []).append(e)
    out = {}
    for path, edits in by_file.items():
        full = os.path.join(root, path)
        try:
            with open(full, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            out[path] = (None, [(e, False, f"cannot read: {err}") for e in edits])
            continue
        results = []
        for e in edits:
            old, new = e[1], e[2]
            want = e[3] if len(e) > 3 else 1
            got = text.count(old)
            if got != want:
                results.append((e, False, f"expected {want} occurrence(s), found {got}"))
                continue
            candidate = text.replace(old, new)
            a, b = text.splitlines(), candidate.splitlines()
            bad = [
                line
                for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
                if tag != "equal"
                for line in a[i1:i2] + b[j1:j2]
                if not is_comment(path, line)
            ]
            if bad:
                results.append((e, False, f"would change a non-comment line: {bad[0].strip()[:80]!r}"))
                continue
            text = candidate
            results.append((e, True, "ok"))
        out[path] = (text, results)
    return out


def line_of(root, path, old):
    try:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return "?"
    i = text.find(old)
    return str(text.count("\n", 0, i) + 1) if i >= 0 else "?"


def md_cell(s):
    # A double-backtick code span may hold single backticks; a table cell needs `|` escaped.
    return "`` " + s.replace("\n", "⏎").replace("|", "\\|") + " ``"


def markdown(root):
    print("| # | file | line | current text | replacement | times |")
    print("|---|---|---|---|---|---|")
    for n, e in enumerate(EDITS, 1):
        want = e[3] if len(e) > 3 else 1
        print(f"| {n} | `{e[0]}` | {line_of(root, e[0], e[1])} | {md_cell(e[1])} | {md_cell(e[2])} | {want} |")
    print()
    print("Left alone (not prose, or not a comment):")
    print()
    print("| file | text | why |")
    print("|---|---|---|")
    for path, text, why in KEPT:
        print(f"| `{path}` | {md_cell(text)} | {why} |")


def main(argv):
    root = os.getcwd()
    if "--markdown" in argv:
        markdown(root)
        return 0
    check = "--check" in argv
    skip = "--skip-missing" in argv
    result = plan(root)
    failed = [(e, msg) for _, rs in result.values() for e, ok, msg in rs if not ok]
    total = sum(len(e) > 3 and e[3] or 1 for e in EDITS)
    for e, msg in failed:
        print(f"FAIL {e[0]}: {msg}: {e[1][:70]!r}", file=sys.stderr)
    long_lines = []
    for path, (text, _) in result.items():
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if path.endswith(".rs") and len(line) > 120 and ("docs/" in line):
                long_lines.append(f"{path}:{i}: {len(line)} characters")
    for l in long_lines:
        print(f"NOTE line over 120 characters (rustfmt leaves comments alone): {l}", file=sys.stderr)
    if check:
        print(f"{len(EDITS) - len(failed)} of {len(EDITS)} edits apply ({total} replacements in all).")
        return 1 if failed else 0
    if failed and not skip:
        print("nothing written (use --skip-missing to apply the edits that match)", file=sys.stderr)
        return 1
    written = 0
    for path, (text, rs) in result.items():
        if text is None or not any(ok for _, ok, _ in rs):
            continue
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            f.write(text)
        written += 1
    print(f"applied {len(EDITS) - len(failed)} of {len(EDITS)} edits to {written} files")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
