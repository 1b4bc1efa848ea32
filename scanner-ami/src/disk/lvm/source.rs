//! [`LvSource`]: a logical volume's bytes as a [`BlockSource`]. Each read is mapped through the
//! LV's segments onto regions of the PVs and split at segment and stripe-chunk boundaries; nothing
//! is buffered beyond the caller's own buffer.

use std::io;

use crate::disk::{BlockSource, Region};

/// What one segment maps to.
#[derive(Debug, Clone)]
pub enum Target {
    /// One contiguous area (a linear segment).
    Linear(Region),
    /// Chunks of `stripe_size` bytes dealt round the areas in turn (dm-stripe's layout).
    Striped { stripe_size: u64, areas: Vec<Region> },
    /// Reads as zeros.
    Zero,
}

/// One segment: `[start, start + len)` of the LV.
#[derive(Debug, Clone)]
pub struct Segment {
    pub start: u64,
    pub len: u64,
    pub target: Target,
}

/// The bytes of one logical volume.
#[derive(Debug, Clone)]
pub struct LvSource {
    name: String,
    len: u64,
    /// Sorted by `start`, contiguous from 0 to `len`.
    segments: Vec<Segment>,
}

impl LvSource {
    /// An LV of the given contiguous segments (checked: they must tile `[0, len)` in order).
    pub fn new(name: String, segments: Vec<Segment>) -> Result<Self, String> {
        let mut end: u64 = 0;
        for s in &segments {
            if s.start != end || s.len == 0 {
                return Err(format!("LV {name}: segments do not tile the volume"));
            }
            end = end.checked_add(s.len).ok_or_else(|| format!("LV {name}: size overflows"))?;
        }
        Ok(LvSource { name, len: end, segments })
    }

    fn err(&self, what: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("LV {}: {what}", self.name))
    }
}

impl BlockSource for LvSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= self.len).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at {offset} past the end of LV {} ({} bytes)",
                    buf.len(),
                    self.name,
                    self.len
                ),
            )
        })?;
        let mut pos = offset;
        let mut done = 0usize;
        while pos < end {
            // The segment holding `pos`: the last one starting at or before it.
            let i = self.segments.partition_point(|s| s.start <= pos).checked_sub(1);
            let seg = i.and_then(|i| self.segments.get(i)).ok_or_else(|| self.err(format!("no segment at {pos}")))?;
            let in_seg = pos - seg.start;
            let left_in_seg = seg
                .len
                .checked_sub(in_seg)
                .filter(|&l| l > 0)
                .ok_or_else(|| self.err(format!("no segment at {pos}")))?;
            let want = (end - pos).min(left_in_seg);
            let (n, dst_src): (u64, Option<(&Region, u64)>) = match &seg.target {
                Target::Linear(r) => (want, Some((r, in_seg))),
                Target::Zero => (want, None),
                Target::Striped { stripe_size, areas } => {
                    let stripes = areas.len() as u64;
                    if *stripe_size == 0 || stripes == 0 {
                        return Err(self.err("striped segment without stripes".into()));
                    }
                    let chunk = in_seg / stripe_size;
                    let in_chunk = in_seg % stripe_size;
                    let area = areas
                        .get(usize::try_from(chunk % stripes).unwrap_or(usize::MAX))
                        .ok_or_else(|| self.err("stripe index out of range".into()))?;
                    let area_off = (chunk / stripes)
                        .checked_mul(*stripe_size)
                        .and_then(|o| o.checked_add(in_chunk))
                        .ok_or_else(|| self.err("stripe offset overflows".into()))?;
                    (want.min(stripe_size - in_chunk), Some((area, area_off)))
                }
            };
            let n_usize = usize::try_from(n).map_err(|_| self.err("read too large".into()))?;
            let dst = buf
                .get_mut(done..done.saturating_add(n_usize))
                .ok_or_else(|| self.err("read split out of range".into()))?;
            match dst_src {
                Some((region, at)) => region.read_exact_at(at, dst)?,
                None => dst.fill(0),
            }
            pos += n;
            done += n_usize;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::disk::MemDisk;

    fn disk(fill: impl Fn(usize) -> u8, len: usize) -> Arc<dyn BlockSource> {
        Arc::new(MemDisk((0..len).map(fill).collect()))
    }

    #[test]
    fn striped_reads_follow_dm_stripe_chunks_and_split_at_boundaries() {
        // two PVs of 64 bytes; stripes of 8 bytes: LV chunk c lives on PV c % 2 at row c / 2.
        let a = disk(|i| i as u8, 64);
        let b = disk(|i| 100 + i as u8, 64);
        let seg = Segment {
            start: 0,
            len: 64,
            target: Target::Striped {
                stripe_size: 8,
                areas: vec![Region::new(a, 16, 32).expect("a"), Region::new(b, 0, 32).expect("b")],
            },
        };
        let tail = Segment { start: 64, len: 16, target: Target::Zero };
        let lv = LvSource::new("t".into(), vec![seg, tail]).expect("tiles");
        assert_eq!(lv.len(), 80);
        let mut all = vec![0xffu8; 80];
        lv.read_exact_at(0, &mut all).expect("read");
        let mut expect = Vec::new();
        for c in 0..8u64 {
            let row = c / 2;
            for k in 0..8u64 {
                expect.push(if c % 2 == 0 { (16 + row * 8 + k) as u8 } else { (100 + row * 8 + k) as u8 });
            }
        }
        expect.extend([0u8; 16]);
        assert_eq!(all, expect);
        // an unaligned read across a chunk, a segment and into the zero tail equals the slice
        let mut part = vec![0u8; 30];
        lv.read_exact_at(45, &mut part).expect("read");
        assert_eq!(part, expect[45..75]);
        assert!(lv.read_exact_at(70, &mut [0u8; 11]).is_err());
    }

    #[test]
    fn segments_that_do_not_tile_are_refused() {
        let s = Segment { start: 8, len: 8, target: Target::Zero };
        assert!(LvSource::new("gap".into(), vec![s]).is_err());
    }
}
