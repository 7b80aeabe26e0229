//! DR, crest factor, peak, clipping and the stereo-image meters on signals whose
//! answers are known analytically.

mod common;
use common::*;
use sonantica_meter::{ChannelLayout, Report};
use sonantica_testkit::signal::noise;

const FS: u32 = 44_100;

fn stereo(l: Vec<f32>, r: Vec<f32>) -> Report {
    measure(FS, ChannelLayout::Stereo, &[l, r])
}

fn tone(freq: f64, seconds: f64, amp: f64) -> Vec<f32> {
    sine(FS, freq, seconds, &[20.0 * amp.log10()]).remove(0)
}

#[test]
fn dr_is_second_peak_over_loudest_fifth_rms() {
    // Ten 3 s blocks per channel: two loud blocks (1 kHz sine, amplitude 0.5: block
    // RMS √2·0.5/√2 = 0.5) and eight quiet ones (amplitude 0.1). Two single-sample
    // spikes in quiet blocks set the two highest peaks: 0.9 and 0.8.
    // DR = 20·log10(0.8 / 0.5) = 4.0824 dB. The right channel's spikes are 0.95 and
    // 0.7: DR = 20·log10(0.7 / 0.5) = 2.9226 dB; the overall value is the rounded
    // mean, round(3.5025) = 4.
    let block = 3 * FS as usize;
    let make = |spikes: [f32; 2]| {
        let mut x = Vec::new();
        for b in 0..10 {
            let amp = if b == 3 || b == 7 { 0.5 } else { 0.1 };
            let mut blk = tone(1000.0, 3.0, amp);
            if b == 1 {
                blk[1000] = spikes[0];
            }
            if b == 5 {
                blk[2000] = -spikes[1];
            }
            x.extend(blk);
        }
        assert_eq!(x.len(), 10 * block);
        x
    };
    let r = stereo(make([0.9, 0.8]), make([0.95, 0.7]));
    assert_eq!(r.dr_channels.len(), 2);
    assert!(
        (r.dr_channels[0] - 4.0824).abs() < 0.01,
        "left DR {}",
        r.dr_channels[0]
    );
    assert!(
        (r.dr_channels[1] - 2.9226).abs() < 0.01,
        "right DR {}",
        r.dr_channels[1]
    );
    assert_eq!(r.dr, Some(4));
}

