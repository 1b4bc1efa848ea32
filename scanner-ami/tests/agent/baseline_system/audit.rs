//! Audit rules (`audit.`): the fallback to /etc/audit/audit.rules, and rules without the auid
//! filters.

use super::*;

#[test]
fn audit_rules_fall_back_to_audit_rules_file() {
    let t = base_ubuntu(&["auditd"]);
    t.put("etc/audit/audit.rules", b"-D\n-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d/ -p rwa -k scope\n-e 2\n");
    let b = baseline_of(t.path());
    check(&b, &("audit.sudoers", Pass, Some("/etc/audit/audit.rules"), Some(3), "-w /etc/sudoers.d/ -p rwa"));
    check(&b, &("audit.sudoers", Pass, None, None, "rules read from /etc/audit/audit.rules"));
    check(&b, &("audit.immutable", Pass, Some("/etc/audit/audit.rules"), Some(4), "-e 2"));
    // Rules without the auid filters do not satisfy the perm_mod group.
    t.put("etc/audit/rules.d/50.rules", b"-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat,chown,fchown,fchownat,lchown,setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr\n");
    let b = baseline_of(t.path());
    check(&b, &("audit.perm_mod", Fail, None, None, "b64: chmod, fchmod, fchmodat, chown"));
    check(&b, &("audit.sudoers", Fail, None, None, "rules read from /etc/audit/rules.d/*.rules"));
}
