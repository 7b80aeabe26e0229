//! Hostile media: hundreds of corrupted files in every supported format (byte
//! flips, truncations, huge declared counts and sizes, zero rates and channel
//! counts, absurd channel counts) go through the decoder (`sonantica analyze`,
//! all in one run) and through the real station (each one uploaded, all of
//! them in its library folder). Nothing may abort, panic out, hang or leave a
//! file behind, and the station's memory stays bounded. Prints how many files
//! were tried and how they ended.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use common::s;
use common::server::Server;
use sonantica_testkit::cmd::TestCommand;
use sonantica_testkit::oracle::ffmpeg;
use sonantica_testkit::signal::XorShift64;

/// One valid file per supported container and codec, made by ffmpeg.
fn seeds(dir: &Path) -> Result<Vec<PathBuf>> {
    let source = "sine=frequency=440:sample_rate=44100:duration=2";
    let mut out = Vec::new();
    for (name, codec) in [
        ("seed.flac", &["-c:a", "flac"][..]),
        ("seed.wav", &["-c:a", "pcm_s16le"][..]),
        ("seed.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
        ("seed.ogg", &["-c:a", "libvorbis"][..]),
        ("seed.m4a", &["-c:a", "aac", "-b:a", "128k"][..]),
        ("alac.m4a", &["-c:a", "alac"][..]),
        ("seed.aiff", &["-c:a", "pcm_s16be"][..]),
    ] {
        let path = dir.join(name);
        let mut args = vec!["-f", "lavfi", "-i", source, "-ac", "2"];
        args.extend_from_slice(codec);
        args.push(s(&path));
        ffmpeg(&args)?;
        out.push(path);
    }
    Ok(out)
}

/// Offsets of every occurrence of `tag` in `data`.
fn find_all(data: &[u8], tag: &[u8]) -> Vec<usize> {
    data.windows(tag.len())
        .enumerate()
        .filter(|(_, w)| *w == tag)
        .map(|(i, _)| i)
        .collect()
}

fn put_be32(d: &mut [u8], at: usize, v: u32) {
    if at + 4 <= d.len() {
        d[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

fn put_le32(d: &mut [u8], at: usize, v: u32) {
    if at + 4 <= d.len() {
        d[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

fn put_le16(d: &mut [u8], at: usize, v: u16) {
    if at + 2 <= d.len() {
        d[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
}

/// Header fields set to what a crafted file declares: zero rates and channel
/// counts, absurd channel counts, counts and sizes near 2³².
fn crafted(name: &str, seed: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut variant = |label: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut d = seed.to_vec();
        edit(&mut d);
        out.push((format!("{label}-{name}"), d));
    };
    if name.ends_with(".m4a") {
        // MP4 boxes: size, type, (version, flags), fields.
        for (atom, field, label) in [
            (&b"stts"[..], 8, "stts-count"),
            (b"stsz", 12, "stsz-count"),
            (b"stsz", 8, "stsz-size"),
            (b"stsc", 8, "stsc-count"),
            (b"stco", 8, "stco-count"),
            (b"mdhd", 16, "mdhd-duration"),
        ] {
            for value in [0xFFFF_FFFF, 0x7FFF_FFFF] {
                variant(&format!("{label}-{value:x}"), &|d| {
                    for at in find_all(d, atom) {
                        put_be32(d, at + field, value);
                    }
                });
            }
        }
        variant("mdhd-timescale0", &|d| {
            for at in find_all(d, b"mdhd") {
                put_be32(d, at + 12, 0);
            }
        });
        variant("mp4a-rate0", &|d| {
            for at in find_all(d, b"mp4a") {
                put_be32(d, at + 28, 0);
            }
        });
        variant("mp4a-channels0", &|d| {
            for at in find_all(d, b"mp4a") {
                if at + 22 <= d.len() {
                    d[at + 20..at + 22].copy_from_slice(&0u16.to_be_bytes());
                }
            }
        });
        // The ALAC magic cookie: "alac" box, version/flags, then frameLength,
        // compatibleVersion, bitDepth, pb, mb, kb, numChannels, maxRun,
        // maxFrameBytes, avgBitRate, sampleRate.
        for (field, value, label) in [
            (8usize, 0xFFFF_FFFFu32, "alac-framelength-max"),
            (8, 0, "alac-framelength0"),
            (32, 0, "alac-rate0"),
        ] {
            variant(label, &|d| {
                for at in find_all(d, b"alac") {
                    put_be32(d, at + field, value);
                }
            });
        }
        for (channels, label) in [(0u8, "alac-channels0"), (255, "alac-channels255")] {
            variant(label, &|d| {
                for at in find_all(d, b"alac") {
                    if at + 18 < d.len() {
                        d[at + 17] = channels;
                    }
                }
            });
        }
    } else if name.ends_with(".wav") {
        let fmt = find_all(seed, b"fmt ").first().copied().unwrap_or(12);
        let data = find_all(seed, b"data").first().copied().unwrap_or(36);
        for (label, at, value) in [
            ("rate0", fmt + 12, 0u32),
            ("rate-max", fmt + 12, 0xFFFF_FFFF),
            ("byterate0", fmt + 16, 0),
            ("datasize-max", data + 4, 0xFFFF_FFFF),
            ("riffsize-max", 4, 0xFFFF_FFFF),
            ("fmtsize-max", fmt + 4, 0xFFFF_FFFF),
        ] {
            variant(label, &|d| put_le32(d, at, value));
        }
        for (label, at, value) in [
            ("channels0", fmt + 10, 0u16),
            ("channels-max", fmt + 10, 0xFFFF),
            ("blockalign0", fmt + 20, 0),
            ("bits0", fmt + 22, 0),
            ("bits-odd", fmt + 22, 13),
        ] {
            variant(label, &|d| put_le16(d, at, value));
        }
    } else if name.ends_with(".flac") {
        // STREAMINFO follows "fLaC" and a 4-byte block header: min/max block
        // (2+2), min/max frame (3+3), then rate (20 bits), channels - 1 (3),
        // bits - 1 (5), total samples (36).
        let si = 8;
        variant("blocksize0", &|d| {
            if d.len() > si + 4 {
                d[si..si + 4].fill(0);
            }
        });
        variant("rate0", &|d| {
            if d.len() > si + 13 {
                d[si + 10] = 0;
                d[si + 11] = 0;
                d[si + 12] &= 0x0F;
            }
        });
        variant("samples-max", &|d| {
            if d.len() > si + 18 {
                d[si + 13] |= 0x0F;
                d[si + 14..si + 18].fill(0xFF);
            }
        });
        variant("channels8", &|d| {
            if d.len() > si + 13 {
                d[si + 12] |= 0x0E;
            }
        });
    } else if name.ends_with(".ogg") {
        // The Vorbis identification header: "\x01vorbis", version (4),
        // channels (1), rate (4).
        for at in find_all(seed, b"\x01vorbis").into_iter().take(1) {
            for (label, field, bytes) in [
                ("channels0", 11usize, vec![0u8]),
                ("channels255", 11, vec![255]),
                ("rate0", 12, vec![0, 0, 0, 0]),
                ("rate-max", 12, vec![0xFF; 4]),
                ("blocksizes-bad", 28, vec![0xFF]),
            ] {
                variant(label, &|d| {
                    let start = at + field;
                    if start + bytes.len() <= d.len() {
                        d[start..start + bytes.len()].copy_from_slice(&bytes);
                    }
                });
            }
        }
    } else if name.ends_with(".aiff") {
        for at in find_all(seed, b"COMM").into_iter().take(1) {
            variant("channels0", &|d| {
                if at + 10 <= d.len() {
                    d[at + 8..at + 10].fill(0);
                }
            });
            variant("frames-max", &|d| put_be32(d, at + 10, 0xFFFF_FFFF));
            variant("rate0", &|d| {
                if at + 26 <= d.len() {
                    d[at + 16..at + 26].fill(0);
                }
            });
        }
    }
    out
}

/// Byte flips (mostly in the headers) and truncations of `seed`.
fn mutations(name: &str, seed: &[u8], rng: &mut XorShift64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let len = seed.len();
    for k in 0..24 {
        let mut d = seed.to_vec();
        let flips = 1 + (rng.next_u64() % 8) as usize;
        for _ in 0..flips {
            // Two thirds of the flips hit the first 4 KB, where headers live.
            let span = if rng.next_u64().is_multiple_of(3) {
                len
            } else {
                len.min(4096)
            };
            let at = (rng.next_u64() % span as u64) as usize;
            d[at] ^= 1 << (rng.next_u64() % 8);
            if rng.next_u64().is_multiple_of(4) {
                d[at] = [0x00, 0xFF, 0x7F, 0x80][(rng.next_u64() % 4) as usize];
            }
        }
        out.push((format!("flip{k:02}-{name}"), d));
    }
    for cut in [0, 1, 4, 12, 44, 100, 1000, len / 2, len.saturating_sub(1)] {
        out.push((format!("cut{cut}-{name}"), seed[..cut.min(len)].to_vec()));
    }
    out.extend(crafted(name, seed));
    out
}

fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn corrupted_files_never_take_down_the_decoder_or_the_station() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let seed_dir = dir.path().join("seeds");
    let lib = dir.path().join("library");
    std::fs::create_dir_all(&seed_dir)?;
    std::fs::create_dir_all(&lib)?;
    let mut rng = XorShift64::seeded(13);
    let mut files = Vec::new();
    for seed in seeds(&seed_dir)? {
        let name = seed
            .file_name()
            .context("name")?
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&seed)?;
        files.push(lib.join(&name));
        std::fs::write(lib.join(&name), &bytes)?;
        for (mutant, data) in mutations(&name, &bytes, &mut rng) {
            let path = lib.join(&mutant);
            std::fs::write(&path, data)?;
            files.push(path);
        }
    }
    let tried = files.len();
    assert!(tried >= 300, "only {tried} files");

    // 1. The decoder: every file in one `analyze` run, which must end (no
    //    hang), with exit 0 or 1 (no panic: 101, no abort: a signal), and say
    //    something about every file.
    let mut analyze = TestCommand::new(env!("CARGO_BIN_EXE_sonantica"));
    analyze.arg("analyze").arg("--json");
    for f in &files {
        analyze.arg(f);
    }
    let out = analyze.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "analyze ended with {:?}\n{}",
        out.status,
        stderr.chars().take(4000).collect::<String>()
    );
    assert!(!stderr.contains("panicked at"), "{stderr}");
    let mut ended: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &files {
        let name = f.display().to_string();
        let analysed = stdout.lines().any(|l| l.contains(&format!("\"{name}\"")));
        let refused = stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains(&name));
        assert!(
            analysed ^ refused,
            "{name}: analysed {analysed}, refused {refused}"
        );
        *ended
            .entry(if analysed { "analysed" } else { "clean error" })
            .or_default() += 1;
    }
    // The valid seeds are among the analysed ones.
    for seed in [
        "seed.flac",
        "seed.wav",
        "seed.mp3",
        "seed.ogg",
        "seed.m4a",
        "alac.m4a",
    ] {
        let name = lib.join(seed).display().to_string();
        assert!(
            stdout.contains(&format!("\"{name}\"")),
            "{seed} was not analysed"
        );
    }
    let accepted_by_analyze = ended.get("analysed").copied().unwrap_or(0);

    // 2. The station, with all of them in its library folder: it starts (the
    //    start-up scan reads them all), lists the readable ones and reports the
    //    rest, and keeps answering.
    let data = dir.path().join("data");
    let station = Server::start(&data, &["--library", s(&lib)])?;
    let (status, report) = station.post("/api/library/scan", "application/json", Vec::new())?;
    assert_eq!(status, 200, "{report}");
    let failed = report["failed"].as_array().context("failed list")?.len();
    let listed = station.json("/api/tracks?limit=500")?["total"]
        .as_i64()
        .context("total")? as usize;
    assert_eq!(
        listed + failed,
        tried,
        "every file is either listed or reported: {report}"
    );
    // What the station lists, the decoder read (a file the station lists but
    // cannot decode would fail later, in a job).
    assert!(
        listed >= accepted_by_analyze,
        "listed {listed}, analysed {accepted_by_analyze}"
    );
    let rss_before = resident_kb(station.pid()).unwrap_or(0);

    // 3. Each file as an upload: 201 or a 4xx, never a 5xx or a dead station.
    let mut uploads: BTreeMap<u16, usize> = BTreeMap::new();
    for f in &files {
        let (code, reply) = station.upload_reply(f)?;
        assert!(
            code == 201 || (400..500).contains(&code),
            "{}: upload answered {code} {reply}",
            f.display()
        );
        *uploads.entry(code).or_default() += 1;
    }
    let (health, _) = station.get("/api/health")?;
    assert_eq!(health, 200);
    let tmp: Vec<_> = std::fs::read_dir(data.join("media/tmp"))?.collect();
    assert!(tmp.is_empty(), "media/tmp holds {} files", tmp.len());
    // Wait for the analyses of the accepted uploads, then check the memory.
    for _ in 0..600 {
        let page = station.json("/api/tracks?limit=500")?;
        let pending = page["items"]
            .as_array()
            .context("items")?
            .iter()
            .filter(|t| t["analysis_status"] == serde_json::json!("pending"))
            .count();
        if pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_after = resident_kb(station.pid()).unwrap_or(0);
    assert!(
        rss_after < rss_before + 100 * 1024,
        "the station grew from {rss_before} kB to {rss_after} kB"
    );
    println!(
        "hostile media: {tried} files tried; analyze: {:?}; station: {listed} listed, {failed} \
         reported unreadable; uploads by status: {uploads:?}; station RSS {rss_before} -> \
         {rss_after} kB; 0 aborts, panics or hangs",
        ended
    );
    Ok(())
}
