//! The simulated world in the data directory: `sim-state.json`, written after every change with
//! an atomic replace (a temporary file in the same directory, synced, then renamed over the old
//! one), so a crash leaves the old or the new state, never half of one. Before each call the file
//! is re-read if another process replaced it since (its modification time or length changed), so
//! `scan` and `audit` in two processes see one account. Two processes writing at the same
//! instant can still lose one change: this is not a database (no file lock yet).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::SimError;
use super::state::{WORLD_VERSION, World};

/// The state file's name in the data directory.
pub const STATE_FILE: &str = "sim-state.json";

/// The state file and what we last saw of it.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl Store {
    /// The store in `data_dir`, created if missing.
    pub fn new(data_dir: &Path) -> Result<Store, SimError> {
        fs::create_dir_all(data_dir).map_err(|source| SimError::Io { path: data_dir.to_owned(), source })?;
        Ok(Store { path: data_dir.join(STATE_FILE), seen: None })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn stamp(&self) -> Result<Option<(SystemTime, u64)>, SimError> {
        match fs::metadata(&self.path) {
            Ok(m) => {
                let modified = m.modified().map_err(|source| SimError::Io { path: self.path.clone(), source })?;
                Ok(Some((modified, m.len())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SimError::Io { path: self.path.clone(), source }),
        }
    }

    /// The saved world, if there is one.
    pub fn load(&mut self) -> Result<Option<World>, SimError> {
        let stamp = self.stamp()?;
        if stamp.is_none() {
            return Ok(None);
        }
        let text = fs::read(&self.path).map_err(|source| SimError::Io { path: self.path.clone(), source })?;
        let world: World =
            serde_json::from_slice(&text).map_err(|source| SimError::Json { path: self.path.clone(), source })?;
        if world.version != WORLD_VERSION {
            return Err(SimError::Version { path: self.path.clone(), found: world.version, expected: WORLD_VERSION });
        }
        self.seen = stamp;
        Ok(Some(world))
    }

    /// Replace `world` with the file's if another process saved since we last loaded or saved.
    pub fn refresh(&mut self, world: &mut World) -> Result<(), SimError> {
        let stamp = self.stamp()?;
        if stamp.is_some()
            && stamp != self.seen
            && let Some(w) = self.load()?
        {
            *world = w;
        }
        Ok(())
    }

    /// Write `world` atomically.
    pub fn save(&mut self, world: &World) -> Result<(), SimError> {
        let io = |source| SimError::Io { path: self.path.clone(), source };
        let json = serde_json::to_vec(world).map_err(|source| SimError::Json { path: self.path.clone(), source })?;
        let tmp = self.path.with_extension(format!("json.tmp-{}", std::process::id()));
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(io)?;
        self.seen = self.stamp()?;
        Ok(())
    }
}
