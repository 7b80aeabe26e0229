//! Tempo and pitch: play a mix slower or faster without changing its pitch, and
//! transpose it without changing its tempo.
//!
//! Written here rather than taken from a crate: the pure-Rust stretchers we
//! measured (see BENCHMARKS.md, "Practice tools") allocate while streaming or
//! give different output for different block sizes, and the Signalsmith and
//! Rubber Band libraries are C++ (and Rubber Band is GPL), which does not build
//! for the `wasm32-unknown-unknown` worklet.
//!
//! The method is a phase vocoder (Laroche and Dolson's "improved phase vocoder"):
//!
//! - **Frames.** Hann-windowed frames of about 93 ms (`n` = 4096 at 44.1 or
//!   48 kHz), synthesised every `n / 4` samples and read from the input every
//!   `n / 4 × tempo / pitch` samples. Frames are zero-phase (rotated so their
//!   centre is sample 0), so the bins of one partial share a phase.
//! - **Frequencies** come from a second, short-hop analysis of the mid signal
//!   (`n / 8` earlier), unambiguous to ±4 bins whatever the tempo.
//! - **Identity phase locking.** Peaks of the mid spectrum advance their phase by
//!   their frequency; every bin in a peak's region turns with its peak, so a
//!   partial stays one partial and the stereo image is kept (every channel turns
//!   by the mid's angle).
//! - **Transients** (an energy jump in the mid, found sample by sample) reset the
//!   phases in the frame nearest to them, shifted so the attack lands exactly at
//!   its time / tempo.
//! - **Pitch** is a time stretch by the pitch ratio followed by a windowed-sinc
//!   resampler (Kaiser, β = 8.6, 12 zero crossings, cut off below the new
//!   Nyquist when shifting up).
//!
//! Time is exact: output sample `y` plays input time `y × tempo` (from where the
//! stretch began), so the player's clock needs no latency correction and a
//! render of `d` seconds at tempo `t` is `d / t` seconds to the sample. The cost
//! is look-ahead: the stretcher reads about 3000 to 5000 input frames ahead of
//! what it plays, which a player of files has.
//!
//! Real-time safe: [`Stretcher::new`] allocates, nothing else does. The output
//! is the same whatever the block sizes (every frame is computed from absolute
//! input positions). At tempo 1 and no transposition the input passes through
//! untouched; turning the stretch on or off crossfades over 12 ms.

use std::f64::consts::{PI, TAU};
use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::MixError;

/// Slowest tempo.
pub const MIN_TEMPO: f64 = 0.5;
/// Fastest tempo.
pub const MAX_TEMPO: f64 = 1.5;
/// Largest transposition either way, in semitones.
pub const MAX_TRANSPOSE: f64 = 12.0;

/// Largest number of output frames made in one inner pass; bounds the buffers.
pub(crate) const PIECE: usize = 256;
/// Crossfade between the untouched and the stretched signal, in seconds.
const FADE_S: f64 = 0.012;
/// Zero crossings each side of the resampler's kernel (at full bandwidth).
const ZERO_CROSSINGS: f64 = 12.0;
/// Resampler kernel table resolution (points per input sample).
const TABLE_RES: usize = 256;
/// Kaiser window shape of the resampler kernel (about -90 dB side lobes).
const KAISER_BETA: f64 = 8.6;
/// Fraction of the (new) Nyquist frequency the resampler passes.
const PASSBAND: f64 = 0.95;
/// Transients: fast energy above this many times the slow energy.
const ONSET_RATIO: f32 = 8.0;
/// Transients: energy floor (about -70 dBFS) below which nothing is an onset.
const ONSET_FLOOR: f32 = 1e-7;
/// Transients: at most one per this many seconds.
const ONSET_GAP_S: f64 = 0.05;
/// Transients remembered (enough for the frames still to be made).
const ONSETS: usize = 16;

/// Tempo and pitch for a block of channels, real-time safe and exact in time.
///
/// Drive it with [`input_needed`](Self::input_needed), [`push`](Self::push)
/// and [`pull`](Self::pull): before pulling `n` frames, push exactly
/// `input_needed(n)` frames (zeros past the end of the audio).
#[derive(Clone)]
pub struct Stretcher {
    channels: usize,
    sample_rate: u32,
    n: usize,
    hs: usize,
    h: usize,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    fft_scratch: Vec<Complex32>,
    ifft_scratch: Vec<Complex32>,
    tbuf: Vec<f32>,
    spec: Vec<Vec<Complex32>>,
    mid_h: Vec<Complex32>,
    mag: Vec<f32>,
    before_mag: Vec<f32>,
    phi: Vec<f32>,
    omega: Vec<f64>,
    rot: Vec<f32>,
    turn: Vec<Complex32>,
    theta: Vec<f32>,
    peaks: Vec<usize>,

