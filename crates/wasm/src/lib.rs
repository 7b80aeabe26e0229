//! The Inspector and the Stem Engine for the browser, as a plain C ABI over the
//! wasm module's linear memory, for an AudioWorklet to call.
//!
//! Why no wasm-bindgen: an AudioWorklet has no module loader for its generated
//! JS glue, and the worklet only needs to move blocks of `f32` in and out. Each
//! object owns its planar buffers (up to [`MAX_FRAMES`] frames a channel); the
//! worklet writes samples into `Float32Array` views of them, calls `process`, and
//! reads the results the same way. Nothing allocates after construction.
//!
//! Objects are created with `son_*_new`, which returns a pointer (0 on invalid
//! arguments), and must be freed with the matching `son_*_free`. Functions that
//! can fail return 0 on success and a negative number on bad arguments.

// The C ABI hands raw pointers to JavaScript and back: that is this crate's job.
// Every dereference is of a pointer made by `Box::into_raw` here (checked non-null).
#![allow(unsafe_code)]

use sonantica_meter::{
    ChannelLayout, Inspector, InspectorConfig, LoudnessHistory, Readings, Spectrum,
};
use sonantica_mix::{MatrixParams, MixSettings, Source, StemEngine, PRESETS};

/// Most frames one `process` call takes (a Web Audio quantum is 128).
pub const MAX_FRAMES: usize = 4096;

/// Most input frames one Stem Engine call reads: away from tempo 1 a block
/// reads more or fewer input frames than it makes, and turning the stretch on
/// reads its look-ahead at once (under 9000 frames at 48 kHz).
pub const MAX_INPUT_FRAMES: usize = 16_384;

/// Most goniometer points one `son_meter_goniometer` call returns.
pub const MAX_POINTS: usize = 2048;

/// Number of values [`son_meter_readings`] writes. In order: seconds measured,
/// momentary LUFS, short-term LUFS, integrated LUFS, loudness range LU, true peak
/// dBTP (highest so far), sample peak dBFS (highest so far), crest factor dB
/// (300 ms), correlation (300 ms, -1..1), width (0..1), balance (-1..1), clip
/// events so far. Values that do not exist yet (silence) are NaN.
pub const READINGS: usize = 12;

/// Bands of the spectrum analyser ([`son_meter_spectrum`]).
pub const SPECTRUM_BANDS: usize = 96;
/// Lowest frequency the spectrum shows.
pub const SPECTRUM_LO_HZ: f64 = 20.0;
/// Highest frequency the spectrum shows (or Nyquist, if lower).
pub const SPECTRUM_HI_HZ: f64 = 20000.0;
/// Samples in the spectrum's window (85 ms at 48 kHz: 11.7 Hz between bins).
pub const SPECTRUM_SIZE: usize = 4096;

/// A live Inspector with its input buffers.
pub struct Meter {
    inspector: Inspector,
    spectrum: Spectrum,
    /// The spectrum's levels then its peaks, for the worklet to read.
    bands: Vec<f32>,
    inputs: Vec<Vec<f32>>,
    readings: [f64; READINGS],
    points: Vec<(f32, f32)>,
    flat: Vec<f32>,
}

fn opt(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn flatten(r: &Readings, out: &mut [f64; READINGS]) {
    *out = [
        r.time_s,
        opt(r.momentary_lufs),
        opt(r.short_term_lufs),
        opt(r.integrated_lufs),
        opt(r.loudness_range_lu),
        opt(r.true_peak_dbtp),
        opt(r.sample_peak_dbfs),
        opt(r.crest_db),
        opt(r.correlation),
        opt(r.width),
        opt(r.balance),
        r.clip_events as f64,
    ];
}

/// A live Inspector for `channels` channels (1-8, default layout for the count)
/// at `sample_rate`; its loudness history is bounded (a histogram), so it can run
/// for ever. 0 on invalid arguments.
#[no_mangle]
pub extern "C" fn son_meter_new(sample_rate: u32, channels: u32) -> *mut Meter {
    let channels = channels as usize;
    if !(1..=8).contains(&channels) || sample_rate == 0 {
        return std::ptr::null_mut();
    }
    let mut config = InspectorConfig::new(sample_rate, ChannelLayout::default_for(channels));
    config.history = LoudnessHistory::Bounded;
    let spectrum = Spectrum::new(
        sample_rate,
        SPECTRUM_SIZE,
        SPECTRUM_BANDS,
        SPECTRUM_LO_HZ,
        SPECTRUM_HI_HZ,
    );
    match (Inspector::new(config), spectrum) {
        (Ok(inspector), Ok(spectrum)) => Box::into_raw(Box::new(Meter {
            inspector,
            spectrum,
            bands: vec![0.0; 2 * SPECTRUM_BANDS],
            inputs: vec![vec![0.0; MAX_FRAMES]; channels],
            readings: [f64::NAN; READINGS],
            points: vec![(0.0, 0.0); MAX_POINTS],
            flat: vec![0.0; 2 * MAX_POINTS],
        })),
        _ => std::ptr::null_mut(),
    }
}

/// # Safety
/// `m` is 0 or a pointer from [`son_meter_new`] not yet freed.
unsafe fn meter<'a>(m: *mut Meter) -> Option<&'a mut Meter> {
    // SAFETY: the caller passes a live pointer from son_meter_new (or null).
    unsafe { m.as_mut() }
}

/// The input buffer of `channel` ([`MAX_FRAMES`] floats); 0 if out of range.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_input(m: *mut Meter, channel: u32) -> *mut f32 {
    // SAFETY: see the function's contract.
    match unsafe { meter(m) }.and_then(|m| m.inputs.get_mut(channel as usize)) {
        Some(buf) => buf.as_mut_ptr(),
        None => std::ptr::null_mut(),
    }
}

