//! Samples for a player that schedules them itself: a track (or one model's
//! stems, all in one stream) from any position, resampled to the player's
//! rate, as a 32-bit float WAV that arrives as fast as the player takes it.
//!
//! Why the station resamples: a browser plays buffers at another rate than
//! its own with linear interpolation, which dulls the top octave and aliases;
//! `sonantica_audio::Resampler` (rubato's FFT resampler) does not. And because
//! the stream has the player's rate, consecutive tracks join sample-exactly
//! whatever their own rates (gapless playback).

use std::ops::RangeInclusive;

use sonantica_audio::{Decoder, Resampler};
use sonantica_pipeline::sandbox::Stream;
use tokio::sync::mpsc;

use super::{AppError, AppResult, Library};

/// Rates a stream can be resampled to (what browsers' audio contexts use).
pub const STREAM_RATES: RangeInclusive<u32> = 8000..=192_000;

/// Frames per chunk sent (about 0.1 s at 44.1 kHz).
const CHUNK_FRAMES: usize = 4096;

/// Chunks in flight between the decoder and the connection: the station reads
/// ahead no further than this.
const CHUNKS_AHEAD: usize = 8;

/// A started stream: what it holds and its bytes (the WAV header first).
#[derive(Debug)]
pub struct PcmStream {
    /// Frames the stream will hold, when the source says how long it is.
    pub frames: Option<u64>,
    /// The bytes, chunk by chunk; an error ends the stream early.
    pub body: mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

/// A 32-bit float WAV header; `frames` unknown writes the largest sizes (read
/// to the end).
pub fn wav_f32_header(rate: u32, channels: usize, frames: Option<u64>) -> Vec<u8> {
    let block = 4 * channels as u32;
    let data = frames
        .map(|f| f.saturating_mul(u64::from(block)))
        .filter(|&b| b <= u64::from(u32::MAX - 36))
        .map_or(u32::MAX - 36, |b| b as u32);
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    h.extend_from_slice(&(channels as u16).to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * block).to_le_bytes());
    h.extend_from_slice(&(block as u16).to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

impl Library {
    /// Streams track `track_id` (or, with `model`, all its stems from that
    /// model, two channels each in source order) from `start_s` seconds,
    /// resampled to `rate`. The track's own file is decoded in the sandbox.
    pub async fn pcm_stream(
        &self,
        track_id: i64,
        model: Option<&str>,
        rate: u32,
        start_s: f64,
    ) -> AppResult<PcmStream> {
        check_stream_args(rate, start_s)?;
        let track = self.track(track_id).await?;
        // The multistem file is the station's own; the track's may be hostile.
        let (path, trusted) = match model {
            Some(_) => (self.multistem(track_id, model).await?, true),
            None => (self.track_file(&track)?, false),
        };
        let sandbox = self.sandbox().clone();
        let source = tokio::task::spawn_blocking(move || -> AppResult<Stream> {
            Ok(if trusted {
                Stream::Here(Decoder::open(&path)?)
            } else {
                sandbox.stream(&path)?
            })
        })
        .await
        .map_err(|e| AppError::Internal(format!("opening the stream failed: {e}")))??;
        let info = source.info().clone();
        let skip = (start_s * f64::from(info.sample_rate)).round() as u64;
        if info.frames.is_some_and(|f| skip >= f) {
            return Err(AppError::BadRequest(format!(
                "start_s {start_s} is past the end of the track ({:.2} s)",
                info.duration_s().unwrap_or(0.0)
            )));
        }
        start_pcm(Source::File(source), rate, skip, track_id)
    }
}

/// Refuses a rate a player cannot have and a start that is not a time.
pub(crate) fn check_stream_args(rate: u32, start_s: f64) -> AppResult<()> {
    if !STREAM_RATES.contains(&rate) {
        return Err(AppError::BadRequest(format!(
            "rate must be {} to {} Hz, not {rate}",
            STREAM_RATES.start(),
            STREAM_RATES.end()
        )));
    }
    if !(start_s.is_finite() && start_s >= 0.0) {
        return Err(AppError::BadRequest(format!(
            "start_s must be a number of seconds ≥ 0, not {start_s}"
        )));
    }
    Ok(())
}

/// Where a stream's samples come from.
pub(crate) enum Source {
    /// A file, from its start.
    File(Stream),
    /// A running job's stems, from the reader's position, waiting for them
    /// to be made.
    Live(Box<super::live::LiveReader>),
}

impl Source {
    fn info(&self) -> &sonantica_audio::AudioInfo {
        match self {
            Source::File(s) => s.info(),
            Source::Live(l) => l.info(),
        }
    }

    fn next_block(&mut self) -> AppResult<Option<&[Vec<f32>]>> {
        match self {
            Source::File(s) => Ok(s.next_block()?),
            Source::Live(l) => l.next_block(),
        }
    }
}

/// Starts streaming `source` from frame `skip` (of a file source; a live
/// source starts where its reader is), resampled to `rate`.
pub(crate) fn start_pcm(
    mut source: Source,
    rate: u32,
    skip: u64,
    track_id: i64,
) -> AppResult<PcmStream> {
    let info = source.info().clone();
    let resampler = Resampler::new(info.sample_rate, rate, info.channels)?;
    let remaining = match &source {
        Source::File(_) => info.frames.map(|f| f.saturating_sub(skip)),
        Source::Live(l) => info.frames.map(|f| f.saturating_sub(l.position() as u64)),
    };
    let frames = remaining.map(|f| resampler.output_len(f));
    let (tx, body) = mpsc::channel(CHUNKS_AHEAD);
    if let Source::Live(l) = &mut source {
        let watched = tx.clone();
        l.watch(Box::new(move || watched.is_closed()));
    }
    let channels = info.channels;
    tokio::task::spawn_blocking(move || {
        let header = wav_f32_header(rate, channels, frames);
        if tx.blocking_send(Ok(header)).is_ok() {
            if let Err(e) = pump(source, resampler, skip, &tx) {
                tracing::warn!(track_id, "stream ended early: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    Ok(PcmStream { frames, body })
}

/// Decodes, skips `skip` frames, resamples and sends interleaved chunks until
/// the source ends or the client goes away.
fn pump(
    mut source: Source,
    mut resampler: Resampler,
    mut skip: u64,
    tx: &mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> AppResult<()> {
    let channels = source.info().channels;
    let mut out = vec![Vec::with_capacity(2 * CHUNK_FRAMES); channels];
    let send = |out: &mut [Vec<f32>], all: bool| -> bool {
        while out[0].len() >= CHUNK_FRAMES || (all && !out[0].is_empty()) {
            let n = out[0].len().min(CHUNK_FRAMES);
            let mut bytes = Vec::with_capacity(n * channels * 4);
            for i in 0..n {
                for ch in out.iter() {
                    bytes.extend_from_slice(&ch[i].to_le_bytes());
                }
            }
            for ch in out.iter_mut() {
                ch.drain(..n);
            }
            if tx.blocking_send(Ok(bytes)).is_err() {
                return false; // the client went away
            }
        }
        true
    };
    while let Some(block) = source.next_block()? {
        let n = block.first().map_or(0, Vec::len) as u64;
        if skip >= n {
            skip -= n;
            continue;
        }
        let from = skip as usize;
        skip = 0;
        let planes: Vec<&[f32]> = block.iter().map(|c| &c[from..]).collect();
        resampler.process(&planes, &mut out)?;
        if !send(&mut out, false) {
            return Ok(());
        }
    }
    resampler.finish(&mut out)?;
    send(&mut out, true);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_what_ffmpeg_and_browsers_read_as_float_wav() {
        let h = wav_f32_header(48000, 8, Some(10));
        assert_eq!(h.len(), 44);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 36 + 320);
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), 3);
        assert_eq!(u16::from_le_bytes([h[22], h[23]]), 8);
        assert_eq!(u32::from_le_bytes([h[28], h[29], h[30], h[31]]), 48000 * 32);
        assert_eq!(u32::from_le_bytes([h[40], h[41], h[42], h[43]]), 320);
        // Unknown length: the largest sizes, read to the end.
        let h = wav_f32_header(44100, 2, None);
        assert_eq!(
            u32::from_le_bytes([h[40], h[41], h[42], h[43]]),
            u32::MAX - 36
        );
    }
}
