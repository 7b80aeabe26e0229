//! Streaming decode through symphonia.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::{AudioBufferRef, Signal};
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::{MetadataOptions, MetadataRevision, StandardTagKey};
use symphonia::core::probe::Hint;
use symphonia::core::sample::SampleFormat;

use crate::{AudioError, ChannelLayout};

/// What a decoded stream is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioInfo {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: usize,
    /// Speaker layout (from the file where it says, else the default for the count).
    pub layout: ChannelLayout,
    /// Bits per sample of the source for PCM-like codecs (FLAC, WAV, ALAC); `None`
    /// for lossy codecs, which have no bit depth.
    pub bits_per_sample: Option<u32>,
    /// True when the source samples are floating point.
    pub float: bool,
    /// Frames (samples per channel) the container declares, when it does.
    pub frames: Option<u64>,
    /// Codec short name (`flac`, `pcm_s16le`, `mp3`, `vorbis`, `aac`, `alac`, ...).
    pub codec: String,
    /// Tags as (key, value); standard keys are lower-case (`title`, `artist`, `album`,
    /// `track`, `date`, `genre`), others as found in the file.
    pub tags: Vec<(String, String)>,
}

impl AudioInfo {
    /// Declared duration in seconds, when the container declares its length.
    pub fn duration_s(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / f64::from(self.sample_rate))
    }

    /// The value of a tag, by key (case-insensitive).
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// A file being decoded packet by packet into planar `f32`.
pub struct Decoder {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    track_id: u32,
    info: AudioInfo,
    planes: Vec<Vec<f32>>,
    decoded: u64,
    finished: bool,
    /// `planes` holds a packet decoded while opening that has not been returned yet.
    pending_first: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("decoded", &self.decoded)
            .finish()
    }
}