/// Measures the first `frames` samples of each input buffer.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_process(m: *mut Meter, frames: u32) -> i32 {
    // SAFETY: see the function's contract.
    let Some(m) = (unsafe { meter(m) }) else {
        return -1;
    };
    let n = frames as usize;
    if n > MAX_FRAMES {
        return -2;
    }
    let mut refs: [&[f32]; 8] = [&[]; 8];
    for (r, buf) in refs.iter_mut().zip(&m.inputs) {
        *r = &buf[..n];
    }
    let refs = &refs[..m.inputs.len()];
    m.spectrum.push(refs);
    match m.inspector.process(refs) {
        Ok(()) => 0,
        Err(_) => -3,
    }
}

/// The current readings ([`READINGS`] doubles, see there); 0 on a bad pointer.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_readings(m: *mut Meter) -> *const f64 {
    // SAFETY: see the function's contract.
    let Some(m) = (unsafe { meter(m) }) else {
        return std::ptr::null();
    };
    let r = m.inspector.readings();
    flatten(&r, &mut m.readings);
    m.readings.as_ptr()
}

/// Copies the latest goniometer points (at most `max`, up to [`MAX_POINTS`],
/// oldest first) as (x, y) pairs into the buffer [`son_meter_points`] returns;
/// the number of points.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_goniometer(m: *mut Meter, max: u32) -> u32 {
    // SAFETY: see the function's contract.
    let Some(m) = (unsafe { meter(m) }) else {
        return 0;
    };
    let want = (max as usize).min(MAX_POINTS);
    let n = m.inspector.goniometer().latest(&mut m.points[..want]);
    for (i, (x, y)) in m.points[..n].iter().enumerate() {
        m.flat[2 * i] = *x;
        m.flat[2 * i + 1] = *y;
    }
    n as u32
}

/// The goniometer point buffer (2 × [`MAX_POINTS`] floats).
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_points(m: *mut Meter) -> *const f32 {
    // SAFETY: see the function's contract.
    unsafe { meter(m) }.map_or(std::ptr::null(), |m| m.flat.as_ptr())
}

/// Starts measuring afresh (a new track).
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_reset(m: *mut Meter) {
    // SAFETY: see the function's contract.
    if let Some(m) = unsafe { meter(m) } {
        m.inspector.reset();
        m.spectrum.reset();
    }
}

/// Analyses the latest [`SPECTRUM_SIZE`] samples (the mean of the channels) and
/// returns [`SPECTRUM_BANDS`] band levels in dBFS followed by as many held
/// peaks, lowest band first, log-spaced from [`SPECTRUM_LO_HZ`] to
/// [`SPECTRUM_HI_HZ`] (or Nyquist); `elapsed_s` since the last call lets the
/// peaks fall. 0 on a bad pointer.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_spectrum(m: *mut Meter, elapsed_s: f64) -> *const f32 {
    // SAFETY: see the function's contract.
    let Some(m) = (unsafe { meter(m) }) else {
        return std::ptr::null();
    };
    m.spectrum.update(elapsed_s);
    let (levels, peaks) = m.bands.split_at_mut(SPECTRUM_BANDS);
    levels.copy_from_slice(m.spectrum.levels());
    peaks.copy_from_slice(m.spectrum.peaks());
    m.bands.as_ptr()
}

