//! Channel matrix: mono pan law, 2.1 crossover, 5.1/7.1 upmix, fold-down,
//! decorrelation, block-size independence.

mod common;
use common::*;
use sonantica_mix::{Band, ChannelLayout, LinkwitzRiley, MatrixParams, Source, StemEngine};
use sonantica_testkit::signal::noise;

const R: f32 = std::f32::consts::FRAC_1_SQRT_2;

#[test]
fn mono_uses_the_minus_6db_pan_law() {
    let n = 1000;
    let l = noise(n, 0.3, 1);
    let r = noise(n, 0.3, 2);
    let mut stems = vec![vec![0.0; n]; 8];
    stems[0] = l.clone();
    stems[1] = r.clone();
    let out = render(&mut engine(ChannelLayout::Mono), &stems, 64);
    assert_eq!(out.len(), 1);
    for i in 0..n {
        assert!((out[0][i] - 0.5 * (l[i] + r[i])).abs() < 1e-7);
    }
}

/// Steady-state gain of the 2.1 LFE for a sine in both channels of one stem.
fn lfe_gain_db(freq: f64, crossover: f32) -> f64 {
    let n = 2 * FS as usize;
    let s = sine(n, freq, 0.5);
    let mut stems = vec![vec![0.0; n]; 8];
    stems[0] = s.clone();
    stems[1] = s;
    let params = MatrixParams {
        crossover_hz: crossover,
        ..MatrixParams::default()
    };
    let mut e =
        StemEngine::new(&Source::FOUR, ChannelLayout::TwoPointOne, FS, params).expect("engine");
    let out = render(&mut e, &stems, 4096);
    let settled = FS as usize; // skip the first second
    20.0 * (sine_amplitude(&out[2][settled..]) / 0.5).log10()
}

#[test]
fn lr4_crossover_is_minus_6db_at_the_crossover_and_24db_down_an_octave_above() {
    for fc in [80.0f32, 120.0] {
        let at = lfe_gain_db(f64::from(fc), fc);
        assert!(
            (at + 6.02).abs() < 0.1,
            "LFE at {fc} Hz: {at:.2} dB, want -6.02 ±0.1"
        );
        let octave_up = lfe_gain_db(2.0 * f64::from(fc), fc);
        assert!(
            octave_up <= -24.0,
            "LFE one octave above {fc} Hz: {octave_up:.2} dB, want ≤ -24"
        );
        let below = lfe_gain_db(f64::from(fc) / 4.0, fc);
        assert!(below > -0.1, "LFE two octaves below: {below:.2} dB");
    }
}

#[test]
fn lr4_low_and_high_halves_sum_flat() {
    // The two halves of a Linkwitz-Riley crossover sum to an all-pass: equal
    // magnitude at every frequency (checked at the crossover and an octave away).
    for freq in [40.0, 80.0, 160.0, 1000.0] {
        let n = 2 * FS as usize;
        let x = sine(n, freq, 0.5);
        let mut lo = LinkwitzRiley::new(Band::Low, 80.0, f64::from(FS));
        let mut hi = LinkwitzRiley::new(Band::High, 80.0, f64::from(FS));
        let y: Vec<f32> = x
            .iter()
            .map(|&v| (lo.tick(f64::from(v)) + hi.tick(f64::from(v))) as f32)
            .collect();
        let g = 20.0 * (sine_amplitude(&y[FS as usize..]) / 0.5).log10();
        assert!(g.abs() < 0.05, "LP + HP at {freq} Hz: {g:.3} dB");
    }
}

fn foldown(out: &[Vec<f32>], layout: ChannelLayout) -> (Vec<f32>, Vec<f32>) {
    // ITU-R BS.775: Lo = L + 0.707·C + 0.707·Ls (+ 0.707·Lb for 7.1), LFE dropped.
    let n = out[0].len();
    let mut lo = vec![0.0f32; n];
    let mut ro = vec![0.0f32; n];
    let pairs: &[(usize, usize)] = match layout {
        ChannelLayout::FivePointOne => &[(4, 5)],
        _ => &[(4, 5), (6, 7)],
    };
    for i in 0..n {
        lo[i] = out[0][i] + R * out[2][i];
        ro[i] = out[1][i] + R * out[2][i];
        for &(l, r) in pairs {
            lo[i] += R * out[l][i];
            ro[i] += R * out[r][i];
        }
    }
    (lo, ro)
}

#[test]
fn foldown_of_upmix_returns_the_stereo_mix() {
    let n = 4 * FS as usize;
    let stems = four_stems(n);
    let stereo = render(&mut engine(ChannelLayout::Stereo), &stems, 4096);
    for layout in [ChannelLayout::FivePointOne, ChannelLayout::SevenPointOne] {
        // (a) Without "other", vocals, drums and bass fold back exactly:
        // residual below -80 dB relative to the stereo mix.
        let mut dry = stems.clone();
        dry[4].iter_mut().for_each(|v| *v = 0.0);
        dry[5].iter_mut().for_each(|v| *v = 0.0);
        let dry_stereo = render(&mut engine(ChannelLayout::Stereo), &dry, 4096);
        let (lo, ro) = foldown(&render(&mut engine(layout), &dry, 4096), layout);
        for (fold, reference) in [(&lo, &dry_stereo[0]), (&ro, &dry_stereo[1])] {
            let residual: Vec<f32> = fold.iter().zip(reference).map(|(a, b)| a - b).collect();
            let rel = db(energy(&residual) / energy(reference));
            assert!(
                rel < -80.0,
                "{layout}: fold-down residual without 'other' {rel:.1} dB"
            );
        }
        // (b) With every stem, the decorrelated "other" folds back at equal power:
        // broadband level of Lo/Ro within ±0.5 dB of the stereo mix's L/R.
        let (lo, ro) = foldown(&render(&mut engine(layout), &stems, 4096), layout);
        for (fold, reference, name) in [(&lo, &stereo[0], "Lo"), (&ro, &stereo[1], "Ro")] {
            let diff = db(energy(fold) / energy(reference));
            assert!(
                diff.abs() < 0.5,
                "{layout} {name}: fold-down level {diff:+.2} dB vs stereo"
            );
        }
    }
}

