//! Ogg Opus (RFC 7845) written as it is encoded, to any `Write`: what the
//! station streams to players that ask for a smaller file than the original.
//!
//! The encoder is opus-rs, a pure-Rust port of libopus: the libopus bindings
//! need libopus' headers or CMake on the build machine, which would break the
//! station's two-command set-up. The Ogg pages come from the `ogg` crate.
//!
//! Input of any rate is resampled to Opus' 48 kHz; a stream of more than two
//! channels keeps its first two. The length is exact: the header's pre-skip
//! drops the encoder's look-ahead, and the last page's granule position ends
//! the stream on the input's last sample (a decoder trims both).

use std::io::Write;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus_rs::{Application, OpusEncoder};

use crate::{AudioError, Resampler};

/// Opus always runs at 48 kHz.
const RATE: u32 = 48_000;
/// 20 ms frames: Opus' default for music.
const FRAME: usize = 960;
/// The encoder's look-ahead at 48 kHz for `Application::Audio` (2.5 ms of
/// analysis plus 4 ms of delay compensation, as libopus reports it).
const PRE_SKIP: usize = 312;
/// A page is closed about once a second, so a player receives audio steadily.
const PACKETS_PER_PAGE: usize = 50;

/// An Ogg Opus stream being written.
pub struct OggOpusWriter<W: Write> {
    out: PacketWriter<'static, W>,
    encoder: OpusEncoder,
    resampler: Resampler,
    channels: usize,
    serial: u32,
    /// 48 kHz samples waiting for a whole frame, interleaved.
    pending: Vec<f32>,
    resampled: Vec<Vec<f32>>,
    packet: Vec<u8>,
    /// Input frames (at 48 kHz) fed so far.
    frames_in: u64,
    /// Frames encoded so far (look-ahead included).
    frames_out: u64,
    packets_on_page: usize,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream of `channels` (1 or more; only the first two are kept)
    /// at `input_rate`, encoded at `bitrate` bits per second, with `tags`
    /// (`NAME`, value) in its comment header.
    pub fn new(
        out: W,
        input_rate: u32,
        channels: usize,
        bitrate: u32,
        tags: &[(String, String)],
    ) -> Result<Self, AudioError> {
        let bad = |m: &str| AudioError::InvalidArgument(format!("Opus encoder: {m}"));
        if channels == 0 {
            return Err(bad("no channels"));
        }
        let kept = channels.min(2);
        let mut encoder = OpusEncoder::new(RATE as i32, kept, Application::Audio).map_err(bad)?;
        encoder.bitrate_bps = bitrate.clamp(6_000, 510_000) as i32;
        encoder.complexity = 10;
        let resampler = Resampler::new(input_rate, RATE, kept)?;
        // Any serial will do for a single stream; vary it so that two streams
        // never look like one.
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        let mut out = PacketWriter::new(out);
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(kept as u8);
        head.extend_from_slice(&(PRE_SKIP as u16).to_le_bytes());
        head.extend_from_slice(&input_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0: mono or stereo
        let io = |e: std::io::Error| AudioError::InvalidArgument(format!("writing Ogg Opus: {e}"));
        out.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let mut comments = Vec::new();
        let vendor = b"Sonantica (opus-rs)";
        comments.extend_from_slice(b"OpusTags");
        comments.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        comments.extend_from_slice(vendor);
        comments.extend_from_slice(&(tags.len() as u32).to_le_bytes());
        for (k, v) in tags {
            let c = format!("{k}={v}");
            comments.extend_from_slice(&(c.len() as u32).to_le_bytes());
            comments.extend_from_slice(c.as_bytes());
        }
        out.write_packet(comments, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        Ok(Self {
            out,
            encoder,
            resampler,
            channels: kept,
            serial,
            pending: Vec::with_capacity(FRAME * 4),
            resampled: vec![Vec::new(); kept],
            packet: vec![0; 4000],
            frames_in: 0,
            frames_out: 0,
            packets_on_page: 0,
        })
    }

    /// Encodes one block of planar samples (the stream's channels; past the
    /// second ignored).
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<(), AudioError> {
        if planes.len() < self.channels {
            return Err(AudioError::InvalidArgument(format!(
                "{} channels given to a {}-channel Opus stream",
                planes.len(),
                self.channels
            )));
        }
        for r in &mut self.resampled {
            r.clear();
        }
        self.resampler
            .process(&planes[..self.channels], &mut self.resampled)?;
        self.queue_resampled();
        self.encode_whole_frames(false)
    }

    /// Ends the stream: the last frames, padded, and the final granule
    /// position that trims the padding. Returns the writer.
    pub fn finish(mut self) -> Result<W, AudioError> {
        for r in &mut self.resampled {
            r.clear();
        }
        self.resampler.finish(&mut self.resampled)?;
        self.queue_resampled();
        // Enough silence after the input for the encoder's look-ahead to
        // bring its last sample out.
        let end = self.frames_in + PRE_SKIP as u64;
        let encoded_after = self.frames_out + (self.pending.len() / self.channels) as u64;
        let short = end.saturating_sub(encoded_after) as usize;
        self.pending
            .extend(std::iter::repeat_n(0.0, short * self.channels));
        let rest = (self.pending.len() / self.channels) % FRAME;
        if rest != 0 {
            self.pending
                .extend(std::iter::repeat_n(0.0, (FRAME - rest) * self.channels));
        }
        self.encode_whole_frames(true)?;
        Ok(self.out.into_inner())
    }

    fn queue_resampled(&mut self) {
        let n = self.resampled.first().map_or(0, Vec::len);
        self.frames_in += n as u64;
        for i in 0..n {
            for c in &self.resampled {
                self.pending.push(c[i]);
            }
        }
    }

    fn encode_whole_frames(&mut self, last: bool) -> Result<(), AudioError> {
        let step = FRAME * self.channels;
        let frames = self.pending.len() / step;
        for k in 0..frames {
            let pcm = &self.pending[k * step..(k + 1) * step];
            let bytes = self
                .encoder
                .encode(pcm, FRAME, &mut self.packet)
                .map_err(|e| AudioError::InvalidArgument(format!("Opus encoder: {e}")))?;
            self.frames_out += FRAME as u64;
            let is_last = last && k + 1 == frames;
            self.packets_on_page += 1;
            let (end, granule) = if is_last {
                // The granule of the last page: the input's length after the
                // pre-skip, which trims the padding.
                (
                    PacketWriteEndInfo::EndStream,
                    self.frames_in + PRE_SKIP as u64,
                )
            } else if self.packets_on_page >= PACKETS_PER_PAGE {
                (PacketWriteEndInfo::EndPage, self.frames_out)
            } else {
                (PacketWriteEndInfo::NormalPacket, self.frames_out)
            };
            if !matches!(end, PacketWriteEndInfo::NormalPacket) {
                self.packets_on_page = 0;
            }
            self.out
                .write_packet(self.packet[..bytes].to_vec(), self.serial, end, granule)
                .map_err(|e| AudioError::InvalidArgument(format!("writing Ogg Opus: {e}")))?;
        }
        self.pending.drain(..frames * step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The granule positions of every page (`OggS` … absolute granule at 6).
    fn granules(ogg: &[u8]) -> Vec<u64> {
        let mut out = Vec::new();
        let mut i = 0;
        while i + 27 <= ogg.len() {
            assert_eq!(&ogg[i..i + 4], b"OggS", "page at {i}");
            out.push(u64::from_le_bytes(
                ogg[i + 6..i + 14].try_into().unwrap_or_default(),
            ));
            let segments = ogg[i + 26] as usize;
            let body: usize = ogg[i + 27..i + 27 + segments]
                .iter()
                .map(|&b| b as usize)
                .sum();
            i += 27 + segments + body;
        }
        assert_eq!(i, ogg.len(), "whole pages");
        out
    }

    #[test]
    fn the_last_granule_is_the_input_length_at_48k_after_the_pre_skip() -> Result<(), AudioError> {
        // 1.5 s at 44.1 kHz in uneven blocks: 72 000 samples at 48 kHz.
        let n = 66_150;
        let tone: Vec<f32> = (0..n).map(|i| (i as f32 * 0.03).sin() * 0.5).collect();
        let mut w = OggOpusWriter::new(
            Vec::new(),
            44_100,
            2,
            96_000,
            &[("TITLE".into(), "t".into())],
        )?;
        for chunk in tone.chunks(777) {
            w.write(&[chunk, chunk])?;
        }
        let ogg = w.finish()?;
        let g = granules(&ogg);
        assert_eq!(&g[..2], &[0, 0], "the two header pages");
        assert_eq!(*g.last().unwrap_or(&0), 72_000 + PRE_SKIP as u64);
        assert!(
            g.windows(2).all(|w| w[0] <= w[1]),
            "granules never go back: {g:?}"
        );
        assert_eq!(&ogg[28..36], b"OpusHead");
        Ok(())
    }
}