/// The spectrum's highest frequency for this meter's rate: [`SPECTRUM_HI_HZ`]
/// or Nyquist. 0 on a bad pointer.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`].
#[no_mangle]
pub unsafe extern "C" fn son_meter_spectrum_hi_hz(m: *mut Meter) -> f64 {
    // SAFETY: see the function's contract.
    unsafe { meter(m) }.map_or(0.0, |m| m.spectrum.range_hz().1)
}

/// Frees a meter.
///
/// # Safety
/// `m` is 0 or a live pointer from [`son_meter_new`], not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn son_meter_free(m: *mut Meter) {
    if !m.is_null() {
        // SAFETY: made by Box::into_raw in son_meter_new and not freed before.
        drop(unsafe { Box::from_raw(m) });
    }
}

/// A Stem Engine with its input and output buffers.
pub struct Engine {
    engine: StemEngine,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
    settings: Vec<u8>,
}

/// Longest settings JSON [`son_engine_settings_buffer`] takes.
pub const MAX_SETTINGS: usize = 64 * 1024;

/// A Stem Engine for `stems` stereo stems (4: drums, bass, other, vocals; 6: plus
/// guitar, piano) to `channels` output channels (1 mono, 2 stereo, 3 2.1, 6 5.1,
/// 8 7.1) at `sample_rate`, with the default matrix parameters. 0 on invalid
/// arguments.
#[no_mangle]
pub extern "C" fn son_engine_new(stems: u32, channels: u32, sample_rate: u32) -> *mut Engine {
    let sources: &'static [Source] = match stems {
        4 => &Source::FOUR,
        6 => &Source::SIX,
        _ => return std::ptr::null_mut(),
    };
    let layout = match channels {
        1 | 2 | 3 | 6 | 8 => ChannelLayout::default_for(channels as usize),
        _ => return std::ptr::null_mut(),
    };
    match StemEngine::new(sources, layout, sample_rate, MatrixParams::default()) {
        Ok(engine) => Box::into_raw(Box::new(Engine {
            engine,
            inputs: vec![vec![0.0; MAX_INPUT_FRAMES]; 2 * sources.len()],
            outputs: vec![vec![0.0; MAX_FRAMES]; layout.channels()],
            settings: Vec::new(),
        })),
        Err(_) => std::ptr::null_mut(),
    }
}

/// # Safety
/// `e` is 0 or a pointer from [`son_engine_new`] not yet freed.
unsafe fn engine<'a>(e: *mut Engine) -> Option<&'a mut Engine> {
    // SAFETY: the caller passes a live pointer from son_engine_new (or null).
    unsafe { e.as_mut() }
}

/// The input buffer `index` = 2 × stem + side (0 left, 1 right), stems in
/// Demucs order; [`MAX_INPUT_FRAMES`] floats; 0 if out of range.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_input(e: *mut Engine, index: u32) -> *mut f32 {
    // SAFETY: see the function's contract.
    match unsafe { engine(e) }.and_then(|e| e.inputs.get_mut(index as usize)) {
        Some(b) => b.as_mut_ptr(),
        None => std::ptr::null_mut(),
    }
}

/// The output buffer of channel `ch` (in the layout's WAVE order); 0 if out of range.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_output(e: *mut Engine, ch: u32) -> *mut f32 {
    // SAFETY: see the function's contract.
    match unsafe { engine(e) }.and_then(|e| e.outputs.get_mut(ch as usize)) {
        Some(b) => b.as_mut_ptr(),
        None => std::ptr::null_mut(),
    }
}

/// Mixes the first `frames` samples of the inputs into `frames` output samples
/// (at tempo 1 without transposition; otherwise use [`son_engine_process_to`]).
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_process(e: *mut Engine, frames: u32) -> i32 {
    // SAFETY: see the function's contract.
    unsafe { son_engine_process_to(e, frames, frames) }
}

/// How many input frames the next [`son_engine_process_to`] of `frames` output
/// frames reads (the tempo and the stretch's look-ahead decide); -1 for a bad
/// engine.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_input_frames(e: *mut Engine, frames: u32) -> i32 {
    // SAFETY: see the function's contract.
    match unsafe { engine(e) } {
        Some(e) => i32::try_from(e.engine.input_frames_for(frames as usize)).unwrap_or(i32::MAX),
        None => -1,
    }
}

