//! Streaming FLAC and WAV writers.
//!
//! Both write to a temporary name through [`AtomicFile`] and appear at their final
//! path only after [`AudioWriter::finish`]; dropping a writer, or any error, leaves
//! nothing on disk.
//!
//! Float samples are quantised by rounding `x · 2^(bits-1)` and clamping, the exact
//! inverse of how [`crate::Decoder`] scales integers, so integer PCM survives a
//! decode → encode round trip bit-exactly. No dither is added: callers that reduce
//! bit depth on purpose should dither first.

use std::path::Path;
use std::str::FromStr;

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};

use crate::atomic::AtomicFile;
use crate::{AudioError, ChannelLayout};

/// Container and sample format of an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// FLAC, 16-bit.
    Flac16,
    /// FLAC, 24-bit.
    Flac24,
    /// WAV, 16-bit integer PCM.
    Wav16,
    /// WAV, 24-bit integer PCM.
    Wav24,
    /// WAV, 32-bit IEEE float.
    WavF32,
}

impl OutputFormat {
    /// Bits per stored sample.
    pub const fn bits(self) -> u32 {
        match self {
            OutputFormat::Flac16 | OutputFormat::Wav16 => 16,
            OutputFormat::Flac24 | OutputFormat::Wav24 => 24,
            OutputFormat::WavF32 => 32,
        }
    }

    /// File extension without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            OutputFormat::Flac16 | OutputFormat::Flac24 => "flac",
            _ => "wav",
        }
    }

    /// True for integer formats, which clip outside [-1, 1).
    pub const fn is_integer(self) -> bool {
        !matches!(self, OutputFormat::WavF32)
    }

    /// The sample a reader of this format gets back for `x` written: `x`
    /// quantised (rounded and clamped as the writers do) and scaled back. What
    /// the station serves of stems still being made, so that it equals what the
    /// finished files will decode to.
    pub fn round_trip(self, x: f32) -> f32 {
        if self.is_integer() {
            let bits = self.bits();
            (f64::from(quantise(x, bits)) / (1i64 << (bits - 1)) as f64) as f32
        } else {
            x
        }
    }
}

impl FromStr for OutputFormat {
    type Err = AudioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "flac" | "flac24" | "flac-24" => OutputFormat::Flac24,
            "flac16" | "flac-16" => OutputFormat::Flac16,
            "wav" | "wav16" | "wav-16" => OutputFormat::Wav16,
            "wav24" | "wav-24" => OutputFormat::Wav24,
            "wav-f32" | "wavf32" | "wav32f" => OutputFormat::WavF32,
            other => {
                return Err(AudioError::InvalidArgument(format!(
                    "unknown output format {other:?}: expected flac, flac16, wav, wav24 or wav-f32"
                )))
            }
        })
    }
}

/// Streaming writer for any [`OutputFormat`].
#[derive(Debug)]
pub enum AudioWriter {
    /// A FLAC file (boxed: the encoder state is large).
    Flac(Box<FlacWriter>),
    /// A WAV file.
    Wav(WavWriter),
}

impl AudioWriter {
    /// Starts writing `path` (its directory must exist).
    pub fn create(
        path: &Path,
        format: OutputFormat,
        sample_rate: u32,
        layout: ChannelLayout,
    ) -> Result<Self, AudioError> {
        Self::create_tagged(path, format, sample_rate, layout, &[])
    }