    /// Input rings: the channels, then their sum (the mid).
    ring: Vec<Vec<f32>>,
    ring_mask: usize,
    /// Input frames pushed so far (the absolute index of the next).
    pushed: i64,
    onset: OnsetDetector,

    tempo: f64,
    ratio: f64,
    /// Whether the stretched path is the one being faded to (or playing).
    stretching: bool,
    /// Samples left in the crossfade from the other path.
    fade_left: usize,
    fade_len: usize,

    /// Untouched path: the input frame played next.
    read: i64,

    /// Stretched path: the stretched signal (before the resampler), a ring.
    st: Vec<Vec<f32>>,
    st_mask: usize,
    /// Index of the next frame and the input position of its centre.
    next_m: i64,
    ana: f64,
    /// The next frame resets its phases (the first frame after a start).
    first: bool,
    /// The next stage of the frame in progress (0: none begun), and that
    /// frame's centre and analysis hop, fixed when it begins.
    stage: usize,
    frame_centre: i64,
    frame_ha: f64,
    /// Stretched samples below this index are zeroed or hold frames.
    zeroed_to: i64,
    /// Resampler position in the stretched signal.
    x: f64,
    /// Input position of the next output frame on the stretched path.
    position: f64,
    kernel: Vec<f32>,
    taps: Vec<f32>,
    kernel_half: usize,
    kernel_cutoff: f64,
    /// The output of the path being faded out, for one piece.
    fade_buf: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Stretcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stretcher")
            .field("channels", &self.channels)
            .field("sample_rate", &self.sample_rate)
            .field("frame", &self.n)
            .field("tempo", &self.tempo)
            .field("pitch_ratio", &self.ratio)
            .finish_non_exhaustive()
    }
}

impl Stretcher {
    /// A stretcher for `channels` channels at `sample_rate`, at tempo 1 with no
    /// transposition.
    pub fn new(channels: usize, sample_rate: u32) -> Result<Self, MixError> {
        if channels == 0 {
            return Err(MixError::InvalidParameter("no channels to stretch".into()));
        }
        // Every rate a track can have (the mixer takes them all; an 8 kHz
        // recording still mixes), up to 768 kHz to bound the buffers.
        if !(1..=768_000).contains(&sample_rate) {
            return Err(MixError::InvalidParameter(format!(
                "sample rate {sample_rate} Hz: expected 1 Hz to 768 kHz"
            )));
        }
        // About 93 ms at 44.1 and 48 kHz: long enough to resolve partials 10 Hz
        // apart, short enough to keep attacks reasonably tight.
        let n = (f64::from(sample_rate) * 0.085).round() as usize;
        let n = n.next_power_of_two().max(256);
        let (hs, h) = (n / 4, n / 8);
        let mut planner = RealFftPlanner::<f32>::new();
        let fft = planner.plan_fft_forward(n);
        let ifft = planner.plan_fft_inverse(n);
        let bins = n / 2 + 1;
        let window = (0..n)
            .map(|i| (0.5 - 0.5 * (TAU * i as f64 / n as f64).cos()) as f32)
            .collect();
        // History for frames that reach back before a start (two frames at the
        // widest analysis hop, 3 × hs), the look-ahead and one piece of input.
        let ring_len = (4 * n + 4 * PIECE).next_power_of_two();
        let st_len = (2 * n + 4 * PIECE).next_power_of_two();
        // The widest kernel: transposing up an octave halves the cut-off.
        let kernel_half_max = (ZERO_CROSSINGS * 2.0 / PASSBAND).ceil() as usize;
        let mut s = Self {
            channels,
            sample_rate,
            n,
            hs,
            h,
            window,
            fft_scratch: fft.make_scratch_vec(),
            ifft_scratch: ifft.make_scratch_vec(),
            fft,
            ifft,
            tbuf: vec![0.0; n],
            spec: vec![vec![Complex32::default(); bins]; channels],
            mid_h: vec![Complex32::default(); bins],
            mag: vec![0.0; bins],
            before_mag: vec![0.0; bins],
            phi: vec![0.0; bins],
            omega: vec![0.0; bins],
            rot: vec![0.0; bins],
            turn: vec![Complex32::default(); bins],
            theta: vec![0.0; bins],
            peaks: Vec::with_capacity(bins),
            ring: vec![vec![0.0; ring_len]; channels + 1],
            ring_mask: ring_len - 1,
            pushed: 0,
            onset: OnsetDetector::new(sample_rate),
            tempo: 1.0,
            ratio: 1.0,
            stretching: false,
            fade_left: 0,
            fade_len: ((FADE_S * f64::from(sample_rate)).round() as usize).max(1),
            read: 0,
            st: vec![vec![0.0; st_len]; channels],
            st_mask: st_len - 1,
            next_m: 0,
            ana: 0.0,
            first: true,
            stage: 0,
            frame_centre: 0,
            frame_ha: 0.0,
            zeroed_to: 0,
            x: 0.0,
            position: 0.0,
            kernel: vec![0.0; (kernel_half_max + 2) * TABLE_RES + 2],
            taps: vec![0.0; 2 * kernel_half_max + 2],
            kernel_half: 0,
            kernel_cutoff: 0.0,
            fade_buf: vec![vec![0.0; PIECE]; channels],
        };
        s.make_kernel();
        Ok(s)
    }

