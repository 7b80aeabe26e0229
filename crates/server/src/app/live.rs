//! Live stems: the parts of a running job's stems that are final, published
//! as the engine makes them (issue 16).
//!
//! The worker's [`LiveStems`] sink writes every part into one unnamed
//! temporary file laid out as the multistem file will be (each stem's left and
//! right, in source order, interleaved f32 at the output rate) with each
//! sample already as that file will decode it, and records which spans are
//! written. A window inside those spans is then cut from the temporary file
//! exactly as [`super::Library::multistem_window`] cuts the finished file: the
//! same samples, the same WAV.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sonantica_audio::OutputFormat;
use sonantica_pipeline::separate::{merge_spans, LiveStems};
use sonantica_pipeline::{PipelineError, PipelineResult};

use super::{AppError, AppResult};

/// What a running job has published.
#[derive(Debug)]
pub(crate) struct LiveFile {
    file: Arc<File>,
    /// Output rate and frames of the stems.
    rate: u32,
    frames: usize,
    /// Channels of the multistem layout (two per stem).
    channels: usize,
    /// Final spans, in output frames, sorted and merged.
    ready: Vec<Range<usize>>,
    /// The job has ended (done, failed or cancelled): nothing more comes.
    ended: bool,
    /// A second the listener sought to whose stems are not final: the
    /// engine makes them next (taken by [`LiveStems::wanted_s`]).
    wanted: Option<f64>,
}

impl LiveFile {
    /// The final spans in seconds.
    pub(crate) fn ready_s(&self) -> Vec<[f64; 2]> {
        let rate = f64::from(self.rate);
        self.ready
            .iter()
            .map(|r| [r.start as f64 / rate, r.end as f64 / rate])
            .collect()
    }

    /// The number of stems.
    pub(crate) fn stems(&self) -> usize {
        self.channels / 2
    }

    /// Whether output frame `at` is final.
    fn is_ready(&self, at: usize) -> bool {
        self.ready.iter().any(|r| r.contains(&at))
    }

    /// The listener wants the stems from `s` seconds now: unless they are
    /// final already, the engine moves its next part there.
    pub(crate) fn seek(&mut self, s: f64) {
        let at = (s * f64::from(self.rate)).round() as usize;
        if s.is_finite() && s >= 0.0 && at < self.frames && !self.is_ready(at) {
            self.wanted = Some(s);
        }
    }

    /// A reader is near the end of the final stems it reads, at `s`: unless
    /// the engine is asked to go elsewhere already, it makes the stems from
    /// there next. (When it is already working there, the pipeline carries on
    /// without a break: see `LiveStems::wanted_s`.)
    fn reaching(&mut self, s: f64) {
        if self.wanted.is_none() {
            self.seek(s);
        }
    }
}

/// How far ahead of a reader the stems must be final before it asks the engine
/// to come back to it: a listener who sought elsewhere and back must not wait
/// for the rest of the track to be separated first.
const EDGE_AHEAD_S: f64 = 20.0;

/// The worker side: a [`LiveStems`] that fills a [`LiveFile`] shared with the
/// API through `slot`.
pub(crate) struct StationLive {
    slot: Arc<Mutex<Option<LiveFile>>>,
    file: Arc<File>,
    /// The multistem file's format: what its samples decode to.
    format: OutputFormat,
    channels: usize,
    bytes: Vec<u8>,
}

impl StationLive {
    /// A sink for `stems` stems whose temporary file lies in `tmp`.
    pub(crate) fn new(
        slot: Arc<Mutex<Option<LiveFile>>>,
        tmp: &Path,
        stems: usize,
    ) -> AppResult<Self> {
        std::fs::create_dir_all(tmp).map_err(|e| AppError::io(tmp, e))?;
        let file = tempfile::tempfile_in(tmp).map_err(|e| AppError::io(tmp, e))?;
        Ok(Self {
            slot,
            file: Arc::new(file),
            format: super::library::multistem_format(stems).0,
            channels: 2 * stems,
            bytes: Vec::new(),
        })
    }
}

