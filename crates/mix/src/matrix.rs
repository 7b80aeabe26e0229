//! Routing mixed stems to a speaker layout.

use std::f32::consts::{FRAC_1_SQRT_2, SQRT_2};

use sonantica_audio::ChannelLayout;

use crate::decorrelate::Decorrelator;
use crate::filter::{Band, LinkwitzRiley};
use crate::mixer::CHUNK;
use crate::{check_block, MixError, Ramp, Role, Source, RAMP_S};

/// Upmix and bass-management settings. All can be changed while playing; gains
/// ramp over 20 ms, delays cross-fade over 20 ms.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct MatrixParams {
    /// Share of the vocals kept in the front pair (0: all in the centre, 1: no
    /// centre). Default 0.2.
    pub vocal_front_share: f32,
    /// Linear gain of the "other" stem kept in the front pair. Default 1/√2.
    pub ambience_front: f32,
    /// Linear gain of the decorrelated surrounds, shared as equal power between the
    /// surround pairs (one pair in 5.1, two in 7.1). Default 1.
    ///
    /// With the defaults, 0.5 + 0.5 · 1 = 1: an ITU-R BS.775 fold-down keeps the
    /// "other" stem's power.
    pub surround_level: f32,
    /// Delay of the left surround, in milliseconds (the right one is 4.3 ms longer,
    /// the 7.1 backs 6 ms longer again), at most 40 ms. Default 15 ms.
    pub surround_delay_ms: f32,
    /// Crossover frequency of the LFE low-pass (and of the mains high-pass), Hz.
    /// Default 80 Hz.
    pub crossover_hz: f32,
    /// Linear gain of the LFE channel. Default 1.
    pub lfe_gain: f32,
    /// High-pass every main channel at the crossover (bass management for small
    /// speakers). Default off: the mains stay full range.
    pub mains_highpass: bool,
}

impl Default for MatrixParams {
    fn default() -> Self {
        Self {
            vocal_front_share: 0.2,
            ambience_front: FRAC_1_SQRT_2,
            surround_level: 1.0,
            surround_delay_ms: 15.0,
            crossover_hz: 80.0,
            lfe_gain: 1.0,
            mains_highpass: false,
        }
    }
}

impl MatrixParams {
    pub(crate) fn validate(&self) -> Result<(), MixError> {
        let bad = |what: &str| Err(MixError::InvalidParameter(what.to_string()));
        if !(0.0..=1.0).contains(&self.vocal_front_share) {
            return bad("vocal_front_share must be within 0..1");
        }
        if !(0.0..=2.0).contains(&self.ambience_front)
            || !(0.0..=2.0).contains(&self.surround_level)
        {
            return bad("ambience_front and surround_level must be within 0..2");
        }
        if !(0.0..=40.0).contains(&self.surround_delay_ms) {
            return bad("surround_delay_ms must be within 0..40");
        }
        if !(20.0..=300.0).contains(&self.crossover_hz) {
            return bad("crossover_hz must be within 20..300 Hz");
        }
        if !(0.0..=4.0).contains(&self.lfe_gain) {
            return bad("lfe_gain must be within 0..4");
        }
        Ok(())
    }
}

/// Where each output channel lives (indices into the output), `None` if absent.
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    fl: usize,
    fr: Option<usize>,
    fc: Option<usize>,
    lfe: Option<usize>,
    /// Surround pairs: (left, right) for backs, then sides.
    pairs: [Option<(usize, usize)>; 2],
}

/// Routes 2 × N stem channels (already mixed by the [`crate::StemMixer`]) to an
/// output layout:
///
/// - **mono**: M = (L + R) / 2: the −6 dB pan law, so a centred source keeps its
///   level and a hard-panned one drops 6 dB;
/// - **stereo**: the sum of the stems;
/// - **2.1**: stereo plus an LFE fed by the mono sum through a 4th-order
///   Linkwitz-Riley low-pass at the crossover (mains optionally high-passed);
/// - **5.1 / 7.1**: vocals' mid to the centre (a share kept in front, and their side
///   always in front), drums and bass to the fronts with their low end to the LFE,
///   guitar and piano to the fronts, "other" partly in front and spread to the
///   surrounds through decorrelators (delays plus all-passes).
///
/// An ITU-R BS.775 fold-down (Lo = L + 0.707 C + 0.707 Ls [+ 0.707 Lb]) of the
/// 5.1/7.1 output gives back the stereo mix exactly for vocals, drums, bass, guitar
/// and piano, and the "other" stem at equal power.
#[derive(Debug, Clone)]
pub struct ChannelMatrix {
    layout: ChannelLayout,
    roles: Vec<Role>,
    rate: u32,
    params: MatrixParams,
    slots: Slots,
    vocal_front: Ramp,
    ambience_front: Ramp,
    surround: Ramp,
    lfe_gain: Ramp,
    lfe_filter: LinkwitzRiley,
    mains_hp: Vec<LinkwitzRiley>,
    decorrelators: Vec<Decorrelator>,
    /// Per-chunk work buffers: l, r, c, low, amb_l, amb_r, and the four ramps.
    buses: [Vec<f32>; 10],
}