    /// Channels stretched.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The tempo (1 = as recorded).
    pub fn tempo(&self) -> f64 {
        self.tempo
    }

    /// The transposition as a frequency ratio (1 = none).
    pub fn pitch_ratio(&self) -> f64 {
        self.ratio
    }

    /// Sets tempo (0.5 to 1.5) and transposition (semitones, −12 to +12; a
    /// fraction is cents). Takes effect at once, with a crossfade when the
    /// stretch turns on or off. Checked first: on an error nothing changes.
    pub fn set(&mut self, tempo: f64, semitones: f64) -> Result<(), MixError> {
        check_params(tempo, semitones)?;
        self.tempo = tempo;
        self.ratio = 2f64.powf(semitones / 12.0);
        let want = !(tempo == 1.0 && semitones == 0.0);
        if want != self.stretching {
            if want {
                // Start the stretched path where the untouched one plays now.
                self.start_stretch(self.read as f64);
            } else {
                self.read = self.position.round() as i64;
            }
            self.stretching = want;
            self.fade_left = self.fade_len;
        }
        self.make_kernel();
        Ok(())
    }

    /// Clears all state (for a new render or a seek): the next input pushed is
    /// input frame 0, and tempo and pitch apply from its first sample.
    pub fn reset(&mut self) {
        for r in &mut self.ring {
            r.fill(0.0);
        }
        self.pushed = 0;
        self.read = 0;
        self.onset.reset();
        self.fade_left = 0;
        if self.stretching {
            self.start_stretch(0.0);
        }
    }

    /// The input position (in frames, fractional while stretching) of the next
    /// frame [`pull`](Self::pull) makes: the player's clock.
    pub fn position(&self) -> f64 {
        if self.stretching {
            self.position
        } else {
            self.read as f64
        }
    }

    /// How many input frames must be pushed before pulling `frames` frames.
    pub fn input_needed(&self, frames: usize) -> usize {
        let end = self.input_end(frames);
        usize::try_from(end - self.pushed).unwrap_or(0)
    }

    /// The exclusive end of the input that pulling `frames` frames reads.
    fn input_end(&self, frames: usize) -> i64 {
        let (fast, other) = if self.fade_left > 0 {
            (frames, frames.min(self.fade_left))
        } else {
            (frames, 0)
        };
        let (plain, stretched) = if self.stretching {
            (other, fast)
        } else {
            (fast, other)
        };
        let mut end = self.pushed;
        if plain > 0 {
            end = end.max(self.read + plain as i64);
        }
        if stretched > 0 {
            end = end.max(self.stretch_input_end(stretched));
        }
        end
    }

    fn stretch_input_end(&self, frames: usize) -> i64 {
        let need = self.stretched_end(frames);
        // Frame m makes stretched samples below (m + 1)·hs − n/2 final.
        let half = (self.n / 2) as i64;
        let hs = self.hs as i64;
        let last = (need + half + hs - 1).div_euclid(hs) - 1;
        // And the frame after it, whose stages are done ahead of need. (Not
        // further: the input a block reads must not depend on how far ahead
        // earlier blocks worked, or pieces would read more than the block.)
        let ahead = last + 1;
        if ahead < self.next_m {
            return self.pushed;
        }
        let ana = self.ana + (ahead - self.next_m) as f64 * self.analysis_hop();
        ana.round() as i64 + half
    }

