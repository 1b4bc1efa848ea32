//! Path resolution inside a scanned root, for the readers that resolve names themselves (a
//! directory tree of the scanner's own filesystem, and filesystems assembled from several): walk
//! the components, expand symlinks as the kernel does, but inside the scanned root — absolute
//! targets restart at the root, `..` never climbs above it — with at most [`MAX_SYMLINKS`] links
//! and [`MAX_PATH_LEN`] bytes of pending path.

use super::FsError;

/// Most symlinks followed while resolving one path (Linux's own limit, `MAXSYMLINKS`).
pub const MAX_SYMLINKS: usize = 40;
/// Longest path accepted while resolving (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;

/// What one resolved prefix of a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Dir,
    Symlink,
    /// A file or special file: nothing can be below it.
    Leaf,
}

/// The components of a path, without empty ones.
#[must_use]
pub fn split(path: &str) -> Vec<String> {
    path.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// Resolve `path` to its symlink-free components. `lstat(comps, is_last)` says what the path made
/// of `comps` is (every component but the last is already known to be a directory, no symlink);
/// `readlink(comps)` gives a symlink's target. With `follow_last` false a final symlink is kept.
///
/// # Errors
///
/// What the callbacks return, [`FsError::SymlinkLoop`] past the bounds, [`FsError::NotADir`] for
/// a name below a file.
pub fn resolve(
    path: &str,
    follow_last: bool,
    mut lstat: impl FnMut(&[String], bool) -> Result<Step, FsError>,
    mut readlink: impl FnMut(&[String]) -> Result<String, FsError>,
) -> Result<Vec<String>, FsError> {
    let mut pending: Vec<String> = split(path).into_iter().rev().collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0usize;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(c);
        let is_last = pending.is_empty();
        match lstat(&resolved, is_last)? {
            Step::Symlink if !is_last || follow_last => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                let target = readlink(&resolved)?;
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let rest_len: usize = pending.iter().map(|s| s.len() + 1).sum();
                if target.len() + rest_len > MAX_PATH_LEN {
                    return Err(FsError::SymlinkLoop { path: path.to_owned() });
                }
                pending.extend(split(&target).into_iter().rev());
            }
            Step::Leaf if !is_last => return Err(FsError::NotADir { path: path.to_owned() }),
            Step::Dir | Step::Leaf | Step::Symlink => {}
        }
    }
    Ok(resolved)
}