impl ChannelMatrix {
    /// A matrix for these stems (in channel order) to `layout` at `sample_rate`.
    pub fn new(
        sources: &[Source],
        layout: ChannelLayout,
        sample_rate: u32,
        params: MatrixParams,
    ) -> Result<Self, MixError> {
        if sources.is_empty() {
            return Err(MixError::NoStems);
        }
        if sources.len() > crate::MAX_STEMS {
            return Err(MixError::TooManyStems(sources.len()));
        }
        params.validate()?;
        let slots = match layout {
            ChannelLayout::Mono | ChannelLayout::Stereo => Slots {
                fl: 0,
                fr: (layout == ChannelLayout::Stereo).then_some(1),
                ..Slots::default()
            },
            ChannelLayout::TwoPointOne => Slots {
                fl: 0,
                fr: Some(1),
                lfe: Some(2),
                ..Slots::default()
            },
            ChannelLayout::FivePointOne => Slots {
                fl: 0,
                fr: Some(1),
                fc: Some(2),
                lfe: Some(3),
                pairs: [Some((4, 5)), None],
            },
            ChannelLayout::SevenPointOne => Slots {
                fl: 0,
                fr: Some(1),
                fc: Some(2),
                lfe: Some(3),
                pairs: [Some((4, 5)), Some((6, 7))],
            },
            other => return Err(MixError::UnsupportedLayout(other)),
        };
        let rate = f64::from(sample_rate);
        let len = (RAMP_S * rate).round() as u32;
        let pairs = slots.pairs.iter().flatten().count();
        let decorrelators = (0..2 * pairs)
            .map(|k| Decorrelator::new(sample_rate, Self::delay_s(&params, k), k))
            .collect();
        let mains = layout.channels() - usize::from(slots.lfe.is_some());
        Ok(Self {
            layout,
            roles: sources.iter().map(|s| s.role()).collect(),
            rate: sample_rate,
            slots,
            vocal_front: Ramp::new(params.vocal_front_share, len),
            ambience_front: Ramp::new(params.ambience_front, len),
            surround: Ramp::new(Self::pair_gain(&params, pairs), len),
            lfe_gain: Ramp::new(params.lfe_gain, len),
            lfe_filter: LinkwitzRiley::new(Band::Low, f64::from(params.crossover_hz), rate),
            mains_hp: vec![
                LinkwitzRiley::new(Band::High, f64::from(params.crossover_hz), rate);
                mains
            ],
            decorrelators,
            params,
            buses: std::array::from_fn(|_| vec![0.0; CHUNK]),
        })
    }

    fn delay_s(p: &MatrixParams, k: usize) -> f64 {
        // k: 0 left back, 1 right back, 2 left side, 3 right side (7.1 sides are the
        // second pair and sit closer: the backs get the extra 6 ms).
        let base = f64::from(p.surround_delay_ms) * 1e-3;
        let right = if k % 2 == 1 { 4.3e-3 } else { 0.0 };
        let back = if k < 2 { 0.0 } else { 6.0e-3 };
        base + right + back
    }

    fn pair_gain(p: &MatrixParams, pairs: usize) -> f32 {
        if pairs == 0 {
            0.0
        } else {
            p.surround_level / (pairs as f32).sqrt()
        }
    }

    /// The output layout.
    pub fn layout(&self) -> ChannelLayout {
        self.layout
    }

    /// The current parameters.
    pub fn params(&self) -> MatrixParams {
        self.params
    }

    /// Changes parameters live: gains ramp, delays cross-fade, the crossover moves
    /// at once (filter state is kept). Does not allocate.
    pub fn set_params(&mut self, params: MatrixParams) -> Result<(), MixError> {
        params.validate()?;
        let pairs = self.slots.pairs.iter().flatten().count();
        self.vocal_front.set(params.vocal_front_share);
        self.ambience_front.set(params.ambience_front);
        self.surround.set(Self::pair_gain(&params, pairs));
        self.lfe_gain.set(params.lfe_gain);
        if params.crossover_hz != self.params.crossover_hz {
            let f = f64::from(params.crossover_hz);
            self.lfe_filter.set_frequency(f);
            for hp in &mut self.mains_hp {
                hp.set_frequency(f);
            }
        }
        for (k, d) in self.decorrelators.iter_mut().enumerate() {
            d.set_delay(Self::delay_s(&params, k), self.rate);
        }
        self.params = params;
        Ok(())
    }