    /// Like [`AudioWriter::create`], with `tags` (name, value) as the FLAC
    /// file's Vorbis comments; WAV files carry none.
    pub fn create_tagged(
        path: &Path,
        format: OutputFormat,
        sample_rate: u32,
        layout: ChannelLayout,
        tags: &[(String, String)],
    ) -> Result<Self, AudioError> {
        Ok(match format {
            OutputFormat::Flac16 | OutputFormat::Flac24 => AudioWriter::Flac(Box::new(
                FlacWriter::create(path, sample_rate, layout, format.bits(), tags)?,
            )),
            OutputFormat::Wav16 => AudioWriter::Wav(WavWriter::create(
                path,
                sample_rate,
                layout,
                WavSample::Int(16),
            )?),
            OutputFormat::Wav24 => AudioWriter::Wav(WavWriter::create(
                path,
                sample_rate,
                layout,
                WavSample::Int(24),
            )?),
            OutputFormat::WavF32 => AudioWriter::Wav(WavWriter::create(
                path,
                sample_rate,
                layout,
                WavSample::Float32,
            )?),
        })
    }

    /// Appends planar frames (one slice per channel, equal lengths).
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<(), AudioError> {
        match self {
            AudioWriter::Flac(w) => w.write(planes),
            AudioWriter::Wav(w) => w.write(planes),
        }
    }

    /// Completes the file and renames it into place.
    pub fn finish(self) -> Result<(), AudioError> {
        match self {
            AudioWriter::Flac(w) => w.finish(),
            AudioWriter::Wav(w) => w.finish(),
        }
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        match self {
            AudioWriter::Flac(w) => w.frames,
            AudioWriter::Wav(w) => w.frames,
        }
    }
}

fn check_planes(planes: &[&[f32]], channels: usize) -> Result<usize, AudioError> {
    if planes.len() != channels {
        return Err(AudioError::InvalidArgument(format!(
            "expected {channels} channels, got {}",
            planes.len()
        )));
    }
    let n = planes.first().map_or(0, |p| p.len());
    if planes.iter().any(|p| p.len() != n) {
        return Err(AudioError::InvalidArgument(
            "channels of different lengths".into(),
        ));
    }
    Ok(n)
}

#[inline]
fn quantise(x: f32, bits: u32) -> i32 {
    let scale = (1i64 << (bits - 1)) as f64;
    let v = (f64::from(x) * scale).round();
    v.clamp(-scale, scale - 1.0) as i32
}

// ---------------------------------------------------------------------------------
// WAV

/// Sample encoding of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavSample {
    /// Integer PCM with this many bits (16 or 24).
    Int(u32),
    /// 32-bit IEEE float.
    Float32,
}

/// Streaming WAV writer. Written by hand rather than with `hound` because hound
/// writes the lowest N bits as the channel mask (0xFF for 8 channels, which is not
/// 7.1) and cannot write the mask for 2.1; see REFERENCE.md "Channel layouts".
#[derive(Debug)]
pub struct WavWriter {
    file: AtomicFile,
    channels: usize,
    sample: WavSample,
    frames: u64,
    data_bytes: u64,
    riff_size_offset: u64,
    data_size_offset: u64,
    fact_offset: Option<u64>,
    scratch: Vec<u8>,
}

const GUID_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

