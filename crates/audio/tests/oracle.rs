//! Decoding and encoding checked against ffmpeg/ffprobe as an independent oracle.
//!
//! These tests need `ffmpeg` and `ffprobe` on the PATH (`.ci/run` installs them);
//! they fail, rather than skip, when the tools are missing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sonantica_audio::{AudioError, AudioWriter, ChannelLayout, Decoder, OutputFormat};
use sonantica_testkit::oracle::{ffmpeg, ffmpeg_decode, ffprobe_layout};
use sonantica_testkit::snr::aligned_snr_db;

/// A 3-second stereo test source: different tones left and right plus a little
/// noise, so channel swaps and offsets show.
fn make_source(dir: &Path, name: &str, codec_args: &[&str]) -> Result<PathBuf> {
    let path = dir.join(name);
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=3",
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:sample_rate=44100:duration=3:amplitude=0.2:seed=7",
        "-filter_complex",
        "[0][1]amerge=inputs=2,volume=0.7[a]",
        "-map",
        "[a]",
    ];
    args.extend_from_slice(codec_args);
    let p = path.to_string_lossy().to_string();
    args.push(&p);
    ffmpeg(&args)?;
    Ok(path)
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn lossless_formats_decode_identically_to_ffmpeg() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases: &[(&str, &[&str], Option<u32>)] = &[
        (
            "s16.flac",
            &["-c:a", "flac", "-sample_fmt", "s16"],
            Some(16),
        ),
        (
            "s24.flac",
            &[
                "-c:a",
                "flac",
                "-sample_fmt",
                "s32",
                "-bits_per_raw_sample",
                "24",
            ],
            Some(24),
        ),
        ("s16.wav", &["-c:a", "pcm_s16le"], Some(16)),
        ("s24.wav", &["-c:a", "pcm_s24le"], Some(24)),
        ("s32.wav", &["-c:a", "pcm_s32le"], Some(32)),
        ("f32.wav", &["-c:a", "pcm_f32le"], Some(32)),
        ("f64.wav", &["-c:a", "pcm_f64le"], Some(64)),
        (
            "ext.wav",
            &["-c:a", "pcm_s24le", "-rf64", "never", "-write_bext", "0"],
            Some(24),
        ),
        (
            "alac.m4a",
            &["-c:a", "alac", "-sample_fmt", "s16p"],
            Some(16),
        ),
    ];
    for (name, args, bits) in cases {
        let path = make_source(dir.path(), name, args)?;
        let (info, ours) = Decoder::read_all(&path).with_context(|| name.to_string())?;
        let theirs = ffmpeg_decode(&path, 2)?;
        assert_eq!(info.sample_rate, 44_100, "{name}");
        assert_eq!(info.channels, 2, "{name}");
        assert_eq!(info.bits_per_sample, *bits, "{name}");
        assert_eq!(ours[0].len(), theirs[0].len(), "{name}: frame count");
        assert_eq!(ours[0].len(), 132_300, "{name}: 3 s at 44.1 kHz");
        let diff = max_abs_diff(&ours, &theirs);
        // Integer PCM must match exactly; s32/f64 lose precision in the f32 output
        // of both decoders identically, so the bound is one f32 ulp near full scale.
        assert!(diff <= 6e-8, "{name}: max |ours - ffmpeg| = {diff:e}");
    }
    Ok(())
}

