//! File-permission helpers shared by the account, SSH and sudo rules: an attribute (mode, owner, group) of one file checked against a spec resolved from the image's own account databases, and evidence capping.

use super::*;

/// `0644`-style rendering of permission bits.
#[must_use]
pub(crate) fn octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// True if `mode` grants nothing beyond `max` (set-id and sticky bits included).
#[must_use]
pub(crate) fn within(mode: u32, max: u32) -> bool {
    mode & 0o7777 & !max == 0
}

/// Keep at most [`MAX_EVIDENCE`] items, noting how many were left out.
#[must_use]
pub(crate) fn capped(mut ev: Vec<Evidence>) -> Vec<Evidence> {
    if ev.len() > MAX_EVIDENCE {
        let more = ev.len() - MAX_EVIDENCE;
        ev.truncate(MAX_EVIDENCE);
        ev.push(Evidence::note(format!("… and {more} more")));
    }
    ev
}

/// What a file's owner, group and mode must be.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSpec {
    /// Most permissive mode allowed.
    pub max_mode: u32,
    /// Acceptable group names (gid 0 counts as `root`).
    pub groups: &'static [&'static str],
}

/// Which attribute a rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Mode,
    Owner,
    Group,
}

/// Decide one attribute of `path` whose metadata is `meta`: `(compliant, evidence)`, or the
/// reason the group database needed to name the group cannot be read.
pub(crate) fn check_attr(
    ctx: &Ctx<'_>,
    path: &str,
    meta: &Meta,
    attr: Attr,
    spec: FileSpec,
) -> Result<(bool, Evidence), String> {
    let acc = accounts::load(ctx);
    let ev = Evidence::file(path);
    Ok(match attr {
        Attr::Mode => (
            within(meta.mode, spec.max_mode),
            ev.found(octal(meta.mode)).expected(format!("{} or stricter", octal(spec.max_mode))),
        ),
        Attr::Owner => {
            (meta.uid == 0, ev.found(format!("owner {}", acc.user_label(meta.uid))).expected("owner root(0)"))
        }
        Attr::Group => {
            let name = if meta.gid == 0 {
                Some("root".to_owned())
            } else {
                if let Some(e) = &acc.group.error {
                    return Err(format!("cannot name group {} of {path}: {e}", meta.gid));
                }
                acc.group_by_gid(meta.gid).map(|g| g.name.clone())
            };
            let ok = name.as_deref().is_some_and(|n| spec.groups.contains(&n));
            (
                ok,
                ev.found(format!("group {}", acc.group_label(meta.gid)))
                    .expected(format!("group {}", spec.groups.join(" or "))),
            )
        }
    })
}

/// A whole single-file attribute rule: notapplicable when the file does not exist.
pub(crate) fn file_attr(ctx: &Ctx<'_>, path: &str, attr: Attr, spec: FileSpec) -> Outcome {
    let meta = match ctx.stat(path) {
        Err(e) => return Outcome::error(e),
        Ok(None) => return Outcome::na(format!("{path} does not exist")),
        Ok(Some(m)) => m,
    };
    match check_attr(ctx, path, &meta, attr, spec) {
        Ok((ok, ev)) => Outcome::check(ok, vec![ev]),
        Err(e) => Outcome::error(e),
    }
}

/// The world-readable databases: `0644 root:root`.
pub(super) fn public_spec(_: &Ctx<'_>) -> FileSpec {
    FileSpec { max_mode: 0o644, groups: &["root"] }
}

/// The shadow databases: `0000 root:root` on the RHEL family (its `shadow-utils` ships them so and
/// CIS RHEL 9 6.1.5-6.1.8 asks for it), `0640 root:shadow` elsewhere (Debian's `passwd` package,
/// SUSE, Alpine; CIS Ubuntu 22.04 6.1.3/6.1.4/6.1.7/6.1.9 accept group root or shadow).
pub(super) fn shadow_spec(ctx: &Ctx<'_>) -> FileSpec {
    if ctx.family() == Family::Rhel {
        FileSpec { max_mode: 0, groups: &["root"] }
    } else {
        FileSpec { max_mode: 0o640, groups: &["root", "shadow"] }
    }
}