    /// The exclusive end of the stretched samples that `frames` frames of output read.
    fn stretched_end(&self, frames: usize) -> i64 {
        if self.copies() {
            self.x as i64 + frames as i64
        } else {
            let last = self.x + (frames - 1) as f64 * self.ratio;
            last.floor() as i64 + self.kernel_half as i64 + 1
        }
    }

    /// The resampler copies (no transposition and on a whole sample).
    fn copies(&self) -> bool {
        self.ratio == 1.0 && self.x.fract() == 0.0
    }

    fn analysis_hop(&self) -> f64 {
        self.hs as f64 * self.tempo / self.ratio
    }

    /// Adds input frames (every channel the same length).
    pub fn push<I: AsRef<[f32]>>(&mut self, input: &[I]) -> Result<(), MixError> {
        let len = input.first().map_or(0, |c| c.as_ref().len());
        if input.iter().any(|c| c.as_ref().len() != len) {
            return Err(MixError::LengthMismatch);
        }
        self.push_range(input, 0, len)
    }

    /// Adds frames `start..start + len` of every input channel.
    pub(crate) fn push_range<I: AsRef<[f32]>>(
        &mut self,
        input: &[I],
        start: usize,
        len: usize,
    ) -> Result<(), MixError> {
        self.check_range(
            input.len(),
            input.iter().map(|c| c.as_ref().len()),
            start + len,
        )?;
        let mask = self.ring_mask;
        for i in 0..len {
            let at = (self.pushed as usize + i) & mask;
            let mut mid = 0.0;
            for (c, ch) in input.iter().enumerate() {
                let v = ch.as_ref()[start + i];
                self.ring[c][at] = v;
                mid += v;
            }
            self.ring[self.channels][at] = mid;
            self.onset.push(mid, self.pushed + i as i64);
        }
        self.pushed += len as i64;
        Ok(())
    }

    /// Makes `output.len()` channels of frames; [`input_needed`](Self::input_needed)
    /// frames must have been pushed for them.
    pub fn pull<O: AsMut<[f32]>>(&mut self, output: &mut [O]) -> Result<(), MixError> {
        let frames = output.first_mut().map_or(0, |c| c.as_mut().len());
        if output.iter_mut().any(|c| c.as_mut().len() != frames) {
            return Err(MixError::LengthMismatch);
        }
        self.pull_range(output, 0, frames)
    }

    /// Makes frames `start..start + len` of every output channel.
    pub(crate) fn pull_range<O: AsMut<[f32]>>(
        &mut self,
        output: &mut [O],
        start: usize,
        len: usize,
    ) -> Result<(), MixError> {
        let channels = output.len();
        self.check_range(
            channels,
            output.iter_mut().map(|c| c.as_mut().len()),
            start + len,
        )?;
        if self.input_end(len) > self.pushed {
            return Err(MixError::InvalidParameter(format!(
                "{} more input frames are needed before pulling {len}",
                self.input_needed(len)
            )));
        }
        let mut at = start;
        while at < start + len {
            let piece = PIECE.min(start + len - at);
            self.pull_piece(output, at, piece);
            at += piece;
        }
        Ok(())
    }

    /// Checks a block: one buffer per channel, each at least `needed` long.
    fn check_range(
        &self,
        channels: usize,
        mut lengths: impl Iterator<Item = usize>,
        needed: usize,
    ) -> Result<(), MixError> {
        if channels != self.channels {
            return Err(MixError::ChannelMismatch {
                expected: self.channels,
                got: channels,
            });
        }
        if lengths.any(|l| l < needed) {
            return Err(MixError::LengthMismatch);
        }
        Ok(())
    }

    fn pull_piece<O: AsMut<[f32]>>(&mut self, output: &mut [O], start: usize, len: usize) {
        let fading = self.fade_left.min(len);
        if self.stretching {
            self.run_stretched(output, start, len);
            if fading > 0 {
                self.run_plain_into_fade(fading);
            }
        } else {
            self.run_plain(output, start, len);
            if fading > 0 {
                self.run_stretched_into_fade(fading);
            }
        }
        // Crossfade: the faded-out path is in fade_buf.
        for i in 0..fading {
            let g = (self.fade_len - self.fade_left + i + 1) as f32 / (self.fade_len + 1) as f32;
            for (c, out) in output.iter_mut().enumerate() {
                let o = &mut out.as_mut()[start + i];
                *o = g * *o + (1.0 - g) * self.fade_buf[c][i];
            }
        }
        self.fade_left -= fading;
    }