#[test]
fn lossy_formats_decode_like_ffmpeg() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // (file, encoder args, minimum SNR against ffmpeg's own decoder)
    let cases: &[(&str, &[&str], f64)] = &[
        ("a.mp3", &["-c:a", "libmp3lame", "-b:a", "192k"], 60.0),
        ("a.ogg", &["-c:a", "libvorbis", "-q:a", "5"], 60.0),
        ("a.m4a", &["-c:a", "aac", "-b:a", "192k"], 40.0),
    ];
    for (name, args, min_snr) in cases {
        let path = make_source(dir.path(), name, args)?;
        let (info, ours) = Decoder::read_all(&path).with_context(|| name.to_string())?;
        let theirs = ffmpeg_decode(&path, 2)?;
        assert_eq!(info.sample_rate, 44_100, "{name}");
        assert_eq!(info.channels, 2, "{name}");
        assert_eq!(info.bits_per_sample, None, "{name}: lossy has no bit depth");
        let len_diff = (ours[0].len() as i64 - theirs[0].len() as i64).abs();
        assert!(
            len_diff <= 2112,
            "{name}: length {} vs ffmpeg {}",
            ours[0].len(),
            theirs[0].len()
        );
        // SNR after finding the best alignment within ±2112 frames (lossy decoders
        // may trim encoder delay differently), on the first channel.
        let snr = aligned_snr_db(&theirs[0], &ours[0], 2112);
        assert!(
            snr >= *min_snr,
            "{name}: SNR vs ffmpeg {snr:.1} dB < {min_snr} dB"
        );
    }
    Ok(())
}

fn noise(channels: usize, frames: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..channels)
        .map(|_| {
            (0..frames)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) as f64 / (1u64 << 31) as f64 * 1.6 - 0.8) as f32
                })
                .collect()
        })
        .collect()
}

/// Asserts bit-exact equality, reporting the first difference rather than the arrays.
fn assert_same(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: channel count");
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: channel {c} length");
        if let Some(i) = g
            .iter()
            .zip(w)
            .position(|(a, b)| a.to_bits() != b.to_bits())
        {
            panic!(
                "{what}: channel {c} differs first at frame {i}: {} vs {}",
                g[i], w[i]
            );
        }
    }
}

fn quantised(planes: &[Vec<f32>], bits: u32) -> Vec<Vec<f32>> {
    let scale = (1u64 << (bits - 1)) as f32;
    planes
        .iter()
        .map(|p| p.iter().map(|x| (x * scale).round() / scale).collect())
        .collect()
}

fn write_file(
    path: &Path,
    format: OutputFormat,
    layout: ChannelLayout,
    planes: &[Vec<f32>],
    block: usize,
) -> Result<()> {
    let mut w = AudioWriter::create(path, format, 48_000, layout)?;
    let n = planes[0].len();
    let mut i = 0;
    while i < n {
        let end = (i + block).min(n);
        let refs: Vec<&[f32]> = planes.iter().map(|p| &p[i..end]).collect();
        w.write(&refs)?;
        i = end;
    }
    w.finish()?;
    Ok(())
}

#[test]
fn flac_and_wav_round_trip_bit_exactly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for (format, bits) in [
        (OutputFormat::Flac16, 16),
        (OutputFormat::Flac24, 24),
        (OutputFormat::Wav16, 16),
        (OutputFormat::Wav24, 24),
        (OutputFormat::WavF32, 0),
    ] {
        for channels in [1usize, 2, 3, 6, 8] {
            let layout = ChannelLayout::default_for(channels);
            let source = noise(channels, 10_007, channels as u64);
            let expected = if bits == 0 {
                source.clone()
            } else {
                quantised(&source, bits)
            };
            let path = dir
                .path()
                .join(format!("rt{channels}.{}", format.extension()));
            write_file(&path, format, layout, &source, 1000)?;
            let (info, ours) = Decoder::read_all(&path)?;
            assert_eq!(info.channels, channels);
            assert_eq!(info.sample_rate, 48_000);
            assert_eq!(info.layout, layout, "{format:?} {channels}ch layout");
            assert_same(
                &ours,
                &expected,
                &format!("{format:?} {channels}ch: our decoder"),
            );
            let theirs = ffmpeg_decode(&path, channels)?;
            assert_same(
                &theirs,
                &expected,
                &format!("{format:?} {channels}ch: ffmpeg's decoder"),
            );
        }
    }
    Ok(())
}