impl WavWriter {
    /// Starts a WAV file. Mono/stereo 16-bit files use the plain PCM header (the most
    /// compatible); everything else uses WAVE_FORMAT_EXTENSIBLE with the layout's mask.
    pub fn create(
        path: &Path,
        sample_rate: u32,
        layout: ChannelLayout,
        sample: WavSample,
    ) -> Result<Self, AudioError> {
        let channels = layout.channels();
        if channels == 0 || channels > 18 {
            return Err(AudioError::InvalidArgument(format!(
                "WAV: cannot write {channels} channels"
            )));
        }
        let (bits, format_tag) = match sample {
            WavSample::Int(b @ (16 | 24)) => (b, 1u16),
            WavSample::Int(b) => {
                return Err(AudioError::InvalidArgument(format!(
                    "WAV: unsupported bit depth {b}"
                )))
            }
            WavSample::Float32 => (32, 3u16),
        };
        let block_align = channels as u16 * (bits as u16 / 8);
        let extensible = channels > 2 || bits > 16;
        let mut h = Vec::with_capacity(80);
        h.extend_from_slice(b"RIFF");
        let riff_size_offset = h.len() as u64;
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(b"WAVE");
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&(if extensible { 40u32 } else { 16 }).to_le_bytes());
        h.extend_from_slice(&(if extensible { 0xFFFEu16 } else { format_tag }).to_le_bytes());
        h.extend_from_slice(&(channels as u16).to_le_bytes());
        h.extend_from_slice(&sample_rate.to_le_bytes());
        h.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
        h.extend_from_slice(&block_align.to_le_bytes());
        h.extend_from_slice(&(bits as u16).to_le_bytes());
        if extensible {
            h.extend_from_slice(&22u16.to_le_bytes());
            h.extend_from_slice(&(bits as u16).to_le_bytes());
            h.extend_from_slice(&layout.wave_mask().to_le_bytes());
            h.extend_from_slice(&format_tag.to_le_bytes());
            h.extend_from_slice(&GUID_TAIL);
        }
        let mut fact_offset = None;
        if format_tag == 3 {
            // Non-PCM formats carry a fact chunk with the frame count.
            h.extend_from_slice(b"fact");
            h.extend_from_slice(&4u32.to_le_bytes());
            fact_offset = Some(h.len() as u64);
            h.extend_from_slice(&0u32.to_le_bytes());
        }
        h.extend_from_slice(b"data");
        let data_size_offset = h.len() as u64;
        h.extend_from_slice(&0u32.to_le_bytes());

        let mut file = AtomicFile::create(path)?;
        file.write_all(&h)?;
        Ok(Self {
            file,
            channels,
            sample,
            frames: 0,
            data_bytes: 0,
            riff_size_offset,
            data_size_offset,
            fact_offset,
            scratch: Vec::new(),
        })
    }

    /// Appends planar frames.
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<(), AudioError> {
        let n = check_planes(planes, self.channels)?;
        self.scratch.clear();
        for i in 0..n {
            for p in planes {
                match self.sample {
                    WavSample::Int(16) => self
                        .scratch
                        .extend_from_slice(&(quantise(p[i], 16) as i16).to_le_bytes()),
                    WavSample::Int(_) => self
                        .scratch
                        .extend_from_slice(&quantise(p[i], 24).to_le_bytes()[..3]),
                    WavSample::Float32 => self.scratch.extend_from_slice(&p[i].to_le_bytes()),
                }
            }
        }
        let new_size = self.data_bytes + self.scratch.len() as u64;
        if new_size + 80 > u64::from(u32::MAX) {
            return Err(AudioError::InvalidArgument(format!(
                "{}: WAV files cannot exceed 4 GiB; use FLAC for this length",
                self.file.path().display()
            )));
        }
        self.file.write_all(&self.scratch)?;
        self.data_bytes = new_size;
        self.frames += n as u64;
        Ok(())
    }

    /// Writes the final sizes and renames the file into place.
    pub fn finish(mut self) -> Result<(), AudioError> {
        let data = self.data_bytes as u32;
        let header_len = self.data_size_offset as u32 + 4;
        let pad = data & 1;
        if pad == 1 {
            self.file.write_all(&[0])?;
        }
        self.file.patch(
            self.riff_size_offset,
            &(header_len - 8 + data + pad).to_le_bytes(),
        )?;
        self.file
            .patch(self.data_size_offset, &data.to_le_bytes())?;
        if let Some(off) = self.fact_offset {
            self.file.patch(off, &(self.frames as u32).to_le_bytes())?;
        }
        self.file.commit()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// FLAC

const FLAC_BLOCK: usize = 4096;

/// Streaming FLAC writer on top of flacenc's frame encoder: frames are encoded and
/// written as each 4096-frame block fills, so memory does not grow with length;
/// STREAMINFO (length, frame sizes, MD5) is rewritten in place at the end.
pub struct FlacWriter {
    file: AtomicFile,
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    verbatim_config: flacenc::error::Verified<flacenc::config::Encoder>,
    info: StreamInfo,
    context: Context,
    framebuf: FrameBuf,
    channels: usize,
    bits: u32,
    pending: Vec<i32>,
    frame_number: usize,
    frames: u64,
    sink: ByteSink,
}

impl std::fmt::Debug for FlacWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlacWriter")
            .field("path", &self.file.path())
            .field("channels", &self.channels)
            .field("bits", &self.bits)
            .field("frames", &self.frames)
            .finish()
    }
}