    fn run_plain<O: AsMut<[f32]>>(&mut self, output: &mut [O], start: usize, len: usize) {
        for (c, out) in output.iter_mut().enumerate() {
            let out = &mut out.as_mut()[start..start + len];
            for (i, o) in out.iter_mut().enumerate() {
                *o = ring_at(&self.ring[c], self.ring_mask, self.read + i as i64);
            }
        }
        self.read += len as i64;
    }

    fn run_plain_into_fade(&mut self, len: usize) {
        let mut buf = std::mem::take(&mut self.fade_buf);
        self.run_plain(&mut buf, 0, len);
        self.fade_buf = buf;
    }

    fn run_stretched_into_fade(&mut self, len: usize) {
        let mut buf = std::mem::take(&mut self.fade_buf);
        self.run_stretched(&mut buf, 0, len);
        self.fade_buf = buf;
    }

    fn run_stretched<O: AsMut<[f32]>>(&mut self, output: &mut [O], start: usize, len: usize) {
        let need = self.stretched_end(len);
        let half = (self.n / 2) as i64;
        // Frame m makes every stretched sample below (m + 1)·hs − n/2 final.
        while self.next_m * self.hs as i64 - half < need {
            self.frame();
        }
        self.work_ahead(need, len);
        let mask = self.st_mask;
        for i in 0..len {
            if self.copies() {
                let at = self.x as i64;
                for (c, out) in output.iter_mut().enumerate() {
                    out.as_mut()[start + i] = self.st[c][(at as usize) & mask];
                }
            } else {
                let base = self.x.floor();
                let frac = self.x - base;
                let base = base as i64;
                let k = self.kernel_half as i64;
                // The kernel's weights for this position, shared by every channel.
                let taps = &mut self.taps[..2 * k as usize];
                for (j, w) in taps.iter_mut().enumerate() {
                    let t = j as i64 + 1 - k;
                    *w = kernel_at(&self.kernel, (t as f64 - frac).abs());
                }
                for (c, out) in output.iter_mut().enumerate() {
                    let st = &self.st[c];
                    let first = base + 1 - k;
                    let mut acc = 0.0f32;
                    for (j, w) in taps.iter().enumerate() {
                        acc += w * st[((first + j as i64) as usize) & mask];
                    }
                    out.as_mut()[start + i] = acc;
                }
            }
            self.x += self.ratio;
            self.position += self.tempo;
        }
    }

    /// Does some stages of the next frame (the one after those `need` asks
    /// for), about as many as `len` output frames' share of a frame's work.
    fn work_ahead(&mut self, need: i64, len: usize) {
        let hs = self.hs as i64;
        let half = (self.n / 2) as i64;
        let share = self.stages() as f64 * len as f64 * self.ratio / self.hs as f64;
        let budget = share.ceil() as usize + 1;
        for _ in 0..budget {
            if self.next_m * hs - half >= need + hs {
                return;
            }
            if self.stage == 0 && self.ana.round() as i64 + half > self.pushed {
                return;
            }
            self.frame_stage();
        }
    }

    /// Starts the stretched path so that its next output plays input position `p0`.
    fn start_stretch(&mut self, p0: f64) {
        let half = (self.n / 2) as i64;
        let hs = self.hs as i64;
        let k = self.kernel_half_for(self.ratio) as i64;
        // The first frame whose window still covers stretched sample −k.
        let m_start = (-k - half).div_euclid(hs) + 1;
        self.next_m = m_start;
        self.ana = p0 + m_start as f64 * self.analysis_hop();
        self.zeroed_to = m_start * hs - half;
        self.x = 0.0;
        self.position = p0;
        self.first = true;
        self.stage = 0;
        for st in &mut self.st {
            st.fill(0.0);
        }
    }

    /// Finishes the frame in progress (or makes the next one whole).
    fn frame(&mut self) {
        loop {
            if self.frame_stage() {
                return;
            }
        }
    }

    /// Stages of one frame: each channel's analysis, the phases, each
    /// channel's synthesis. The stages of the next frame are done a few per
    /// quantum ahead of need, so that no single quantum carries a whole frame
    /// (in the browser's wasm a whole stereo frame takes about 2 ms of a
    /// 2.67 ms quantum).
    fn stages(&self) -> usize {
        2 * self.channels + 1
    }

