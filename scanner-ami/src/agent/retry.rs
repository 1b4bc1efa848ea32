//! Exponential backoff with jitter, shared by the IMDS reads and the bundle upload.
//!
//! "Equal jitter": each delay is half the current step plus a uniformly random part of the other
//! half, and the step doubles up to a cap. Many scanners of one job boot and finish together; the
//! random half spreads their retries so they do not hit the collector in lock-step, the fixed half
//! keeps a minimum pause.

use std::time::Duration;

/// Delays of a retry loop.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    /// Start at `initial`, doubling up to `max`.
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff { step: initial.min(max), max }
    }

    /// The next delay to sleep.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let delay = half + (self.step - half).mul_f64(random_fraction());
        self.step = self.step.saturating_mul(2).min(self.max);
        delay
    }
}

/// A uniformly random number in [0, 1), from the OS generator (through a v4 UUID: 122 random bits,
/// of which 53 are used).
fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() >> 75;
    // 53 bits fit an f64's mantissa exactly.
    let bits = u64::try_from(bits).unwrap_or(0);
    // Exact: bits < 2^53.
    let v = bits as f64;
    v / 9_007_199_254_740_992.0 // 2^53
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100), "{d:?}");
        assert!(d[1] >= Duration::from_millis(100) && d[1] <= Duration::from_millis(200), "{d:?}");
        for x in &d[2..] {
            assert!(*x >= Duration::from_millis(200) && *x <= Duration::from_millis(400), "{d:?}");
        }
        let f: Vec<f64> = (0..100).map(|_| random_fraction()).collect();
        assert!(f.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(f.iter().any(|x| *x != f[0]), "not constant");
    }
}