impl Decoder {
    /// Opens `path` and reads its headers. The format is sniffed from the content;
    /// the extension is only a hint.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AudioError> {
        let path = path.as_ref().to_path_buf();
        let (mut format, tags) = open_format(&path)?;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::Unsupported {
                path: path.clone(),
                detail: "no audio track".into(),
            })?;
        let params = track.codec_params.clone();
        let track_id = track.id;
        let mut decoder = symphonia::default::get_codecs()
            // Frames are still checked against their CRCs; the whole-stream MD5 check
            // would cost about a tenth of an analysis and finds nothing the CRCs and
            // the frame count do not.
            .make(&params, &DecoderOptions { verify: false })
            .map_err(|e| open_error(&path, e))?;

        let mut sample_rate = params.sample_rate.or(decoder.codec_params().sample_rate);
        let mut channels_mask = params
            .channels
            .or(decoder.codec_params().channels)
            .map(|c| (c.count(), c.bits()));
        // Some containers (MP4) leave channels to the codec's own configuration,
        // known only once a packet is decoded: decode the first one now and keep it.
        let first = if channels_mask.is_none() || sample_rate.is_none() {
            let first = first_block(&path, format.as_mut(), decoder.as_mut(), track_id)?;
            sample_rate = Some(first.rate);
            channels_mask = Some(first.channels_mask);
            Some(first)
        } else {
            None
        };
        let sample_rate =
            sample_rate
                .filter(|r| *r > 0)
                .ok_or_else(|| AudioError::Unsupported {
                    path: path.clone(),
                    detail: "the stream does not declare a sample rate".into(),
                })?;
        let (channels, mask) =
            channels_mask
                .filter(|(c, _)| *c > 0)
                .ok_or_else(|| AudioError::Unsupported {
                    path: path.clone(),
                    detail: "the stream does not declare its channels".into(),
                })?;
        let codec = symphonia::default::get_codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name.to_string())
            .unwrap_or_else(|| format!("{:?}", params.codec));
        let lossy = matches!(codec.as_str(), "mp3" | "mp1" | "mp2" | "vorbis" | "aac");
        let bits_per_sample = if lossy {
            None
        } else {
            params
                .bits_per_sample
                .or(decoder.codec_params().bits_per_sample)
                .or_else(|| alac_bit_depth(params.extra_data.as_deref()))
                .or(first.as_ref().and_then(|f| f.bits))
        };
        let info = AudioInfo {
            sample_rate,
            channels,
            layout: layout_of(&tags, mask, channels),
            bits_per_sample,
            float: matches!(
                params.sample_format,
                Some(SampleFormat::F32 | SampleFormat::F64)
            ),
            frames: params.n_frames,
            codec,
            tags,
        };
        let first_planes = first.map(|f| f.planes);
        Ok(Self {
            path,
            format,
            decoder,
            track_id,
            pending_first: first_planes.is_some(),
            decoded: first_planes.as_ref().map_or(0, |p| p[0].len() as u64),
            planes: first_planes.unwrap_or_else(|| vec![Vec::new(); channels]),
            info,
            finished: false,
        })
    }

    /// The stream's properties.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The file being decoded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.decoded
    }

    /// Decodes the next packet. Returns one `Vec` per channel, all of the same
    /// length (valid until the next call), or `None` at the end of the stream.
    ///
    /// A frame that fails its checksum or cannot be parsed is an error (an analysis
    /// of damaged audio would be wrong), and so is a stream that ends before the
    /// length its header declares.
    pub fn next_block(&mut self) -> Result<Option<&[Vec<f32>]>, AudioError> {
        if self.finished {
            return Ok(None);
        }
        if self.pending_first {
            self.pending_first = false;
            return Ok(Some(&self.planes));
        }
        loop {
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end_of_stream();
                }
                Err(SymError::ResetRequired) => return Err(AudioError::Unsupported {
                    path: self.path.clone(),
                    detail:
                        "the stream changes its format part-way (chained streams are not supported)"
                            .into(),
                }),
                Err(SymError::IoError(e)) => return Err(AudioError::io(&self.path, e)),
                Err(e) => return Err(self.corrupt(e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end_of_stream();
                }
                Err(e) => return Err(self.corrupt(e)),
            };
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            copy_planar(&decoded, &mut self.planes);
            self.decoded += frames as u64;
            return Ok(Some(&self.planes));
        }
    }

    fn end_of_stream(&mut self) -> Result<Option<&[Vec<f32>]>, AudioError> {
        self.finished = true;
        if let Some(expected) = self.info.frames {
            // Lossy codecs may declare a length that differs from the decoded one by
            // encoder delay and padding; lossless ones must match, except ALAC:
            // its MP4 declares the sum of the sample table's durations, while an
            // edit list (written by ffmpeg for sources with a start offset) trims
            // the decoded stream by up to a packet (4096 frames by default).
            let slack = if self.info.bits_per_sample.is_none() || self.info.codec == "alac" {
                4096
            } else {
                0
            };
            if self.decoded + slack < expected {
                return Err(AudioError::Truncated {
                    path: self.path.clone(),
                    expected,
                    decoded: self.decoded,
                });
            }
        }
        if self.decoded == 0 {
            return Err(AudioError::Unsupported {
                path: self.path.clone(),
                detail: "the stream holds no audio frames".into(),
            });
        }
        Ok(None)
    }

    fn corrupt(&self, e: SymError) -> AudioError {
        AudioError::Corrupt {
            path: self.path.clone(),
            position_s: self.decoded as f64 / f64::from(self.info.sample_rate),
            detail: e.to_string(),
        }
    }

    /// Decodes the whole file into memory (for short files and tests).
    pub fn read_all(path: impl AsRef<Path>) -> Result<(AudioInfo, Vec<Vec<f32>>), AudioError> {
        let mut dec = Decoder::open(path)?;
        let mut out = vec![Vec::new(); dec.info.channels];
        while let Some(block) = dec.next_block()? {
            for (o, b) in out.iter_mut().zip(block) {
                o.extend_from_slice(b);
            }
        }
        Ok((dec.info.clone(), out))
    }
}

/// Sniffs the container of `path` and reads its headers: the format reader
/// and every tag (the probe's, then the container's).
/// A format reader and the tags read with its headers.
type Opened = (Box<dyn FormatReader>, Vec<(String, String)>);