    /// Routes a block: `input` has 2 × stems channels, `output` the layout's.
    pub fn process<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), MixError> {
        let n = check_block(input, 2 * self.roles.len(), output, self.layout.channels())?;
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.run(input, start, output, start, len);
            start += len;
        }
        Ok(())
    }

    /// Routes `len ≤ CHUNK` frames from `input[..][from..]` to `output[..][to..]`.
    ///
    /// Works bus by bus over the whole chunk rather than sample by sample, so the
    /// summing loops vectorise; only the filters and decorrelators run per sample.
    pub(crate) fn run<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        from: usize,
        output: &mut [O],
        to: usize,
        len: usize,
    ) {
        let surround = self.slots.fc.is_some();
        let b = &mut self.buses;
        for bus in b.iter_mut() {
            bus[..len].iter_mut().for_each(|v| *v = 0.0);
        }
        let [l, r, c, low, amb_l, amb_r, vf, af, sg, lfe_gain] = b;
        let ramp_or = |ramp: &mut Ramp, buf: &mut [f32]| {
            if let Some(v) = ramp.fill(buf) {
                buf.iter_mut().for_each(|x| *x = v);
            }
        };
        ramp_or(&mut self.vocal_front, &mut vf[..len]);
        ramp_or(&mut self.ambience_front, &mut af[..len]);
        ramp_or(&mut self.surround, &mut sg[..len]);
        ramp_or(&mut self.lfe_gain, &mut lfe_gain[..len]);
        for (k, role) in self.roles.iter().enumerate() {
            let sl = &input[2 * k].as_ref()[from..from + len];
            let sr = &input[2 * k + 1].as_ref()[from..from + len];
            let add = |bus: &mut [f32], x: &[f32]| bus.iter_mut().zip(x).for_each(|(o, v)| *o += v);
            if !surround {
                add(&mut l[..len], sl);
                add(&mut r[..len], sr);
                continue;
            }
            match role {
                Role::Voice => {
                    // The mid goes to the centre at √2 (so that 0.707·C folds back to
                    // the mid); the side always stays in the fronts.
                    for i in 0..len {
                        let (x, y, g) = (sl[i], sr[i], vf[i]);
                        let mid = 0.5 * (x + y);
                        let side = 0.5 * (x - y);
                        l[i] += g * x + (1.0 - g) * side;
                        r[i] += g * y - (1.0 - g) * side;
                        c[i] += (1.0 - g) * SQRT_2 * mid;
                    }
                }
                Role::Rhythm => {
                    add(&mut l[..len], sl);
                    add(&mut r[..len], sr);
                    for i in 0..len {
                        low[i] += 0.5 * (sl[i] + sr[i]);
                    }
                }
                Role::Harmony => {
                    add(&mut l[..len], sl);
                    add(&mut r[..len], sr);
                }
                Role::Ambience => {
                    for i in 0..len {
                        l[i] += af[i] * sl[i];
                        r[i] += af[i] * sr[i];
                    }
                    add(&mut amb_l[..len], sl);
                    add(&mut amb_r[..len], sr);
                }
            }
        }
        if let Some(lfe) = self.slots.lfe {
            // 2.1 manages the bass of the whole mix; 5.1/7.1 that of drums and bass.
            if !surround {
                for i in 0..len {
                    low[i] = 0.5 * (l[i] + r[i]);
                }
            }
            let out = &mut output[lfe].as_mut()[to..to + len];
            for i in 0..len {
                out[i] = (self.lfe_filter.tick(f64::from(low[i])) as f32) * lfe_gain[i];
            }
        }
        let mut hp = self.mains_hp.iter_mut();
        let highpass = self.params.mains_highpass;
        let mut emit = |out: &mut [f32], src: &[f32]| {
            out.copy_from_slice(src);
            if highpass {
                if let Some(f) = hp.next() {
                    out.iter_mut()
                        .for_each(|v| *v = f.tick(f64::from(*v)) as f32);
                }
            }
        };
        match self.slots.fr {
            None => {
                for i in 0..len {
                    c[i] = 0.5 * (l[i] + r[i]);
                }
                emit(&mut output[self.slots.fl].as_mut()[to..to + len], &c[..len]);
            }
            Some(fr) => {
                emit(&mut output[self.slots.fl].as_mut()[to..to + len], &l[..len]);
                emit(&mut output[fr].as_mut()[to..to + len], &r[..len]);
            }
        }
        if let Some(fc) = self.slots.fc {
            emit(&mut output[fc].as_mut()[to..to + len], &c[..len]);
        }
        let mut d = 0;
        for (bl, br) in self.slots.pairs.iter().flatten().copied() {
            for (ch, src, dec) in [(bl, &*amb_l, d), (br, &*amb_r, d + 1)] {
                let dc = &mut self.decorrelators[dec];
                let out = &mut output[ch].as_mut()[to..to + len];
                dc.process(&src[..len], out);
                out.iter_mut().zip(&sg[..len]).for_each(|(v, g)| *v *= g);
                if highpass {
                    if let Some(f) = hp.next() {
                        out.iter_mut()
                            .for_each(|v| *v = f.tick(f64::from(*v)) as f32);
                    }
                }
            }
            d += 2;
        }
    }

    /// Clears filter and delay state and finishes every ramp.
    pub fn reset(&mut self) {
        self.lfe_filter.reset();
        for hp in &mut self.mains_hp {
            hp.reset();
        }
        for d in &mut self.decorrelators {
            d.reset();
        }
        for r in [
            &mut self.vocal_front,
            &mut self.ambience_front,
            &mut self.surround,
            &mut self.lfe_gain,
        ] {
            let t = r.target();
            r.jump(t);
        }
    }

    /// The matrix adds no delay to the front channels (surround delays are part of
    /// the effect).
    pub fn latency_frames(&self) -> usize {
        0
    }
}