fn flac_err(path: &Path, what: impl std::fmt::Debug) -> AudioError {
    AudioError::InvalidArgument(format!("{}: FLAC encoder: {what:?}", path.display()))
}

impl FlacWriter {
    /// Starts a FLAC file with 16 or 24 bits and 1-8 channels. Layouts that are not
    /// FLAC's default for their channel count (2.1) are recorded in a
    /// `WAVEFORMATEXTENSIBLE_CHANNEL_MASK` tag; `tags` are written as Vorbis comments.
    pub fn create(
        path: &Path,
        sample_rate: u32,
        layout: ChannelLayout,
        bits: u32,
        tags: &[(String, String)],
    ) -> Result<Self, AudioError> {
        let channels = layout.channels();
        if !(1..=8).contains(&channels) {
            return Err(AudioError::InvalidArgument(format!(
                "FLAC holds 1 to 8 channels, not {channels}; use WAV for more"
            )));
        }
        if bits != 16 && bits != 24 {
            return Err(AudioError::InvalidArgument(format!(
                "FLAC: unsupported bit depth {bits}"
            )));
        }
        let mut config = flacenc::config::Encoder::default();
        config.block_size = FLAC_BLOCK;
        config.multithread = false;
        let mut verbatim = config.clone();
        let config = config.into_verified().map_err(|(_, e)| flac_err(path, e))?;
        verbatim.subframe_coding.use_constant = false;
        verbatim.subframe_coding.use_fixed = false;
        verbatim.subframe_coding.use_lpc = false;
        verbatim.stereo_coding.use_leftside = false;
        verbatim.stereo_coding.use_rightside = false;
        verbatim.stereo_coding.use_midside = false;
        let verbatim_config = verbatim
            .into_verified()
            .map_err(|(_, e)| flac_err(path, e))?;
        let mut info = StreamInfo::new(sample_rate as usize, channels, bits as usize)
            .map_err(|e| flac_err(path, e))?;
        info.set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
            .map_err(|e| flac_err(path, e))?;
        let framebuf = FrameBuf::with_size(channels, FLAC_BLOCK).map_err(|e| flac_err(path, e))?;

        let mut comments: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{}={v}", k.to_ascii_uppercase()))
            .collect();
        // FLAC's implied orders match ours, but decoders disagree on what 6 channels
        // mean (ffmpeg reads 5.1 with side surrounds): beyond stereo the layout is
        // named explicitly by the tag that ffmpeg and libFLAC read.
        if channels > 2 && layout.wave_mask() != 0 {
            comments.push(format!(
                "WAVEFORMATEXTENSIBLE_CHANNEL_MASK=0x{:x}",
                layout.wave_mask()
            ));
        }

        let mut file = AtomicFile::create(path)?;
        let mut header = b"fLaC".to_vec();
        let streaminfo = streaminfo_bytes(&info, path)?;
        header.push(if comments.is_empty() { 0x80 } else { 0x00 });
        header.extend_from_slice(&(streaminfo.len() as u32).to_be_bytes()[1..]);
        header.extend_from_slice(&streaminfo);
        if !comments.is_empty() {
            let vendor = b"sonantica";
            let mut body = Vec::new();
            body.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
            body.extend_from_slice(vendor);
            body.extend_from_slice(&(comments.len() as u32).to_le_bytes());
            for c in &comments {
                body.extend_from_slice(&(c.len() as u32).to_le_bytes());
                body.extend_from_slice(c.as_bytes());
            }
            header.push(0x80 | 4);
            header.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            header.extend_from_slice(&body);
        }
        file.write_all(&header)?;
        Ok(Self {
            file,
            config,
            verbatim_config,
            info,
            context: Context::new(bits as usize, channels),
            framebuf,
            channels,
            bits,
            pending: Vec::with_capacity(FLAC_BLOCK * channels),
            frame_number: 0,
            frames: 0,
            sink: ByteSink::new(),
        })
    }

