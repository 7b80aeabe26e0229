//! Deterministic test signals.
//!
//! The sequences are fixed: tests compare against results made from given seeds,
//! so any change here changes what those tests see.

/// Marsaglia's xorshift64 generator (shifts 13, 7, 17).
#[derive(Debug, Clone)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// A generator that starts from `state` as it is (it must not be zero).
    pub const fn new(state: u64) -> Self {
        Self { state }
    }

    /// A generator whose state is `seed` spread by the golden-ratio constant
    /// (odd, so never zero): small seeds give unrelated sequences.
    pub const fn seeded(seed: u64) -> Self {
        Self::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next state.
    pub fn next_u64(&mut self) -> u64 {
        let mut s = self.state;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.state = s;
        s
    }

    /// Uniform in [-1, 1), from the top 53 bits (computed in f64, then rounded
    /// to f32).
    pub fn next_bipolar(&mut self) -> f32 {
        let s = self.next_u64();
        (((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) as f32
    }

    /// Uniform in [-0.5, 0.5), from the top 24 bits (computed in f32).
    pub fn next_centred(&mut self) -> f32 {
        let s = self.next_u64();
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    /// `n` values of [`XorShift64::next_bipolar`] times `amp`: white noise in
    /// [-amp, amp).
    pub fn bipolar_noise(&mut self, n: usize, amp: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_bipolar() * amp).collect()
    }

    /// `n` values of [`XorShift64::next_centred`] times `scale`: white noise in
    /// [-scale / 2, scale / 2).
    pub fn centred_noise(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next_centred() * scale).collect()
    }
}

/// Deterministic white noise in [-amp, amp): `n` samples from
/// [`XorShift64::seeded`]`(seed)`.
pub fn noise(n: usize, amp: f32, seed: u64) -> Vec<f32> {
    XorShift64::seeded(seed).bipolar_noise(n, amp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequences the meter and mix tests were written against.
    #[test]
    fn noise_matches_the_original_formula() {
        for (amp, seed) in [(1.0f32, 5u64), (0.3, 21), (0.2, 107)] {
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let want: Vec<f32> = (0..1000)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) as f32) * amp
                })
                .collect();
            let got = noise(1000, amp, seed);
            assert!(got
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert!(got.iter().all(|v| (-amp..amp).contains(v)));
        }
    }

    /// The sequence the render CLI test and the render benchmark were written
    /// against.
    #[test]
    fn centred_noise_matches_the_original_formula() {
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        let want: Vec<f32> = (0..1000)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
            })
            .collect();
        let got = XorShift64::new(0x2545_F491_4F6C_DD1D).centred_noise(1000, 0.4);
        assert!(got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
