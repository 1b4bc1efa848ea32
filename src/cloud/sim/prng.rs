//! The simulated account's one source of randomness: a seeded splitmix64 stream that mints
//! AWS-shaped ids and drives the fault engine's draws, so a world and its faults replay exactly
//! from a seed. Its own module so that the world's state and the fault engine both use it without
//! depending on each other.

use serde::{Deserialize, Serialize};

/// splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", 2014): a
/// tiny, well-distributed generator; ids need uniqueness and reproducibility, not secrecy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prng {
    state: u64,
    /// EC2 ids and key ids drawn since the last [`Prng::take_minted`]: what a call created (for
    /// [`super::consistency`]). Not saved.
    #[serde(skip)]
    minted: Vec<String>,
}

impl Prng {
    #[must_use]
    pub fn new(seed: u64) -> Prng {
        Prng { state: seed, minted: Vec::new() }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n + 16);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }

    /// `<prefix>-` + 17 hex digits: an EC2 id.
    pub fn ec2_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}-{}", self.hex(17));
        self.minted.push(id.clone());
        id
    }

    /// The ids minted since the last call, and forget them.
    pub fn take_minted(&mut self) -> Vec<String> {
        std::mem::take(&mut self.minted)
    }

    /// A UUID-shaped KMS key id.
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}