    /// Appends planar frames.
    pub fn write(&mut self, planes: &[&[f32]]) -> Result<(), AudioError> {
        let n = check_planes(planes, self.channels)?;
        let mut i = 0;
        while i < n {
            let room = FLAC_BLOCK - self.pending.len() / self.channels;
            let take = room.min(n - i);
            for k in i..i + take {
                for p in planes {
                    self.pending.push(quantise(p[k], self.bits));
                }
            }
            i += take;
            if self.pending.len() == FLAC_BLOCK * self.channels {
                self.encode_pending()?;
            }
        }
        self.frames += n as u64;
        Ok(())
    }

    fn encode_pending(&mut self) -> Result<(), AudioError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.file.path().to_path_buf();
        self.context
            .fill_interleaved(&self.pending)
            .map_err(|e| flac_err(&path, e))?;
        self.framebuf
            .fill_interleaved(&self.pending)
            .map_err(|e| flac_err(&path, e))?;
        let mut frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.framebuf,
            self.frame_number,
            &self.info,
        )
        .map_err(|e| flac_err(&path, e))?;
        // flacenc 0.5 can pick a fixed predictor whose residual is larger than the raw
        // samples (seen on 24-bit noise). Such a frame is valid FLAC but exceeds the
        // size bound ffmpeg's parser relies on, and ffmpeg then decodes nothing; fall
        // back to verbatim subframes, which are never larger.
        let block = self.pending.len() / self.channels;
        let verbatim_bits =
            block * self.channels * self.bits as usize + 8 * (16 + 2 + self.channels);
        if frame.count_bits() > verbatim_bits {
            frame = flacenc::encode_fixed_size_frame(
                &self.verbatim_config,
                &self.framebuf,
                self.frame_number,
                &self.info,
            )
            .map_err(|e| flac_err(&path, e))?;
        }
        self.sink.clear();
        frame
            .write(&mut self.sink)
            .map_err(|e| flac_err(&path, e))?;
        self.file.write_all(self.sink.as_slice())?;
        self.info.update_frame_info(&frame);
        self.frame_number += 1;
        self.pending.clear();
        Ok(())
    }

    /// Encodes the last partial block, rewrites STREAMINFO and renames the file into place.
    pub fn finish(mut self) -> Result<(), AudioError> {
        self.encode_pending()?;
        let path = self.file.path().to_path_buf();
        self.info.set_total_samples(self.frames as usize);
        // A fixed-blocksize stream declares min = max block size even though its last
        // block may be shorter (as libFLAC does); some demuxers otherwise take it for
        // a variable-blocksize stream.
        self.info
            .set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
            .map_err(|e| flac_err(&path, e))?;
        self.info.set_md5_digest(&self.context.md5_digest());
        let bytes = streaminfo_bytes(&self.info, &path)?;
        // "fLaC" + 4-byte block header, then the 34-byte STREAMINFO body.
        self.file.patch(8, &bytes)?;
        self.file.commit()?;
        Ok(())
    }
}

fn streaminfo_bytes(info: &StreamInfo, path: &Path) -> Result<Vec<u8>, AudioError> {
    let mut sink = ByteSink::new();
    info.write(&mut sink).map_err(|e| flac_err(path, e))?;
    Ok(sink.as_slice().to_vec())
}