#[test]
fn dr_of_full_scale_sine_is_zero_and_of_square_is_minus_three() {
    // A sine's block RMS (with the meter's √2) equals its peak: DR 0.
    let r = stereo(tone(1000.0, 9.0, 1.0), tone(1000.0, 9.0, 1.0));
    assert!(
        r.dr_channels.iter().all(|d| d.abs() < 0.01),
        "{:?}",
        r.dr_channels
    );
    // A square wave's RMS equals its peak, so the √2 makes DR -3.01 dB.
    let sq: Vec<f32> = (0..9 * FS as usize)
        .map(|i| if (i / 50) % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    let r = stereo(sq.clone(), sq);
    assert!(
        r.dr_channels.iter().all(|d| (d + 3.0103).abs() < 0.01),
        "{:?}",
        r.dr_channels
    );
}

#[test]
fn crest_factor_of_sine_is_3db_and_of_square_is_0db() {
    let r = stereo(tone(1000.0, 2.0, 0.5), tone(1000.0, 2.0, 0.5));
    assert_within("sine crest", r.crest_factor_db, 3.0103, 0.01, 0.01);
    assert_within("sine peak", r.sample_peak_dbfs, -6.0206, 0.01, 0.01);
    assert_within("sine RMS", r.rms_dbfs, -9.0309, 0.01, 0.01);
    let sq: Vec<f32> = (0..2 * FS as usize)
        .map(|i| if (i / 21) % 2 == 0 { 0.25 } else { -0.25 })
        .collect();
    let r = stereo(sq.clone(), sq);
    assert_within("square crest", r.crest_factor_db, 0.0, 0.001, 0.001);
}

#[test]
fn live_crest_follows_the_last_300ms() {
    let mut ins = inspector(FS, ChannelLayout::Stereo);
    let s = tone(1000.0, 1.0, 0.5);
    feed(&mut ins, &[s.clone(), s], 512);
    assert_within(
        "live sine crest",
        ins.readings().crest_db,
        3.0103,
        0.01,
        0.01,
    );
}

#[test]
fn clipping_counts_runs_of_three_or_more_full_scale_samples() {
    let fs_pos = 32767.0 / 32768.0;
    let mut x = tone(100.0, 1.0, 0.3);
    // Runs of 2 (not clipping), 3 and 5 samples at full scale, of either sign, and
    // one at 1 LSB below full scale, which still counts.
    x[1000..1002].fill(fs_pos);
    x[5000..5003].fill(-1.0);
    x[9000..9005].fill(fs_pos);
    x[20_000..20_004].fill(32766.0 / 32768.0);
    // 1.5 LSB below full scale is not clipping.
    x[30_000..30_010].fill(32765.0 / 32768.0);
    let r = stereo(x, vec![0.0; FS as usize]);
    assert_eq!(r.clip_events, 3);
    assert_eq!(r.clipped_samples, 3 + 5 + 4);
}

#[test]
fn correlation_of_mono_is_one_and_of_anti_phase_is_minus_one() {
    let x = noise(2 * FS as usize, 0.5, 1);
    let r = stereo(x.clone(), x.iter().map(|v| v * 0.3).collect());
    assert_within("mono correlation", r.correlation, 1.0, 1e-6, 1e-6);
    assert_within("mono correlation min", r.correlation_min, 1.0, 1e-6, 1e-6);
    // Same waveform at different levels (1 and 0.3): M = 0.65x, S = 0.35x, so the
    // side share is 0.35² / (0.65² + 0.35²) = 0.2248.
    assert_within("level-offset mono width", r.width, 0.2248, 0.0005, 0.0005);
    let r = stereo(x.clone(), x.iter().map(|v| -v).collect());
    assert_within("anti-phase correlation", r.correlation, -1.0, 1e-6, 1e-6);
    assert_within("anti-phase width", r.width, 1.0, 1e-9, 1e-9);
    let r = stereo(x.clone(), x.clone());
    assert_within("identical width", r.width, 0.0, 1e-9, 1e-9);
    assert_within("identical balance", r.balance, 0.0, 1e-9, 1e-9);
}

#[test]
fn correlation_of_independent_noise_is_near_zero_and_width_one_half() {
    let n = 10 * FS as usize;
    let r = stereo(noise(n, 0.5, 11), noise(n, 0.5, 12));
    // Over 300 ms of white noise the estimate's spread is about 1/√(2·0.3·44100)
    // ≈ 0.006; the time mean is far tighter.
    assert_within("noise correlation", r.correlation, 0.0, 0.02, 0.02);
    assert!(
        r.correlation_min.unwrap_or(0.0) > -0.1,
        "min {:?}",
        r.correlation_min
    );
    assert_within("noise width", r.width, 0.5, 0.01, 0.01);
}

#[test]
fn sine_against_cosine_is_uncorrelated() {
    let l = tone(1000.0, 3.0, 0.5);
    let r: Vec<f32> = (0..l.len())
        .map(|i| (0.5 * (TAU * 1000.0 * i as f64 / f64::from(FS)).cos()) as f32)
        .collect();
    let rep = stereo(l, r);
    assert_within("90° correlation", rep.correlation, 0.0, 0.01, 0.01);
    assert_within("90° width", rep.width, 0.5, 0.01, 0.01);
}

#[test]
fn balance_and_width_of_one_sided_signals() {
    let x = noise(FS as usize, 0.5, 3);
    let r = stereo(x.clone(), vec![0.0; x.len()]);
    assert_within("left-only balance", r.balance, -1.0, 1e-9, 1e-9);
    // L alone: M = S = L/2, so the side share is exactly one half.
    assert_within("left-only width", r.width, 0.5, 1e-9, 1e-9);
    assert_eq!(r.correlation, None, "no correlation against silence");
    let r = stereo(x.clone(), x.iter().map(|v| v * 0.5).collect());
    // (0.25 - 1) / (1 + 0.25) = -0.6
    assert_within("half-level right balance", r.balance, -0.6, 1e-6, 1e-6);
}

#[test]
fn goniometer_draws_mono_vertical_and_anti_phase_horizontal() {
    let x = tone(440.0, 0.5, 0.5);
    let mut ins = inspector(FS, ChannelLayout::Stereo);
    feed(&mut ins, &[x.clone(), x.clone()], 1000);
    let mut pts = [(0.0f32, 0.0f32); 512];
    let n = ins.goniometer().latest(&mut pts);
    assert_eq!(n, 512);
    assert!(pts.iter().all(|(px, _)| px.abs() < 1e-6), "mono: x = 0");
    assert!(
        pts.iter().any(|(_, py)| py.abs() > 0.5),
        "mono: y spans the signal (√2·0.5)"
    );
    let mut ins = inspector(FS, ChannelLayout::Stereo);
    feed(&mut ins, &[x.clone(), x.iter().map(|v| -v).collect()], 1000);
    ins.goniometer().latest(&mut pts);
    assert!(
        pts.iter().all(|(_, py)| py.abs() < 1e-6),
        "anti-phase: y = 0"
    );
    // One point every floor(44100 / 6000) = 7 samples: 22050 / 7 = 3150 points.
    assert_eq!(ins.goniometer().points_written(), 3150);
}

#[test]
fn silence_reports_no_levels() {
    let r = stereo(vec![0.0; FS as usize], vec![0.0; FS as usize]);
    assert_eq!(r.integrated_lufs, None);
    assert_eq!(r.sample_peak_dbfs, None);
    assert_eq!(r.crest_factor_db, None);
    assert_eq!(r.correlation, None);
    assert_eq!(r.dr, None);
    assert_eq!(r.clip_events, 0);
}

#[test]
fn mismatched_input_is_an_error_not_a_panic() {
    let mut ins = inspector(FS, ChannelLayout::Stereo);
    let a = [0.0f32; 10];
    let b = [0.0f32; 9];
    assert!(ins.process(&[&a]).is_err());
    assert!(ins.process(&[&a, &b]).is_err());
    assert!(ins.process(&[&a, &a, &a]).is_err());
    assert!(
        sonantica_meter::Inspector::new(sonantica_meter::InspectorConfig::new(
            100,
            ChannelLayout::Stereo
        ))
        .is_err()
    );
}