    /// Runs the next stage of the current frame; true when the frame is done.
    fn frame_stage(&mut self) -> bool {
        let n = self.n;
        let half = n / 2;
        let channels = self.channels;
        let stage = self.stage;
        if stage == 0 {
            self.frame_ha = self.analysis_hop();
            self.frame_centre = self.ana.round() as i64;
        }
        let centre = self.frame_centre;
        if stage < channels {
            // Analysis of one channel at the centre.
            self.windowed(stage, centre);
            let _ = self.fft.process_with_scratch(
                &mut self.tbuf,
                &mut self.spec[stage],
                &mut self.fft_scratch,
            );
        } else if stage == channels {
            self.phases();
        } else {
            let c = stage - channels - 1;
            let start = self.next_m * self.hs as i64 - half as i64;
            let end = start + n as i64;
            let mask = self.st_mask;
            if c == 0 {
                for i in self.zeroed_to.max(start)..end {
                    for st in &mut self.st {
                        st[(i as usize) & mask] = 0.0;
                    }
                }
                self.zeroed_to = self.zeroed_to.max(end);
            }
            // Hann analysis × Hann synthesis at a quarter-frame hop sums to 1.5.
            let norm = 1.0 / (1.5 * n as f32);
            let spec = &mut self.spec[c];
            for (x, t) in spec.iter_mut().zip(&self.turn) {
                *x *= t;
            }
            spec[0].im = 0.0;
            spec[half].im = 0.0;
            let _ = self
                .ifft
                .process_with_scratch(spec, &mut self.tbuf, &mut self.ifft_scratch);
            let st = &mut self.st[c];
            for i in 0..n {
                // Undo the zero-phase rotation.
                let v = self.tbuf[(i + half) % n] * self.window[i] * norm;
                st[((start + i as i64) as usize) & mask] += v;
            }
        }
        self.stage += 1;
        if self.stage < self.stages() {
            return false;
        }
        self.stage = 0;
        self.next_m += 1;
        self.ana += self.frame_ha;
        true
    }

    /// The middle stage: frequencies and phases from the mid, and the turn of
    /// every bin.
    fn phases(&mut self) {
        let n = self.n;
        let half = n / 2;
        let bins = half + 1;
        let ha = self.frame_ha;
        let centre = self.frame_centre;
        self.windowed(self.channels, centre - self.h as i64);
        let _ =
            self.fft
                .process_with_scratch(&mut self.tbuf, &mut self.mid_h, &mut self.fft_scratch);
        let step = TAU / n as f64;
        for k in 0..bins {
            let mut m = Complex32::default();
            for s in &self.spec {
                m += s[k];
            }
            self.mag[k] = m.norm();
            self.phi[k] = fast_atan2(m.im, m.re);
            let expected = step * k as f64 * self.h as f64;
            let dev = wrap(
                f64::from(self.phi[k])
                    - f64::from(fast_atan2(self.mid_h[k].im, self.mid_h[k].re))
                    - expected,
            );
            self.omega[k] = step * k as f64 + dev / self.h as f64;
        }

        // Phases. The first frame keeps the input's. In frames near an attack,
        // the bins it brought up (6 dB over the last frame that did not hold it) take the
        // input's phase shifted so that the attack lands at its time / tempo in
        // every one of them, and the other bins advance bin by bin. A frame that
        // holds the attack too far out to shift it without wrapping round the
        // frame advances bin by bin too. Elsewhere phases lock to the peaks.
        let t = ha / self.hs as f64;
        let reach = 0.4 * n as f64 * t.min(1.0);
        let c = centre as f64;
        let near = self.onset.nearest(c - reach, c + reach);
        let inside = self.onset.nearest(c - half as f64, c + half as f64);
        let hs = self.hs as f64;
        if self.first {
            self.rot.fill(0.0);
            self.first = false;
        } else if let Some(at) = near {
            let shift = (at as f64 - c) * (1.0 / t - 1.0);
            for k in 0..bins {
                self.rot[k] = if self.mag[k] > 2.0 * self.before_mag[k] {
                    wrap(-step * k as f64 * shift) as f32
                } else {
                    let theta = f64::from(self.theta[k]) + self.omega[k] * hs;
                    wrap(theta - f64::from(self.phi[k])) as f32
                };
            }
        } else if inside.is_some() {
            for k in 0..bins {
                let theta = f64::from(self.theta[k]) + self.omega[k] * hs;
                self.rot[k] = wrap(theta - f64::from(self.phi[k])) as f32;
            }
        } else {
            self.lock_phases();
        }
        if inside.is_none() {
            self.before_mag.copy_from_slice(&self.mag);
        }
        for k in 0..bins {
            self.theta[k] = wrap(f64::from(self.phi[k]) + f64::from(self.rot[k])) as f32;
        }

        for (t, r) in self.turn.iter_mut().zip(&self.rot) {
            let (s, co) = r.sin_cos();
            *t = Complex32::new(co, s);
        }
    }