#[test]
fn centre_carries_the_vocal_mid_and_lfe_the_rhythm_low_end() {
    let n = 2 * FS as usize;
    let mut stems = vec![vec![0.0f32; n]; 8];
    let v = noise(n, 0.3, 9);
    stems[6] = v.clone();
    stems[7] = v.clone();
    let out = render(&mut engine(ChannelLayout::FivePointOne), &stems, 1024);
    // Mono vocals: centre = (1 - 0.2)·√2·v, fronts = 0.2·v, nothing elsewhere.
    assert!(correlation(&out[2], &v) > 0.9999);
    let c_gain = (energy(&out[2]) / energy(&v)).sqrt();
    assert!(
        (c_gain - 0.8 * std::f64::consts::SQRT_2).abs() < 1e-4,
        "centre gain {c_gain}"
    );
    let f_gain = (energy(&out[0]) / energy(&v)).sqrt();
    assert!((f_gain - 0.2).abs() < 1e-4, "front gain {f_gain}");
    for ch in [3, 4, 5] {
        assert_eq!(energy(&out[ch]), 0.0, "channel {ch} must be silent");
    }
}

#[test]
fn surrounds_are_decorrelated_from_the_fronts_and_each_other() {
    let n = 4 * FS as usize;
    // "Other" only, the same noise in both channels: the hardest case, since its
    // left and right are identical.
    let mut stems = vec![vec![0.0f32; n]; 8];
    let x = noise(n, 0.3, 21);
    stems[4] = x.clone();
    stems[5] = x;
    for layout in [ChannelLayout::FivePointOne, ChannelLayout::SevenPointOne] {
        let out = render(&mut engine(layout), &stems, 4096);
        let surrounds: Vec<usize> = (4..layout.channels()).collect();
        for &s in &surrounds {
            assert!(energy(&out[s]) > 0.0);
            for front in [0, 1] {
                let rho = correlation(&out[front], &out[s]);
                assert!(
                    rho.abs() < 0.05,
                    "{layout}: corr(front {front}, surround {s}) = {rho:.3}"
                );
            }
            for &t in surrounds.iter().filter(|&&t| t > s) {
                // Surrounds fed from the same channel differ only in delay and
                // all-pass tuning, so a little more correlation is left between them.
                let rho = correlation(&out[s], &out[t]);
                assert!(
                    rho.abs() < 0.1,
                    "{layout}: corr(surround {s}, surround {t}) = {rho:.3}"
                );
            }
        }
    }
}

#[test]
fn output_is_identical_at_any_block_size_with_live_changes() {
    let n = FS as usize;
    let stems = four_stems(n);
    for layout in [
        ChannelLayout::Stereo,
        ChannelLayout::TwoPointOne,
        ChannelLayout::SevenPointOne,
    ] {
        let run = |block: usize| -> Vec<Vec<f32>> {
            let mut e = engine(layout);
            let mut out = vec![vec![0.0f32; n]; e.output_channels()];
            let mut i = 0;
            while i < n {
                // Live changes at fixed sample positions, whatever the block size.
                if i <= 10_000 && 10_000 < i + block {
                    let end = 10_000;
                    let ins: Vec<&[f32]> = stems.iter().map(|c| &c[i..end]).collect();
                    let mut outs: Vec<&mut [f32]> =
                        out.iter_mut().map(|c| &mut c[i..end]).collect();
                    e.process(&ins, &mut outs).expect("block");
                    i = end;
                    e.mixer().set_gain_db(Source::Vocals, -12.0).expect("gain");
                    let p = MatrixParams {
                        vocal_front_share: 0.5,
                        surround_delay_ms: 22.0,
                        crossover_hz: 100.0,
                        surround_level: 0.8,
                        ..MatrixParams::default()
                    };
                    e.matrix().set_params(p).expect("params");
                }
                let end = (i + block).min(n);
                let ins: Vec<&[f32]> = stems.iter().map(|c| &c[i..end]).collect();
                let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[i..end]).collect();
                e.process(&ins, &mut outs).expect("block");
                i = end;
            }
            out
        };
        let reference = run(4096);
        for block in [1, 7, 128] {
            assert!(
                run(block) == reference,
                "{layout}: output differs at block size {block}"
            );
        }
    }
}

#[test]
fn unsupported_layouts_and_bad_parameters_are_errors() {
    assert!(StemEngine::new(
        &Source::FOUR,
        ChannelLayout::Discrete(4),
        FS,
        MatrixParams::default()
    )
    .is_err());
    let bad = MatrixParams {
        crossover_hz: 5.0,
        ..MatrixParams::default()
    };
    assert!(StemEngine::new(&Source::FOUR, ChannelLayout::TwoPointOne, FS, bad).is_err());
    assert!(StemEngine::new(
        &[Source::Bass, Source::Bass],
        ChannelLayout::Stereo,
        FS,
        MatrixParams::default()
    )
    .is_err());
    let mut e = engine(ChannelLayout::Stereo);
    let a = [0.0f32; 10];
    let mut o = [0.0f32; 10];
    assert!(e.process(&[&a[..]; 7], &mut [&mut o[..]]).is_err());
}
