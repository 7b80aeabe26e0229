//! A compact picture of a whole track for a seek bar: its waveform envelope,
//! where it clips, and its short-term loudness, in at most a few thousand
//! columns.
//!
//! The track is measured in fine columns of [`FINE_S`] seconds while it is
//! read (the length is not always known up front), then merged into at most
//! the number of columns asked for. The fine columns grow with the track: a
//! few hundred kilobytes for an hour. For whole-file analysis, not live use.

/// Seconds per fine column while measuring.
pub const FINE_S: f64 = 0.05;

#[derive(Debug, Clone, Copy)]
struct Column {
    /// Lowest and highest sample over every channel.
    min: f32,
    max: f32,
    /// Samples at or beyond the clip threshold.
    clipped: bool,
    /// Short-term loudness (LUFS) last given for this column.
    loudness: Option<f64>,
}

const EMPTY: Column = Column {
    min: 0.0,
    max: 0.0,
    clipped: false,
    loudness: None,
};

/// Builds an [`Overview`] block by block.
#[derive(Debug, Clone)]
pub struct OverviewBuilder {
    fine: usize,
    threshold: f32,
    columns: Vec<Column>,
    /// Frames into the current fine column.
    filled: usize,
    /// Columns before this one have their loudness.
    marked: usize,
    frames: u64,
    sample_rate: u32,
}

impl OverviewBuilder {
    /// A builder for audio at `sample_rate`, marking samples at or beyond full
    /// scale less two steps of `clip_bits` (what [`crate::ClipCounter`] counts).
    pub fn new(sample_rate: u32, clip_bits: u32) -> Self {
        let lsb = 1.0 / (1u64 << (clip_bits.clamp(8, 32) - 1)) as f64;
        Self {
            fine: ((f64::from(sample_rate) * FINE_S).round() as usize).max(1),
            threshold: (1.0 - 2.0 * lsb) as f32,
            columns: Vec::new(),
            filled: 0,
            marked: 0,
            frames: 0,
            sample_rate,
        }
    }

    /// Adds a block of planar channels (all of one length).
    pub fn process(&mut self, input: &[&[f32]]) {
        let n = input.first().map_or(0, |c| c.len());
        let mut at = 0;
        while at < n {
            if self.filled == 0 {
                self.columns.push(EMPTY);
            }
            let take = (self.fine - self.filled).min(n - at);
            let col = self.columns.last_mut().unwrap_or_else(|| unreachable!());
            for ch in input {
                // Compare-and-select rather than f32::min/max (whose NaN rule
                // keeps LLVM from vectorising); NaN samples are ignored either way.
                let (lo, hi) = ch[at..at + take]
                    .iter()
                    .fold((col.min, col.max), |(lo, hi), &s| {
                        (if s < lo { s } else { lo }, if s > hi { s } else { hi })
                    });
                col.min = lo;
                col.max = hi;
            }
            // A column clips when its extremes reach the threshold.
            col.clipped = col.max >= self.threshold || -col.min >= self.threshold;
            at += take;
            self.filled = (self.filled + take) % self.fine;
        }
        self.frames += n as u64;
    }

    /// Records the short-term loudness now, for every column since the last
    /// reading (call it after each block).
    pub fn loudness(&mut self, lufs: Option<f64>) {
        let lufs = lufs.filter(|l| l.is_finite());
        for col in &mut self.columns[self.marked..] {
            col.loudness = lufs;
        }
        // The current column may still grow: it is marked again next time.
        self.marked = self
            .columns
            .len()
            .saturating_sub(usize::from(self.filled > 0));
    }

    /// Merges the fine columns into at most `max_columns` (each the envelope
    /// of the ones it covers, clipped if any is, at their loudest).
    pub fn finish(&self, max_columns: usize) -> Overview {
        let max_columns = max_columns.max(1);
        let per = self.columns.len().div_ceil(max_columns).max(1);
        let merged: Vec<Column> = self
            .columns
            .chunks(per)
            .map(|c| Column {
                min: c.iter().map(|x| x.min).fold(0.0, f32::min),
                max: c.iter().map(|x| x.max).fold(0.0, f32::max),
                clipped: c.iter().any(|x| x.clipped),
                loudness: c
                    .iter()
                    .filter_map(|x| x.loudness)
                    .fold(None, |a: Option<f64>, l| Some(a.map_or(l, |a| a.max(l)))),
            })
            .collect();
        let quantise = |v: f32| (v.clamp(-1.0, 1.0) * 127.0).round() as i8;
        Overview {
            seconds_per_column: per as f64 * self.fine as f64 / f64::from(self.sample_rate),
            seconds: self.frames as f64 / f64::from(self.sample_rate),
            min: merged.iter().map(|c| quantise(c.min)).collect(),
            max: merged.iter().map(|c| quantise(c.max)).collect(),
            clipped: merged
                .iter()
                .enumerate()
                .filter(|(_, c)| c.clipped)
                .map(|(i, _)| i as u32)
                .collect(),
            loudness: merged
                .iter()
                .map(|c| c.loudness.map(|l| (l * 10.0).round() / 10.0))
                .collect(),
        }
    }
}

/// A track at a glance: per column, the lowest and highest sample (×127), the
/// short-term loudness, and which columns clip.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Overview {
    /// Seconds each column covers (the last may cover less).
    pub seconds_per_column: f64,
    /// Length of the track in seconds.
    pub seconds: f64,
    /// Lowest sample of each column, −127 (−1.0) … 127.
    pub min: Vec<i8>,
    /// Highest sample of each column.
    pub max: Vec<i8>,
    /// Columns with samples at full scale.
    pub clipped: Vec<u32>,
    /// Short-term loudness (3 s, LUFS, to 0.1) at the end of each column;
    /// `None` in silence and the first moments.
    pub loudness: Vec<Option<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_clips_and_columns_merge() {
        let rate = 1000;
        let mut b = OverviewBuilder::new(rate, 16);
        // 10 s: a 0.5 sine, with one second at full scale (4.0..5.0 s).
        let x: Vec<f32> = (0..10 * rate as usize)
            .map(|i| {
                let t = i as f32 / rate as f32;
                let a = if (4.0..5.0).contains(&t) { 1.0 } else { 0.5 };
                a * (t * 2.0 * std::f32::consts::PI * 50.0).sin()
            })
            .collect();
        for (k, block) in x.chunks(333).enumerate() {
            b.process(&[block, block]);
            b.loudness(Some(-20.0 - k as f64 * 0.01));
        }
        let o = b.finish(100);
        assert_eq!(o.min.len(), 100);
        assert!(
            (o.seconds_per_column - 0.1).abs() < 1e-9,
            "{}",
            o.seconds_per_column
        );
        assert!((o.seconds - 10.0).abs() < 1e-9);
        assert_eq!((o.max[10], o.min[10]), (64, -64), "0.5 ≈ 64/127");
        assert_eq!(o.max[45], 127);
        // The full-scale second clips (allowing the sine's own zero crossings).
        assert!(
            o.clipped.iter().all(|&c| (40..50).contains(&c)),
            "{:?}",
            o.clipped
        );
        assert!(o.clipped.len() >= 8, "{:?}", o.clipped);
        assert!(o
            .loudness
            .iter()
            .all(|l| l.is_some_and(|l| (-20.4..=-19.9).contains(&l))));
        // Fewer columns asked for: the envelope of each group.
        let coarse = b.finish(10);
        assert_eq!(coarse.max.len(), 10);
        assert_eq!(coarse.max[4], 127);
        assert_eq!(coarse.clipped, [4]);
    }
}
