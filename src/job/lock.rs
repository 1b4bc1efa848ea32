//! Which process runs a job: a process driving a job holds an exclusive advisory lock on
//! `<data_dir>/locks/<job>.lock` (`flock`, released by the kernel when the process dies, even by
//! SIGKILL). So a second `jobs resume` cannot drive the same job twice, and the leak auditor can
//! tell a job whose process is gone (its resources are leaks once past the grace period) from one
//! that is running.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// A held job lock; released on drop.
#[derive(Debug)]
pub struct JobLock {
    _file: File,
    path: PathBuf,
}

impl JobLock {
    /// The lock file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn lock_path(data_dir: &Path, job: &str) -> PathBuf {
    data_dir.join("locks").join(format!("{job}.lock"))
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("job {job} is being run by another agentless process (lock {path} is held)")]
    Held { job: String, path: PathBuf },
    #[error("cannot use the job lock {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Take the lock of `job`, or say who has it.
///
/// # Errors
///
/// Another process holds it, or the file cannot be created.
pub fn acquire(data_dir: &Path, job: &str) -> Result<JobLock, LockError> {
    let path = lock_path(data_dir, job);
    let io = |source| LockError::Io { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(JobLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(LockError::Held { job: job.to_owned(), path }),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Whether some process holds the lock of `job` now.
#[must_use]
pub fn is_held(data_dir: &Path, job: &str) -> bool {
    let path = lock_path(data_dir, job);
    let Ok(file) = OpenOptions::new().write(true).open(&path) else { return false };
    match file.try_lock() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_held(dir.path(), "j1"));
        let l = acquire(dir.path(), "j1").expect("lock");
        assert!(is_held(dir.path(), "j1"));
        assert!(matches!(acquire(dir.path(), "j1"), Err(LockError::Held { .. })));
        drop(l);
        assert!(!is_held(dir.path(), "j1"));
        assert!(acquire(dir.path(), "j1").is_ok());
    }
}