#[test]
fn ffprobe_reports_written_channel_layouts() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (ChannelLayout::Stereo, "stereo"),
        (ChannelLayout::TwoPointOne, "2.1"),
        (ChannelLayout::FivePointOne, "5.1"),
        (ChannelLayout::SevenPointOne, "7.1"),
    ];
    for format in [
        OutputFormat::Flac24,
        OutputFormat::Wav24,
        OutputFormat::WavF32,
        OutputFormat::Wav16,
    ] {
        for (layout, name) in cases {
            if format == OutputFormat::Wav16 && layout == ChannelLayout::Stereo {
                // 16-bit stereo WAV uses the plain PCM header for compatibility; it
                // carries no mask, and ffprobe reports "unknown" for it.
                continue;
            }
            let path = dir
                .path()
                .join(format!("layout-{name}.{}", format.extension()));
            write_file(
                &path,
                format,
                layout,
                &noise(layout.channels(), 4800, 1),
                4800,
            )?;
            let (probed, channels) = ffprobe_layout(&path)?;
            assert_eq!(channels, layout.channels(), "{format:?} {name}");
            assert_eq!(probed, name, "{format:?}: ffprobe layout for {name}");
        }
    }
    Ok(())
}

#[test]
fn writer_dropped_before_finish_leaves_no_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("never.flac");
    {
        let mut w =
            AudioWriter::create(&path, OutputFormat::Flac16, 44_100, ChannelLayout::Stereo)?;
        let n = noise(2, 9000, 3);
        w.write(&[&n[0], &n[1]])?;
    }
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
    Ok(())
}

#[test]
fn writer_rejects_wrong_channel_count_and_flac_over_eight_channels() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut w = AudioWriter::create(
        &dir.path().join("a.wav"),
        OutputFormat::Wav16,
        44_100,
        ChannelLayout::Stereo,
    )?;
    let n = noise(3, 10, 1);
    assert!(matches!(
        w.write(&[&n[0], &n[1], &n[2]]),
        Err(AudioError::InvalidArgument(_))
    ));
    let err = AudioWriter::create(
        &dir.path().join("b.flac"),
        OutputFormat::Flac16,
        44_100,
        ChannelLayout::Discrete(12),
    )
    .expect_err("12 channels cannot be FLAC");
    assert!(err.to_string().contains("1 to 8 channels"), "{err}");
    // 12 discrete channels are fine as WAV.
    write_file(
        &dir.path().join("c.wav"),
        OutputFormat::Wav16,
        ChannelLayout::Discrete(12),
        &noise(12, 100, 2),
        64,
    )?;
    assert_eq!(ffprobe_layout(&dir.path().join("c.wav"))?.1, 12);
    Ok(())
}

#[test]
fn bad_inputs_give_clear_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();

    let empty = d.join("empty.flac");
    std::fs::write(&empty, b"")?;
    let e = Decoder::open(&empty).expect_err("empty");
    assert!(matches!(e, AudioError::Empty { .. }), "{e}");
    assert!(
        e.to_string().contains("empty.flac") && e.to_string().contains("empty"),
        "{e}"
    );

    let text = d.join("notes.mp3");
    std::fs::write(&text, "these are my notes, not music\n".repeat(50))?;
    let e = Decoder::open(&text).expect_err("text");
    assert!(matches!(e, AudioError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("notes.mp3"), "{e}");

    let missing = d.join("missing.wav");
    let e = Decoder::open(&missing).expect_err("missing");
    assert!(matches!(e, AudioError::Io { .. }), "{e}");

    // Truncated lossless files: the header promises more frames than the data holds.
    for name in ["t.flac", "t.wav"] {
        let full = make_source(d, name, &[])?;
        let bytes = std::fs::read(&full)?;
        let cut = d.join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2])?;
        let e = Decoder::read_all(&cut).expect_err("truncated");
        assert!(
            matches!(e, AudioError::Truncated { .. } | AudioError::Corrupt { .. }),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(&format!("cut-{name}")), "{e}");
    }

    // A FLAC with damaged bytes in the middle fails its frame CRC.
    let full = make_source(d, "c.flac", &[])?;
    let mut bytes = std::fs::read(&full)?;
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5A;
    }
    let corrupt = d.join("corrupt.flac");
    std::fs::write(&corrupt, &bytes)?;
    let e = Decoder::read_all(&corrupt).expect_err("corrupt");
    // symphonia resynchronises past a frame that fails its CRC, so the damage shows
    // either as a decode error or as missing frames against STREAMINFO's count.
    assert!(
        matches!(e, AudioError::Corrupt { .. } | AudioError::Truncated { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("corrupt.flac"), "{e}");

    // A header with no audio after it.
    let header_only = d.join("header.wav");
    let wav = std::fs::read(make_source(d, "h.wav", &[])?)?;
    std::fs::write(&header_only, &wav[..20])?;
    let e = Decoder::read_all(&header_only).expect_err("header only");
    assert!(e.to_string().contains("header.wav"), "{e}");
    Ok(())
}

#[test]
fn tags_and_declared_length_are_reported() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = make_source(
        dir.path(),
        "tagged.flac",
        &[
            "-metadata",
            "title=Transience",
            "-metadata",
            "artist=Wesnoth",
            "-c:a",
            "flac",
        ],
    )?;
    let dec = Decoder::open(&path)?;
    let info = dec.info();
    assert_eq!(info.tag("title"), Some("Transience"));
    assert_eq!(info.tag("ARTIST"), Some("Wesnoth"));
    assert_eq!(info.frames, Some(132_300));
    assert!((info.duration_s().unwrap_or_default() - 3.0).abs() < 1e-9);
    assert_eq!(info.codec, "flac");
    Ok(())
}

