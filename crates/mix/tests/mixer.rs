//! Mixer semantics: unity sum, presets, solo/mute, smooth gain ramps.

mod common;
use common::*;
use sonantica_mix::{ChannelLayout, Preset, Source, PRESETS};

#[test]
fn unity_mix_equals_stem_sum_exactly() {
    let stems = four_stems(20_000);
    let out = render(&mut engine(ChannelLayout::Stereo), &stems, 4096);
    for ch in 0..2 {
        for i in 0..stems[0].len() {
            // The same additions in the same order: bit-identical.
            let mut sum = 0.0f32;
            for k in 0..4 {
                sum += stems[2 * k + ch][i];
            }
            assert_eq!(
                out[ch][i].to_bits(),
                sum.to_bits(),
                "channel {ch} frame {i}"
            );
        }
    }
}

#[test]
fn karaoke_preset_removes_vocals() {
    let n = 4 * FS as usize;
    let stems = four_stems(n);
    let mut e = engine(ChannelLayout::Stereo);
    e.apply_preset(Preset::by_id("karaoke").expect("preset"));
    e.reset();
    let out = render(&mut e, &stems, 512);
    for ch in 0..2 {
        let vocals = &stems[6 + ch];
        // What is left once the instruments are subtracted is the vocal leakage.
        let leak: Vec<f32> = (0..n)
            .map(|i| out[ch][i] - (stems[ch][i] + stems[2 + ch][i] + stems[4 + ch][i]))
            .collect();
        let leak_db = db(energy(&leak).max(1e-30) / energy(vocals));
        assert!(
            leak_db < -90.0,
            "vocal level in the karaoke mix: {leak_db:.1} dB relative"
        );
        let rho = correlation(&out[ch], vocals);
        assert!(rho.abs() < 0.01, "correlation with the vocal stem {rho:.4}");
    }
}

#[test]
fn acappella_keeps_only_vocals_and_presets_are_data() {
    let stems = four_stems(10_000);
    let mut e = engine(ChannelLayout::Stereo);
    e.apply_preset(Preset::by_id("acappella").expect("preset"));
    e.reset();
    let out = render(&mut e, &stems, 300);
    assert_eq!(out[0], stems[6]);
    assert_eq!(out[1], stems[7]);
    // Every preset has an id, a name, and gains only in a sane range.
    let ids: Vec<&str> = PRESETS.iter().map(|p| p.id).collect();
    for id in [
        "original",
        "karaoke",
        "acappella",
        "musician",
        "bass-practice",
        "drum-practice",
    ] {
        assert!(ids.contains(&id), "missing preset {id}");
    }
    let musician = Preset::by_id("musician").expect("preset");
    assert!(musician.gain_db(Source::Bass) > 0.0 && musician.gain_db(Source::Drums) > 0.0);
    assert!(musician.gain_db(Source::Vocals) < 0.0);
    assert_eq!(
        Preset::by_id("bass-practice").map(|p| p.gain_db(Source::Bass)),
        Some(f32::NEG_INFINITY)
    );
    assert_eq!(
        Preset::by_id("drum-practice").map(|p| p.gain_db(Source::Drums)),
        Some(f32::NEG_INFINITY)
    );
}

#[test]
fn solo_and_mute_follow_console_semantics() -> anyhow::Result<()> {
    let stems = four_stems(5000);
    let mut e = engine(ChannelLayout::Stereo);
    let run = |e: &mut sonantica_mix::StemEngine| {
        e.reset();
        render(e, &stems, 1000)
    };
    let sum_of = |ks: &[usize]| -> Vec<f32> {
        (0..5000)
            .map(|i| ks.iter().fold(0.0f32, |a, k| a + stems[2 * k][i]))
            .collect()
    };
    // Solo one stem: only it sounds.
    e.mixer().set_solo(Source::Drums, true)?;
    assert_eq!(run(&mut e)[0], sum_of(&[0]));
    // Two solos: both sound.
    e.mixer().set_solo(Source::Vocals, true)?;
    assert_eq!(run(&mut e)[0], sum_of(&[0, 3]));
    // Mute beats solo.
    e.mixer().set_mute(Source::Drums, true)?;
    assert_eq!(run(&mut e)[0], sum_of(&[3]));
    // No solos left: everything but the muted stem.
    e.mixer().set_solo(Source::Drums, false)?;
    e.mixer().set_solo(Source::Vocals, false)?;
    assert_eq!(run(&mut e)[0], sum_of(&[1, 2, 3]));
    // A source that is not in the mix is an error, not a panic.
    assert!(e.mixer().set_gain_db(Source::Piano, -3.0).is_err());
    Ok(())
}

#[test]
fn gain_changes_ramp_without_discontinuities() -> anyhow::Result<()> {
    // DC stems make every gain step visible as a step in the output.
    let n = FS as usize;
    let stems: Vec<Vec<f32>> = (0..8).map(|_| vec![0.25f32; n]).collect();
    let mut e = engine(ChannelLayout::Stereo);
    let mut out = vec![vec![0.0f32; n]; 2];
    let half = n / 2;
    for (range, action) in [(0..half, 0), (half..n, 1)] {
        if action == 1 {
            // Mute two stems and boost one by 6 dB at once, mid-stream.
            e.mixer().set_mute(Source::Vocals, true)?;
            e.mixer().set_gain_db(Source::Bass, f32::NEG_INFINITY)?;
            e.mixer().set_gain_db(Source::Drums, 6.0)?;
        }
        let ins: Vec<&[f32]> = stems.iter().map(|c| &c[range.clone()]).collect();
        let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[range.clone()]).collect();
        e.process(&ins, &mut outs)?;
    }
    // Before: 4 × 0.25 = 1.0. After: 0.25·2 (drums +6 dB) + 0.25 (other) = 0.7488.
    assert!((out[0][half - 1] - 1.0).abs() < 1e-6);
    let after = 0.25 * 10f32.powf(6.0 / 20.0) + 0.25;
    assert!((out[0][n - 1] - after).abs() < 1e-6, "{}", out[0][n - 1]);
    // The change takes 20 ms (882 samples): no step between samples may exceed
    // the total change spread over the ramp, plus rounding.
    let total = (1.0 - after).abs() + 2.0 * 0.25 * (10f32.powf(0.3) - 1.0);
    let bound = total / 882.0 + 1e-6;
    let max_step = out[0]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_step <= bound,
        "largest step {max_step:e} > bound {bound:e}"
    );
    // And the change started within the block where it was made.
    assert!((out[0][half + 1] - 1.0).abs() > 0.0);
    Ok(())
}