    /// Identity phase locking: each peak of the mid spectrum advances by its
    /// frequency; the bins around it turn with it.
    fn lock_phases(&mut self) {
        let bins = self.mag.len();
        let hs = self.hs as f64;
        self.peaks.clear();
        for k in 2..bins.saturating_sub(2) {
            let m = self.mag[k];
            if m > self.mag[k - 1]
                && m >= self.mag[k + 1]
                && m > self.mag[k - 2]
                && m >= self.mag[k + 2]
            {
                self.peaks.push(k);
            }
        }
        if self.peaks.is_empty() {
            for k in 0..bins {
                let theta = f64::from(self.theta[k]) + self.omega[k] * hs;
                self.rot[k] = wrap(theta - f64::from(self.phi[k])) as f32;
            }
            return;
        }
        let mut lo = 0;
        for (i, &p) in self.peaks.iter().enumerate() {
            // The region ends at the lowest bin between this peak and the next.
            let hi = match self.peaks.get(i + 1) {
                Some(&q) => {
                    let mut low = p + 1;
                    for k in p + 1..q {
                        if self.mag[k] < self.mag[low] {
                            low = k;
                        }
                    }
                    low
                }
                None => bins,
            };
            let theta = f64::from(self.theta[p]) + self.omega[p] * hs;
            let r = wrap(theta - f64::from(self.phi[p])) as f32;
            self.rot[lo..hi].fill(r);
            lo = hi;
        }
    }

    /// `tbuf` = the zero-phase windowed input of ring `c` centred at `centre`.
    fn windowed(&mut self, c: usize, centre: i64) {
        let n = self.n;
        let half = n / 2;
        let ring = &self.ring[c];
        for i in 0..n {
            let v = ring_at(ring, self.ring_mask, centre - half as i64 + i as i64) * self.window[i];
            self.tbuf[(i + half) % n] = v;
        }
    }

    fn kernel_half_for(&self, ratio: f64) -> usize {
        (ZERO_CROSSINGS / cutoff(ratio)).ceil() as usize
    }

    /// Rebuilds the resampler's kernel table when the cut-off changes.
    fn make_kernel(&mut self) {
        let fc = cutoff(self.ratio);
        if fc == self.kernel_cutoff {
            return;
        }
        let half = self.kernel_half_for(self.ratio);
        let points = (half * TABLE_RES + 2).min(self.kernel.len());
        let i0b = bessel_i0(KAISER_BETA);
        for (i, w) in self.kernel.iter_mut().enumerate().take(points) {
            let d = i as f64 / TABLE_RES as f64;
            let u = d / half as f64;
            *w = if u >= 1.0 {
                0.0
            } else {
                let x = PI * fc * d;
                let sinc = if x == 0.0 { 1.0 } else { x.sin() / x };
                (fc * sinc * bessel_i0(KAISER_BETA * (1.0 - u * u).sqrt()) / i0b) as f32
            };
        }
        self.kernel[points..].fill(0.0);
        self.kernel_half = half;
        self.kernel_cutoff = fc;
    }
}

/// Checks tempo and transposition.
pub(crate) fn check_params(tempo: f64, semitones: f64) -> Result<(), MixError> {
    if !(MIN_TEMPO..=MAX_TEMPO).contains(&tempo) {
        return Err(MixError::InvalidParameter(format!(
            "tempo {tempo}: expected {MIN_TEMPO} to {MAX_TEMPO}"
        )));
    }
    if !(-MAX_TRANSPOSE..=MAX_TRANSPOSE).contains(&semitones) {
        return Err(MixError::InvalidParameter(format!(
            "transpose {semitones} semitones: expected -{MAX_TRANSPOSE} to +{MAX_TRANSPOSE}"
        )));
    }
    Ok(())
}

/// The resampler's cut-off as a fraction of the input Nyquist frequency.
fn cutoff(ratio: f64) -> f64 {
    PASSBAND / ratio.max(1.0)
}

fn ring_at(ring: &[f32], mask: usize, i: i64) -> f32 {
    if i < 0 {
        0.0
    } else {
        ring[(i as usize) & mask]
    }
}