fn open_format(path: &Path) -> Result<Opened, AudioError> {
    let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
    let len = file.metadata().map_err(|e| AudioError::io(path, e))?.len();
    if len == 0 {
        return Err(AudioError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions {
                enable_gapless: true,
                ..Default::default()
            },
            &MetadataOptions::default(),
        )
        .map_err(|e| open_error(path, e))?;
    let mut format = probed.format;
    let mut probe_meta = probed.metadata;
    let mut tags = Vec::new();
    if let Some(rev) = probe_meta.get().as_ref().and_then(|m| m.current().cloned()) {
        collect_tags(&rev, &mut tags);
    }
    if let Some(rev) = format.metadata().current() {
        collect_tags(rev, &mut tags);
    }
    Ok((format, tags))
}

/// The picture a file carries for its cover, as its bytes (JPEG, PNG, ...):
/// the front cover where the file says which picture is which, else the
/// first one. `None` when it carries none.
pub fn embedded_picture(path: &Path) -> Result<Option<Vec<u8>>, AudioError> {
    use symphonia::core::meta::StandardVisualKey;
    let file = File::open(path).map_err(|e| AudioError::io(path, e))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| open_error(path, e))?;
    let mut visuals = Vec::new();
    if let Some(rev) = probed
        .metadata
        .get()
        .as_ref()
        .and_then(|m| m.current().cloned())
    {
        visuals.extend(rev.visuals().iter().cloned());
    }
    if let Some(rev) = probed.format.metadata().current() {
        visuals.extend(rev.visuals().iter().cloned());
    }
    let front = visuals
        .iter()
        .position(|v| v.usage == Some(StandardVisualKey::FrontCover))
        .unwrap_or(0);
    Ok(visuals.into_iter().nth(front).map(|v| v.data.into_vec()))
}

/// The first decoded packet of a stream whose container does not say its
/// rate or channels, and what it says about them.
struct FirstBlock {
    planes: Vec<Vec<f32>>,
    bits: Option<u32>,
    rate: u32,
    channels_mask: (usize, u32),
}

fn first_block(
    path: &Path,
    format: &mut dyn FormatReader,
    decoder: &mut dyn symphonia::core::codecs::Decoder,
    track_id: u32,
) -> Result<FirstBlock, AudioError> {
    loop {
        let packet = format.next_packet().map_err(|e| open_error(path, e))?;
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| open_error(path, e))?;
        if decoded.frames() == 0 {
            continue;
        }
        let spec = *decoded.spec();
        let mut planes = vec![Vec::new(); spec.channels.count()];
        copy_planar(&decoded, &mut planes);
        return Ok(FirstBlock {
            bits: buffer_bits(&decoded),
            planes,
            rate: spec.rate,
            channels_mask: (spec.channels.count(), spec.channels.bits()),
        });
    }
}

/// The speaker layout: a WAVE_FORMAT_EXTENSIBLE mask in the tags wins over the
/// stream's channel mask (symphonia reports channels as a bit mask in that
/// order, so the same vocabulary applies).
fn layout_of(tags: &[(String, String)], mask: u32, channels: usize) -> ChannelLayout {
    let tag_mask = tags
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("WAVEFORMATEXTENSIBLE_CHANNEL_MASK"))
        .and_then(|(_, v)| {
            u32::from_str_radix(
                v.trim().trim_start_matches("0x").trim_start_matches("0X"),
                16,
            )
            .ok()
        });
    if channels == 1 {
        ChannelLayout::Mono
    } else {
        ChannelLayout::from_wave_mask(tag_mask.unwrap_or(mask), channels)
    }
}

fn open_error(path: &Path, e: SymError) -> AudioError {
    match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Unsupported {
                path: path.to_path_buf(),
                detail: "the file ends inside its headers (truncated, or not audio)".into(),
            }
        }
        SymError::IoError(io) => AudioError::io(path, io),
        SymError::Unsupported(what) => AudioError::Unsupported {
            path: path.to_path_buf(),
            detail: if what.contains("probe") || what.contains("format") {
                "not a recognised audio format".into()
            } else {
                what.to_string()
            },
        },
        other => AudioError::Unsupported {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

fn collect_tags(rev: &MetadataRevision, out: &mut Vec<(String, String)>) {
    for tag in rev.tags() {
        let key = match tag.std_key {
            Some(StandardTagKey::TrackTitle) => "title".to_string(),
            Some(StandardTagKey::Artist) => "artist".to_string(),
            Some(StandardTagKey::Album) => "album".to_string(),
            Some(StandardTagKey::AlbumArtist) => "album_artist".to_string(),
            Some(StandardTagKey::TrackNumber) => "track".to_string(),
            Some(StandardTagKey::Date) => "date".to_string(),
            Some(StandardTagKey::Genre) => "genre".to_string(),
            Some(StandardTagKey::Composer) => "composer".to_string(),
            Some(StandardTagKey::Comment) => "comment".to_string(),
            _ => tag.key.clone(),
        };
        let value = tag.value.to_string();
        if key.is_empty() {
            continue;
        }
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            out.push((key, value));
        }
    }
}