impl LiveStems for StationLive {
    fn begin(&mut self, rate: u32, frames: usize) -> PipelineResult<()> {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(LiveFile {
                file: Arc::clone(&self.file),
                rate,
                frames,
                channels: self.channels,
                ready: Vec::new(),
                ended: false,
                wanted: None,
            });
        }
        Ok(())
    }

    fn ready(&mut self, at: usize, block: &[Vec<Vec<f32>>]) -> PipelineResult<()> {
        let n = block.first().and_then(|s| s.first()).map_or(0, Vec::len);
        self.bytes.clear();
        self.bytes.reserve(n * self.channels * 4);
        for i in 0..n {
            for stem in block {
                // The multistem file holds each stem's first and last channel.
                for c in [&stem[0], &stem[stem.len() - 1]] {
                    let v = self.format.round_trip(c[i]);
                    self.bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.file
            .write_all_at(&self.bytes, (at * self.channels * 4) as u64)
            .map_err(|e| PipelineError::io("the live stems' temporary file", e))?;
        if let Ok(mut slot) = self.slot.lock() {
            if let Some(live) = slot.as_mut() {
                merge_spans(&mut live.ready, at..at + n);
            }
        }
        Ok(())
    }

    fn wanted_s(&mut self) -> Option<f64> {
        self.slot.lock().ok()?.as_mut()?.wanted.take()
    }
}

/// One part of a remote worker's stems (`PUT /api/worker/jobs/{id}/parts`):
/// little-endian f32 frames from output frame `at`, laid out as the
/// multistem file (each stem's left and right, in source order).
pub(crate) struct Part<'a> {
    /// The stems' rate (the track's).
    pub rate: u32,
    /// The stems' length in frames.
    pub frames: usize,
    /// How many stems.
    pub stems: usize,
    /// The first frame of the part.
    pub at: usize,
    /// The samples.
    pub bytes: &'a [u8],
}

/// Stores a remote worker's part in `slot` (creating its temporary file in
/// `tmp` with the first part) and returns the second the listener wants next,
/// if any (see [`LiveFile::seek`]). The samples are made what the finished
/// multistem file will decode them to: the worker's 24-bit FLAC stems, then
/// that file's format, so a window served now equals the finished one's.
/// A part that does not fit the parts before it, runs past the end, or holds
/// a value that is not a finite number is refused and nothing of it is kept.
pub(crate) fn receive_part(
    slot: &Mutex<Option<LiveFile>>,
    tmp: &Path,
    part: &Part<'_>,
) -> AppResult<Option<f64>> {
    let channels = 2 * part.stems;
    let frame_bytes = channels * 4;
    if part.bytes.is_empty() || !part.bytes.len().is_multiple_of(frame_bytes) {
        return Err(AppError::BadStems(format!(
            "a part of {} bytes is not whole frames of {channels} 32-bit float channels",
            part.bytes.len()
        )));
    }
    let n = part.bytes.len() / frame_bytes;
    if part.at.checked_add(n).is_none_or(|end| end > part.frames) {
        return Err(AppError::BadStems(format!(
            "a part of {n} frames from frame {} runs past the stems' {} frames",
            part.at, part.frames
        )));
    }
    let uploaded = OutputFormat::Flac24;
    let format = super::library::multistem_format(part.stems).0;
    let mut samples = Vec::with_capacity(part.bytes.len());
    for b in part.bytes.chunks_exact(4) {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if !v.is_finite() {
            return Err(AppError::BadStems(
                "a part holds a value that is not a finite number".into(),
            ));
        }
        samples.extend_from_slice(&format.round_trip(uploaded.round_trip(v)).to_le_bytes());
    }
    let file = {
        let mut guard = slot
            .lock()
            .map_err(|_| AppError::Internal("the live stems' lock is poisoned".into()))?;
        match guard.as_ref() {
            Some(live) => {
                if (live.rate, live.frames, live.channels) != (part.rate, part.frames, channels) {
                    return Err(AppError::BadStems(format!(
                        "a part of {} stems, {} frames at {} Hz does not fit the parts before it \
                         ({} stems, {} frames at {} Hz)",
                        part.stems,
                        part.frames,
                        part.rate,
                        live.stems(),
                        live.frames,
                        live.rate
                    )));
                }
                Arc::clone(&live.file)
            }
            None => {
                std::fs::create_dir_all(tmp).map_err(|e| AppError::io(tmp, e))?;
                let file = Arc::new(tempfile::tempfile_in(tmp).map_err(|e| AppError::io(tmp, e))?);
                *guard = Some(LiveFile {
                    file: Arc::clone(&file),
                    rate: part.rate,
                    frames: part.frames,
                    channels,
                    ready: Vec::new(),
                    ended: false,
                    wanted: None,
                });
                file
            }
        }
    };
    // Written outside the lock: readers of the spans already ready go on.
    file.write_all_at(&samples, (part.at * frame_bytes) as u64)
        .map_err(|e| AppError::io("the live stems' temporary file", e))?;
    let mut guard = slot
        .lock()
        .map_err(|_| AppError::Internal("the live stems' lock is poisoned".into()))?;
    Ok(guard.as_mut().and_then(|live| {
        merge_spans(&mut live.ready, part.at..part.at + n);
        live.wanted.take()
    }))
}

/// Marks a job's published stems as complete: readers waiting for more stop.
pub(crate) fn end(slot: &Mutex<Option<LiveFile>>) {
    if let Ok(mut slot) = slot.lock() {
        if let Some(live) = slot.as_mut() {
            live.ended = true;
        }
    }
}

/// Reads a running job's stems in order from a frame, waiting at the edge of
/// what is ready for the engine to publish more: the station's stream of
/// stems still being made. Ends at the end of the track; fails if the job ends
/// before the stems it waits for are made.
pub(crate) struct LiveReader {
    slot: Arc<Mutex<Option<LiveFile>>>,
    file: Arc<File>,
    info: sonantica_audio::AudioInfo,
    at: usize,
    block: Vec<Vec<f32>>,
    raw: Vec<u8>,
    /// Asked between waits: true when nobody reads any more.
    gone: Box<dyn Fn() -> bool + Send>,
}

/// How long a reader waits for the next stems before giving up (a stalled
/// job's lease runs out well before).
const WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(300);

impl LiveReader {
    /// A reader from `start_s` seconds; `None` before the job has published
    /// its layout (it is still decoding the track).
    /// A listener starting where the stems are not final moves the engine
    /// there ([`LiveFile::seek`]).
    pub(crate) fn new(slot: Arc<Mutex<Option<LiveFile>>>, start_s: f64) -> AppResult<Option<Self>> {
        let (file, info, at) = {
            let mut guard = slot
                .lock()
                .map_err(|_| AppError::Internal("the live stems' lock is poisoned".into()))?;
            let Some(live) = guard.as_mut() else {
                return Ok(None);
            };
            let at = (start_s * f64::from(live.rate)).round() as usize;
            if at >= live.frames {
                return Err(AppError::BadRequest(format!(
                    "start_s {start_s} is past the end of the track ({:.2} s)",
                    live.frames as f64 / f64::from(live.rate)
                )));
            }
            live.seek(start_s);
            let info = sonantica_audio::AudioInfo {
                sample_rate: live.rate,
                channels: live.channels,
                layout: sonantica_audio::ChannelLayout::Discrete(live.channels as u16),
                bits_per_sample: None,
                float: true,
                frames: Some(live.frames as u64),
                codec: "pcm_f32le".into(),
                tags: Vec::new(),
            };
            (Arc::clone(&live.file), info, at)
        };
        Ok(Some(Self {
            slot,
            file,
            info,
            at,
            block: Vec::new(),
            raw: Vec::new(),
            gone: Box::new(|| false),
        }))
    }

    /// The next frame it reads.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// Asks `gone` between waits, and stops waiting when it says true.
    pub(crate) fn watch(&mut self, gone: Box<dyn Fn() -> bool + Send>) {
        self.gone = gone;
    }

    /// The stems' rate, channels and length (from the reader's start frame on,
    /// `frames` is the whole track's).
    pub(crate) fn info(&self) -> &sonantica_audio::AudioInfo {
        &self.info
    }

    /// The next block of ready frames, waiting for them when needed.
    pub(crate) fn next_block(&mut self) -> AppResult<Option<&[Vec<f32>]>> {
        const BLOCK: usize = 4096;
        let total = self.info.frames.unwrap_or(0) as usize;
        if self.at >= total {
            return Ok(None);
        }
        let waited = std::time::Instant::now();
        let n = loop {
            let (avail, ended) = {
                let mut guard = self
                    .slot
                    .lock()
                    .map_err(|_| AppError::Internal("the live stems' lock is poisoned".into()))?;
                let live = guard
                    .as_mut()
                    .ok_or_else(|| AppError::Internal("the live stems went away".into()))?;
                let avail = live
                    .ready
                    .iter()
                    .find(|r| r.start <= self.at && self.at < r.end)
                    .map_or(0, |r| r.end - self.at);
                let rate = f64::from(live.rate);
                let edge = self.at + avail;
                if edge < total && (avail as f64) < EDGE_AHEAD_S * rate && !(self.gone)() {
                    live.reaching(edge as f64 / rate);
                }
                (avail, live.ended)
            };
            if avail > 0 {
                break avail.min(BLOCK);
            }
            if ended {
                return Err(AppError::Conflict(
                    "the separation stopped before these stems were made".into(),
                ));
            }
            if (self.gone)() || waited.elapsed() > WAIT_MAX {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(40));
        };
        let channels = self.info.channels;
        self.raw.resize(n * channels * 4, 0);
        self.file
            .read_exact_at(&mut self.raw, (self.at * channels * 4) as u64)
            .map_err(|e| AppError::io("the live stems' temporary file", e))?;
        self.block.resize_with(channels, Vec::new);
        self.block.iter_mut().for_each(Vec::clear);
        for frame in self.raw.chunks_exact(channels * 4) {
            for (p, b) in self.block.iter_mut().zip(frame.chunks_exact(4)) {
                p.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
        }
        self.at += n;
        Ok(Some(&self.block))
    }
}

/// A window of a running job's stems: `duration_s` from `start_s`, shorter at
/// the end of the track, cut as the finished multistem file's window would be
/// (see [`super::Library::multistem_window`]); a conflict naming the ready
/// spans when any of it is not final yet.
pub(crate) fn window(
    slot: &Mutex<Option<LiveFile>>,
    tmp: &Path,
    start_s: f64,
    duration_s: f64,
) -> AppResult<File> {
    let (file, rate, channels, range) = {
        let guard = slot
            .lock()
            .map_err(|_| AppError::Internal("the live stems' lock is poisoned".into()))?;
        let not_ready = |ready: Vec<[f64; 2]>| AppError::NotReady {
            detail: format!(
                "the stems from {start_s} s for {duration_s} s are still being separated; \
                 ask again for a window inside the ready spans"
            ),
            ready,
        };
        let Some(live) = guard.as_ref() else {
            return Err(not_ready(Vec::new()));
        };
        let rate = f64::from(live.rate);
        let skip = (start_s * rate).round() as usize;
        let len = ((duration_s * rate).round() as usize).max(1);
        if skip >= live.frames {
            return Err(AppError::BadRequest(format!(
                "start_s {start_s} is past the end of the track ({:.2} s)",
                live.frames as f64 / rate
            )));
        }
        let range = skip..(skip + len).min(live.frames);
        if !live
            .ready
            .iter()
            .any(|r| r.start <= range.start && range.end <= r.end)
        {
            return Err(not_ready(live.ready_s()));
        }
        (Arc::clone(&live.file), live.rate, live.channels, range)
    };
    let out = tempfile::Builder::new()
        .prefix(".window-")
        .suffix(".wav")
        .tempfile_in(tmp)
        .map_err(|e| AppError::io(tmp, e))?
        .into_temp_path();
    let mut w = sonantica_audio::AudioWriter::create(
        &out,
        OutputFormat::WavF32,
        rate,
        sonantica_audio::ChannelLayout::Discrete(channels as u16),
    )?;
    const BLOCK: usize = 1 << 14;
    let mut raw = vec![0u8; BLOCK * channels * 4];
    let mut planes = vec![Vec::with_capacity(BLOCK); channels];
    let mut at = range.start;
    while at < range.end {
        let n = BLOCK.min(range.end - at);
        let bytes = &mut raw[..n * channels * 4];
        file.read_exact_at(bytes, (at * channels * 4) as u64)
            .map_err(|e| AppError::io("the live stems' temporary file", e))?;
        planes.iter_mut().for_each(Vec::clear);
        for frame in bytes.chunks_exact(channels * 4) {
            for (p, b) in planes.iter_mut().zip(frame.chunks_exact(4)) {
                p.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            }
        }
        let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        w.write(&refs)?;
        at += n;
    }
    w.finish()?;
    File::open(&out).map_err(|e| AppError::io(&out, e))
}
