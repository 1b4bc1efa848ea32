//! Baseline rules of the system areas (file systems, boot, services, network, audit, logging,
//! cron) on small root trees, one file per area: the fixture trees ([`trees`]), every rule at once
//! on a hardened Ubuntu tree where every rule passes, a neglected one where every rule fails and a
//! minimal one without a package database ([`every_rule`]); then each area's parser edge cases and
//! hostile trees: [`filesystems`] (mount units, fstab specs, the file walk), [`kernel`] (sysctl
//! precedence and masking, modprobe overrides, symlink loops and escapes), [`boot`] (grub, BLS,
//! EFI), [`services`] (firewalls, time sync, cron/at allow files) and [`audit`] (audit rule forms).
//! This file holds the expectation helpers they share.

mod audit;
mod boot;
mod every_rule;
mod filesystems;
mod kernel;
mod services;
mod trees;

use std::time::{Duration, Instant};

use Status::{Error, Fail, NotApplicable as Na, Pass};
use scanner_ami::baseline::{Baseline, Status};
use trees::*;

use crate::util::{Tree, baseline_of, dpkg_installed, rule};

/// Enable `unit` the way `systemctl enable` does: a unit file in /lib/systemd/system and a
/// symlink in /etc/systemd/system/<target>.wants.
fn enable(t: &Tree, target: &str, unit: &str) {
    t.put(&format!("lib/systemd/system/{unit}"), b"[Unit]\nDescription=test\n");
    t.symlink(&format!("etc/systemd/system/{target}.wants/{unit}"), &format!("/lib/systemd/system/{unit}"));
}

/// 1-based line number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1).unwrap_or_else(|| panic!("{needle:?} not in text"))
}

/// One expectation: rule id, status, and optionally an evidence item with this file, line and a
/// `found` (or `note`) containing the text.
type Exp = (&'static str, Status, Option<&'static str>, Option<usize>, &'static str);

#[track_caller]
fn check(b: &Baseline, e: &Exp) {
    let (id, status, file, line, text) = *e;
    let f = rule(b, id);
    assert_eq!(f.status, status, "{id}: {f:#?}");
    if file.is_none() && line.is_none() && text.is_empty() {
        return;
    }
    let hit = f.evidence.iter().any(|ev| {
        file.is_none_or(|x| ev.file.as_deref() == Some(x))
            && line.is_none_or(|x| ev.line == Some(x))
            && (text.is_empty()
                || ev.found.as_deref().is_some_and(|s| s.contains(text))
                || ev.note.as_deref().is_some_and(|s| s.contains(text)))
    });
    assert!(hit, "{id}: no evidence with file {file:?} line {line:?} text {text:?}: {:#?}", f.evidence);
}

fn check_all(b: &Baseline, exps: &[Exp]) {
    for e in exps {
        check(b, e);
    }
}

/// Expectations whose line numbers depend on generated files are checked with these.
#[track_caller]
fn check_line(b: &Baseline, id: &str, status: Status, file: &str, line: usize, text: &str) {
    let f = rule(b, id);
    assert_eq!(f.status, status, "{id}: {f:#?}");
    assert!(
        f.evidence.iter().any(|ev| ev.file.as_deref() == Some(file)
            && ev.line == Some(line)
            && ev.found.as_deref().is_some_and(|s| s.contains(text))),
        "{id}: no evidence {file}:{line} {text:?}: {:#?}",
        f.evidence
    );
}