fn kernel_at(table: &[f32], d: f64) -> f32 {
    let p = d * TABLE_RES as f64;
    let i = p as usize;
    let f = (p - i as f64) as f32;
    match (table.get(i), table.get(i + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * f,
        _ => 0.0,
    }
}

/// The principal value of an angle, about (−π, π]. (Rounds with a cast: `f64::round`
/// is a library call on baseline x86-64, and this runs for every bin of every frame.)
fn wrap(a: f64) -> f64 {
    let turns = a * (1.0 / TAU);
    let nearest = (turns + if turns >= 0.0 { 0.5 } else { -0.5 }) as i64;
    a - TAU * nearest as f64
}

/// `atan2(y, x)` within 2e-6 rad (the phases only set frequencies and phase
/// steps, where that is far below what can be heard), several times faster
/// than the library's, which was a fifth of the stretcher's time.
fn fast_atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (ax, ay) = (x.abs(), y.abs());
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let (num, den, swap) = if ay > ax {
        (ax, ay, true)
    } else {
        (ay, ax, false)
    };
    let t = num / den;
    let t2 = t * t;
    // atan(t) ≈ t·P(t²) on [0, 1], fitted to 2.5e-7 rad (near-minimax).
    const P: [f32; 7] = [
        0.999_996_1,
        -0.333_173_7,
        0.198_078_16,
        -0.132_333_41,
        0.079_623_654,
        -0.033_604_197,
        0.006_811_783,
    ];
    let mut p = P[6];
    for c in P[..6].iter().rev() {
        p = p * t2 + c;
    }
    let mut r = t * p;
    if swap {
        r = FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 {
        -r
    } else {
        r
    }
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

/// Finds attacks in the mid signal, sample by sample: a 2 ms energy average that
/// jumps above eight times the 40 ms one.
#[derive(Debug, Clone)]
struct OnsetDetector {
    fast_a: f32,
    slow_a: f32,
    fast: f32,
    slow: f32,
    gap: i64,
    last: i64,
    found: [i64; ONSETS],
    count: usize,
}

impl OnsetDetector {
    fn new(sample_rate: u32) -> Self {
        let coeff = |s: f64| (-1.0 / (s * f64::from(sample_rate))).exp() as f32;
        Self {
            fast_a: coeff(0.002),
            slow_a: coeff(0.040),
            fast: 0.0,
            slow: 0.0,
            gap: (ONSET_GAP_S * f64::from(sample_rate)) as i64,
            last: i64::MIN / 2,
            found: [i64::MIN / 2; ONSETS],
            count: 0,
        }
    }

    fn reset(&mut self) {
        self.fast = 0.0;
        self.slow = 0.0;
        self.last = i64::MIN / 2;
        self.found = [i64::MIN / 2; ONSETS];
        self.count = 0;
    }

    fn push(&mut self, x: f32, at: i64) {
        let e = x * x;
        self.fast = self.fast_a * self.fast + (1.0 - self.fast_a) * e;
        if self.fast > ONSET_FLOOR
            && self.fast > ONSET_RATIO * self.slow
            && at - self.last >= self.gap
        {
            self.last = at;
            self.found[self.count % ONSETS] = at;
            self.count += 1;
        }
        self.slow = self.slow_a * self.slow + (1.0 - self.slow_a) * e;
    }

    /// An onset in `(lo, hi]`, if any.
    fn nearest(&self, lo: f64, hi: f64) -> Option<i64> {
        self.found
            .iter()
            .copied()
            .find(|&c| (c as f64) > lo && (c as f64) <= hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_atan2_is_within_two_microradians_everywhere() {
        let mut worst = 0.0f64;
        for i in 0..20_000 {
            let a = i as f64 / 20_000.0 * TAU - PI;
            for r in [1e-6, 0.37, 1.0, 250.0] {
                let (y, x) = ((r * a.sin()) as f32, (r * a.cos()) as f32);
                let want = f64::from(y).atan2(f64::from(x));
                let got = f64::from(fast_atan2(y, x));
                worst = worst.max(wrap(got - want).abs());
            }
        }
        assert!(worst < 2e-6, "worst error {worst:e} rad");
    }

    #[test]
    fn wrap_gives_the_principal_angle() {
        for a in [-100.0, -7.0, -3.2, -0.1, 0.0, 0.1, 3.2, 7.0, 100.0, 1e6] {
            let w = wrap(a);
            assert!(w.abs() <= PI + 1e-9, "{a} -> {w}");
            assert!(
                ((a - w) / TAU - ((a - w) / TAU).round()).abs() < 1e-9,
                "{a} -> {w}"
            );
        }
    }
}