/// Bit depth from an ALAC magic cookie (ALACSpecificConfig: frameLength u32,
/// compatibleVersion u8, bitDepth u8, ...), with or without its atom header.
fn alac_bit_depth(cookie: Option<&[u8]>) -> Option<u32> {
    let c = cookie?;
    let cfg = if c.len() >= 12 && &c[4..8] == b"alac" {
        &c[12..]
    } else {
        c
    };
    cfg.get(5)
        .map(|b| u32::from(*b))
        .filter(|b| matches!(b, 16 | 20 | 24 | 32))
}

/// Bits per sample implied by a decoded buffer's integer type.
fn buffer_bits(buf: &AudioBufferRef<'_>) -> Option<u32> {
    match buf {
        AudioBufferRef::S8(_) | AudioBufferRef::U8(_) => Some(8),
        AudioBufferRef::S16(_) | AudioBufferRef::U16(_) => Some(16),
        AudioBufferRef::S24(_) | AudioBufferRef::U24(_) => Some(24),
        AudioBufferRef::S32(_) | AudioBufferRef::U32(_) => Some(32),
        AudioBufferRef::F32(_) | AudioBufferRef::F64(_) => None,
    }
}

fn copy_planar(buf: &AudioBufferRef<'_>, planes: &mut [Vec<f32>]) {
    macro_rules! copy {
        ($b:expr, $conv:expr) => {{
            for (ch, plane) in planes.iter_mut().enumerate() {
                plane.clear();
                plane.extend($b.chan(ch).iter().map(|&s| $conv(s)));
            }
        }};
    }
    // Integer formats are scaled by 2^(bits-1) so that integer PCM survives a
    // decode/encode round trip bit-exactly.
    match buf {
        AudioBufferRef::F32(b) => copy!(b, |s: f32| s),
        AudioBufferRef::F64(b) => copy!(b, |s: f64| s as f32),
        AudioBufferRef::S8(b) => copy!(b, |s: i8| f32::from(s) / 128.0),
        AudioBufferRef::S16(b) => copy!(b, |s: i16| f32::from(s) / 32768.0),
        AudioBufferRef::S24(b) => copy!(b, |s: symphonia::core::sample::i24| s.inner() as f32
            / 8_388_608.0),
        AudioBufferRef::S32(b) => copy!(b, |s: i32| (f64::from(s) / 2_147_483_648.0) as f32),
        AudioBufferRef::U8(b) => copy!(b, |s: u8| (f32::from(s) - 128.0) / 128.0),
        AudioBufferRef::U16(b) => copy!(b, |s: u16| (f32::from(s) - 32768.0) / 32768.0),
        AudioBufferRef::U24(b) => copy!(b, |s: symphonia::core::sample::u24| {
            (s.inner() as f32 - 8_388_608.0) / 8_388_608.0
        }),
        AudioBufferRef::U32(b) => copy!(b, |s: u32| ((f64::from(s) - 2_147_483_648.0)
            / 2_147_483_648.0) as f32),
    }
}

/// Reads a [`Decoder`] in blocks of a fixed number of frames, whatever the codec's
/// packet size, so that several files can be read in step.
#[derive(Debug)]
pub struct BlockReader {
    decoder: Decoder,
    pending: Vec<Vec<f32>>,
    offset: usize,
}

impl BlockReader {
    /// Wraps a decoder.
    pub fn new(decoder: Decoder) -> Self {
        let channels = decoder.info().channels;
        Self {
            decoder,
            pending: vec![Vec::new(); channels],
            offset: 0,
        }
    }

    /// The stream's properties.
    pub fn info(&self) -> &AudioInfo {
        self.decoder.info()
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        self.decoder.path()
    }

    /// Fills `out` (one `Vec` per channel, cleared first) with up to `frames`
    /// frames; returns how many. Fewer than `frames` only at the end of the stream.
    pub fn read(&mut self, frames: usize, out: &mut [Vec<f32>]) -> Result<usize, AudioError> {
        for o in out.iter_mut() {
            o.clear();
        }
        let mut got = 0;
        while got < frames {
            let avail = self.pending.first().map_or(0, |p| p.len()) - self.offset;
            if avail == 0 {
                match self.decoder.next_block()? {
                    Some(block) => {
                        for (p, b) in self.pending.iter_mut().zip(block) {
                            p.clear();
                            p.extend_from_slice(b);
                        }
                        self.offset = 0;
                        continue;
                    }
                    None => break,
                }
            }
            let take = avail.min(frames - got);
            for (o, p) in out.iter_mut().zip(&self.pending) {
                o.extend_from_slice(&p[self.offset..self.offset + take]);
            }
            self.offset += take;
            got += take;
        }
        Ok(got)
    }
}
