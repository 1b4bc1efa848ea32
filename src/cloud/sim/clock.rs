//! The simulation's timeline: milliseconds that follow tokio's clock, so a test or a fleet run
//! that pauses it (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) gets virtual time —
//! instant, deterministic waits — while a normal run gets real time.
//!
//! A world opened from the data directory continues from the later of the time it was saved at
//! and the wall clock, so snapshot and boot deadlines written by an earlier process fall due
//! as they would on AWS, and the timeline never goes back.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Timeline milliseconds = `base_ms` + time elapsed on tokio's clock since `origin`.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: u64,
    origin: Instant,
}

impl Clock {
    /// A clock that starts at the later of `saved_ms` and the wall clock (Unix milliseconds).
    #[must_use]
    pub fn resume(saved_ms: u64) -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Clock { base_ms: saved_ms.max(wall), origin: Instant::now() }
    }

    /// Now, on the timeline.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_ms.saturating_add(elapsed)
    }
}