/// Reads `in_frames` frames of the inputs (exactly
/// [`son_engine_input_frames`]`(out_frames)`) and makes `out_frames` output
/// frames. 0 on success; -1 bad engine, -2 more than [`MAX_FRAMES`] out or
/// [`MAX_INPUT_FRAMES`] in, -3 the engine refused (a wrong input count).
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_process_to(
    e: *mut Engine,
    in_frames: u32,
    out_frames: u32,
) -> i32 {
    // SAFETY: see the function's contract.
    let Some(e) = (unsafe { engine(e) }) else {
        return -1;
    };
    let (ni_frames, no_frames) = (in_frames as usize, out_frames as usize);
    if no_frames > MAX_FRAMES || ni_frames > MAX_INPUT_FRAMES {
        return -2;
    }
    let (ni, no) = (e.inputs.len(), e.outputs.len());
    let mut ins: [&[f32]; 12] = [&[]; 12];
    for (r, buf) in ins.iter_mut().zip(&e.inputs) {
        *r = &buf[..ni_frames];
    }
    let mut outs: [&mut [f32]; 8] = Default::default();
    for (o, buf) in outs.iter_mut().zip(e.outputs.iter_mut()) {
        *o = &mut buf[..no_frames];
    }
    match e.engine.process(&ins[..ni], &mut outs[..no]) {
        Ok(()) => 0,
        Err(_) => -3,
    }
}

/// The input position (frames since the last reset, fractional while
/// stretching) that the next output frame plays: the player's clock. -1 for a
/// bad engine.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_position(e: *mut Engine) -> f64 {
    // SAFETY: see the function's contract.
    unsafe { engine(e) }.map_or(-1.0, |e| e.engine.position())
}

/// Room for `len` bytes of UTF-8 JSON settings, for [`son_engine_apply`]; 0 on a
/// bad engine or more than [`MAX_SETTINGS`] bytes. (Allocates: call it from a
/// message handler, never from `process`.)
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_settings_buffer(e: *mut Engine, len: u32) -> *mut u8 {
    // SAFETY: see the function's contract.
    let Some(e) = (unsafe { engine(e) }) else {
        return std::ptr::null_mut();
    };
    if len as usize > MAX_SETTINGS {
        return std::ptr::null_mut();
    }
    e.settings.clear();
    e.settings.resize(len as usize, 0);
    e.settings.as_mut_ptr()
}

/// Applies the `sonantica_mix::MixSettings` JSON in the settings buffer (the
/// same JSON `POST /api/tracks/{id}/mix` takes): the whole mix at once, through
/// `StemEngine::apply`, ramped. 0 on success, -1 for a bad engine, -2 for JSON
/// that is not valid settings, -3 for settings this engine cannot play (a stem
/// it does not have, another layout); nothing changes on an error.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_apply(e: *mut Engine) -> i32 {
    // SAFETY: see the function's contract.
    let Some(e) = (unsafe { engine(e) }) else {
        return -1;
    };
    let Ok(settings) = serde_json::from_slice::<MixSettings>(&e.settings) else {
        return -2;
    };
    match e.engine.apply(&settings) {
        Ok(()) => 0,
        Err(_) => -3,
    }
}

/// Jumps to the current settings without ramps and clears filter state (a seek).
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`].
#[no_mangle]
pub unsafe extern "C" fn son_engine_reset(e: *mut Engine) {
    // SAFETY: see the function's contract.
    if let Some(e) = unsafe { engine(e) } {
        e.engine.reset();
    }
}

/// Frees an engine.
///
/// # Safety
/// `e` is 0 or a live pointer from [`son_engine_new`], not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn son_engine_free(e: *mut Engine) {
    if !e.is_null() {
        // SAFETY: made by Box::into_raw in son_engine_new and not freed before.
        drop(unsafe { Box::from_raw(e) });
    }
}

/// The gain in dB that preset `index` gives stem `stem` of a `stems`-stem set
/// (−∞ for a stem it silences); NaN on bad arguments. The Studio sets its faders
/// from it when a preset is pressed.
#[no_mangle]
pub extern "C" fn son_preset_gain_db(index: u32, stems: u32, stem: u32) -> f32 {
    let sources: &[Source] = match stems {
        4 => &Source::FOUR,
        6 => &Source::SIX,
        _ => return f32::NAN,
    };
    match (PRESETS.get(index as usize), sources.get(stem as usize)) {
        (Some(p), Some(s)) => p.gain_db(*s),
        _ => f32::NAN,
    }
}

/// Number of presets in `sonantica_mix::PRESETS`.
#[no_mangle]
pub extern "C" fn son_preset_count() -> u32 {
    PRESETS.len() as u32
}