#[test]
fn block_reader_returns_fixed_blocks_of_the_same_samples() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = make_source(dir.path(), "blocks.ogg", &["-c:a", "libvorbis"])?;
    let (_, whole) = Decoder::read_all(&path)?;
    let mut reader = sonantica_audio::BlockReader::new(Decoder::open(&path)?);
    let mut got = vec![Vec::new(); 2];
    let mut block = vec![Vec::new(); 2];
    let mut sizes = Vec::new();
    loop {
        let n = reader.read(1000, &mut block)?;
        if n == 0 {
            break;
        }
        sizes.push(n);
        for (g, b) in got.iter_mut().zip(&block) {
            g.extend_from_slice(b);
        }
    }
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 1000),
        "only the last block is short"
    );
    assert_same(&got, &whole, "block reader");
    Ok(())
}

#[test]
fn alac_whose_sample_table_declares_more_than_its_packets_hold_decodes_like_ffmpeg() -> Result<()> {
    // ffmpeg writes such files from Ogg sources (Wesnoth's battle.ogg, 8 s, gives
    // a packet declared as 4544 frames in a 4096-frame stream): both decoders
    // give the frames that are there, 448 fewer than the header's sum.
    let dir = tempfile::tempdir()?;
    let path = make_source(
        dir.path(),
        "alac.m4a",
        &["-c:a", "alac", "-sample_fmt", "s16p"],
    )?;
    let mut data = std::fs::read(&path)?;
    let stts = data
        .windows(4)
        .position(|w| w == b"stts")
        .context("an stts box")?;
    let entries = u32::from_be_bytes(data[stts + 8..stts + 12].try_into()?) as usize;
    let last = stts + 12 + 8 * (entries - 1) + 4;
    let delta = u32::from_be_bytes(data[last..last + 4].try_into()?);
    data[last..last + 4].copy_from_slice(&(delta + 448).to_be_bytes());
    // The media header's duration (version 0: after flags, two dates and the
    // timescale) says the same.
    let mdhd = data
        .windows(4)
        .position(|w| w == b"mdhd")
        .context("an mdhd box")?;
    let duration = u32::from_be_bytes(data[mdhd + 20..mdhd + 24].try_into()?);
    data[mdhd + 20..mdhd + 24].copy_from_slice(&(duration + 448).to_be_bytes());
    std::fs::write(&path, &data)?;
    let (info, ours) = Decoder::read_all(&path)?;
    let theirs = ffmpeg_decode(&path, 2)?;
    assert_eq!(info.frames, Some(132_300 + 448), "the header's sum");
    assert_eq!(ours[0].len(), theirs[0].len(), "frames decoded");
    assert!(max_abs_diff(&ours, &theirs) <= 6e-8);
    Ok(())
}
