//! Tempo and pitch on signals with known answers: partials stay where they
//! belong (or move by exactly the transposition), nothing appears between them,
//! attacks land at time / tempo, and the output is the same at any block size.

use realfft::RealFftPlanner;
use sonantica_mix::Stretcher;

const FS: u32 = 44_100;

/// A 440 Hz tone with harmonics 1..=8 at 1/h, in both channels.
fn harmonic_tone(seconds: f64) -> Vec<Vec<f32>> {
    let n = (seconds * f64::from(FS)) as usize;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(FS);
            (1..=8)
                .map(|h| (std::f64::consts::TAU * 440.0 * h as f64 * t).sin() / h as f64)
                .sum::<f64>() as f32
                * 0.18
        })
        .collect();
    vec![x.clone(), x]
}

/// Runs the whole input through a fresh stretcher in blocks of `block`, making
/// exactly `round(len / tempo)` frames (zeros are pushed past the input's end).
fn stretch(input: &[Vec<f32>], tempo: f64, semitones: f64, block: usize) -> Vec<Vec<f32>> {
    let channels = input.len();
    let len = input[0].len();
    let out_len = (len as f64 / tempo).round() as usize;
    let mut s = Stretcher::new(channels, FS).expect("stretcher");
    s.set(tempo, semitones).expect("parameters");
    s.reset();
    let mut out = vec![vec![0.0f32; out_len]; channels];
    let mut fed = 0usize;
    let mut made = 0usize;
    let mut piece_in: Vec<Vec<f32>> = vec![Vec::new(); channels];
    let mut piece_out: Vec<Vec<f32>> = vec![Vec::new(); channels];
    while made < out_len {
        let b = block.min(out_len - made);
        let need = s.input_needed(b);
        for (c, p) in piece_in.iter_mut().enumerate() {
            p.clear();
            for i in fed..fed + need {
                p.push(input[c].get(i).copied().unwrap_or(0.0));
            }
        }
        s.push(&piece_in).expect("push");
        fed += need;
        for p in &mut piece_out {
            p.clear();
            p.resize(b, 0.0);
        }
        s.pull(&mut piece_out).expect("pull");
        for c in 0..channels {
            out[c][made..made + b].copy_from_slice(&piece_out[c]);
        }
        made += b;
    }
    out
}

/// Power spectrum (dB) of `x[start..start + n]` under a 4-term Blackman-Harris
/// window (side lobes below -92 dB, so the window hides nothing at -50 dB).
fn spectrum_db(x: &[f32], start: usize, n: usize) -> Vec<f64> {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut buf: Vec<f64> = (0..n)
        .map(|i| {
            let p = std::f64::consts::TAU * i as f64 / n as f64;
            let w =
                0.35875 - 0.48829 * p.cos() + 0.14128 * (2.0 * p).cos() - 0.01168 * (3.0 * p).cos();
            f64::from(x[start + i]) * w
        })
        .collect();
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec).expect("fft");
    spec.iter()
        .map(|c| 10.0 * (c.norm_sqr() + 1e-30).log10())
        .collect()
}

/// The frequency of the strongest bin within ±1 % of `near` (parabolic fit).
fn peak_hz(db: &[f64], n: usize, near: f64) -> (f64, f64) {
    let bin_hz = f64::from(FS) / n as f64;
    let lo = ((near * 0.99) / bin_hz) as usize;
    let hi = ((near * 1.01) / bin_hz) as usize + 1;
    let k = (lo..=hi)
        .max_by(|&a, &b| db[a].total_cmp(&db[b]))
        .expect("bins");
    let (a, b, c) = (db[k - 1], db[k], db[k + 1]);
    let d = 0.5 * (a - c) / (a - 2.0 * b + c);
    ((k as f64 + d) * bin_hz, b)
}

/// Worst relative error of the eight partials from `ratio × h × 440` Hz, and the
/// highest level more than 30 Hz from every partial (below 8 kHz) relative to
/// the strongest partial, in dB.
fn partials_and_between(x: &[f32], ratio: f64) -> (f64, f64) {
    let n = 65_536;
    let start = FS as usize / 2;
    assert!(x.len() >= start + n, "the output is long enough to analyse");
    let db = spectrum_db(x, start, n);
    let bin_hz = f64::from(FS) / n as f64;
    let mut worst = 0.0f64;
    let mut strongest = f64::MIN;
    let expected: Vec<f64> = (1..=8).map(|h| 440.0 * h as f64 * ratio).collect();
    for &f in &expected {
        let (got, level) = peak_hz(&db, n, f);
        worst = worst.max((got - f).abs() / f);
        strongest = strongest.max(level);
    }
    let mut between = f64::MIN;
    for (k, &v) in db.iter().enumerate().skip(1) {
        let f = k as f64 * bin_hz;
        if f > 8000.0 {
            break;
        }
        if expected.iter().all(|&p| (f - p).abs() > 30.0) {
            between = between.max(v);
        }
    }
    (worst, between - strongest)
}

#[test]
fn tempo_keeps_every_partial_within_half_a_percent_and_adds_nothing_between_them() {
    let input = harmonic_tone(4.0);
    for tempo in [0.75, 1.25] {
        let out = stretch(&input, tempo, 0.0, 512);
        for ch in &out {
            let (err, between) = partials_and_between(ch, 1.0);
            eprintln!(
                "tempo {tempo}: worst partial {:.4} %, {between:.1} dB between",
                err * 100.0
            );
            assert!(
                err < 0.005,
                "tempo {tempo}: a partial moved by {:.3} %",
                err * 100.0
            );
            assert!(
                between < -50.0,
                "tempo {tempo}: {between:.1} dB between the partials (limit -50 dB)"
            );
        }
    }
}

#[test]
fn transposing_up_two_semitones_moves_every_partial_by_that_ratio() {
    let input = harmonic_tone(4.0);
    let ratio = 2f64.powf(2.0 / 12.0);
    for tempo in [1.0, 0.8] {
        let out = stretch(&input, tempo, 2.0, 512);
        let (err, between) = partials_and_between(&out[0], ratio);
        eprintln!(
            "tempo {tempo}, +2: worst partial {:.4} %, {between:.1} dB between",
            err * 100.0
        );
        assert!(
            err < 0.005,
            "tempo {tempo}, +2: a partial is {:.3} % off 2^(2/12) × its place",
            err * 100.0
        );
        assert!(
            between < -50.0,
            "tempo {tempo}, +2: {between:.1} dB between the partials (limit -50 dB)"
        );
    }
}

#[test]
fn transposing_down_an_octave_and_cents_move_the_tone_exactly() {
    let input = harmonic_tone(4.0);
    for semitones in [-12.0, 0.37] {
        let ratio = 2f64.powf(semitones / 12.0);
        let out = stretch(&input, 1.0, semitones, 300);
        let (err, between) = partials_and_between(&out[1], ratio);
        eprintln!(
            "{semitones} st: worst partial {:.4} %, {between:.1} dB between",
            err * 100.0
        );
        assert!(err < 0.005, "{semitones} st: {:.3} % off", err * 100.0);
        assert!(between < -50.0, "{semitones} st: {between:.1} dB between");
    }
}

#[test]
fn an_attack_lands_at_its_time_divided_by_the_tempo() {
    // Silence, then a 1 ms burst at 0.8 s, then a quiet tone so the frames are not empty.
    let n = 2 * FS as usize;
    let at = (0.8 * f64::from(FS)) as usize;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let tone = 0.01 * (std::f64::consts::TAU * 220.0 * i as f64 / f64::from(FS)).sin();
            let click = if (at..at + 44).contains(&i) { 0.8 } else { 0.0 };
            (tone + click) as f32
        })
        .collect();
    let input = vec![x.clone(), x];
    for tempo in [0.5, 0.75, 1.25, 1.5] {
        let out = stretch(&input, tempo, 0.0, 128);
        // The attack: the first sample above half the burst's level.
        let first = out[0]
            .iter()
            .position(|v| v.abs() > 0.4)
            .expect("the burst is in the output");
        let want = at as f64 / tempo;
        let err_ms = (first as f64 - want) / f64::from(FS) * 1000.0;
        eprintln!("tempo {tempo}: attack {err_ms:+.2} ms from time/tempo");
        assert!(
            err_ms.abs() <= 5.0,
            "tempo {tempo}: the attack is at {:.1} ms, {err_ms:+.2} ms from time/tempo",
            first as f64 / f64::from(FS) * 1000.0
        );
    }
}

#[test]
fn the_output_is_the_same_at_any_block_size() {
    let mut input = harmonic_tone(1.5);
    // Different channels, with attacks, so locking, resets and the stereo path all run.
    for (i, v) in input[1].iter_mut().enumerate() {
        *v = *v * 0.5 + if i % 9000 < 30 { 0.5 } else { 0.0 };
    }
    for (tempo, semis) in [(0.8, 3.0), (1.3, -5.0)] {
        let reference = stretch(&input, tempo, semis, 4096);
        for block in [1, 7, 128] {
            let out = stretch(&input, tempo, semis, block);
            assert_eq!(out.len(), reference.len());
            for c in 0..out.len() {
                assert_eq!(out[c].len(), reference[c].len());
                let first_diff = out[c]
                    .iter()
                    .zip(&reference[c])
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(
                    first_diff, None,
                    "tempo {tempo}, {semis} st, block {block}: channel {c} differs"
                );
            }
        }
    }
}

#[test]
fn at_tempo_one_without_transposition_the_input_passes_untouched() {
    let input = harmonic_tone(0.5);
    let out = stretch(&input, 1.0, 0.0, 100);
    assert_eq!(out, input);
}

#[test]
fn the_output_length_is_exact_and_the_end_of_the_input_is_at_its_end() {
    // A burst at the very end of 3 s: at tempo 0.75 it must sit at the end of 4 s.
    let n = 3 * FS as usize;
    let x: Vec<f32> = (0..n)
        .map(|i| {
            if i >= n - 2205 && i < n - 2161 {
                0.8
            } else {
                0.0
            }
        })
        .collect();
    let out = stretch(&[x.clone(), x], 0.75, 0.0, 512);
    assert_eq!(
        out[0].len(),
        4 * FS as usize,
        "3 s at 0.75 is 4 s to the sample"
    );
    let first = out[0].iter().position(|v| v.abs() > 0.4).expect("burst");
    let want = (n - 2205) as f64 / 0.75;
    let err_ms = (first as f64 - want) / f64::from(FS) * 1000.0;
    assert!(err_ms.abs() <= 5.0, "the burst is {err_ms:+.2} ms off");
}

#[test]
fn turning_the_stretch_on_and_off_while_playing_makes_no_click() {
    // A sine whose largest sample step is known; switching must not exceed it much.
    let f = 330.0;
    let n = 3 * FS as usize;
    let x: Vec<f32> = (0..n)
        .map(|i| (0.5 * (std::f64::consts::TAU * f * i as f64 / f64::from(FS)).sin()) as f32)
        .collect();
    let max_step = 0.5 * std::f64::consts::TAU * f / f64::from(FS);
    let mut s = Stretcher::new(1, FS).expect("stretcher");
    let mut out = Vec::new();
    let mut fed = 0;
    for q in 0..800 {
        match q {
            100 => s.set(0.8, 0.0).expect("on"),
            300 => s.set(0.8, 2.0).expect("transpose"),
            500 => s.set(1.0, 0.0).expect("off"),
            _ => {}
        }
        let need = s.input_needed(128);
        let piece: Vec<f32> = (fed..fed + need)
            .map(|i| x.get(i).copied().unwrap_or(0.0))
            .collect();
        fed += need;
        s.push(&[piece]).expect("push");
        let mut o = vec![vec![0.0f32; 128]];
        s.pull(&mut o).expect("pull");
        out.extend_from_slice(&o[0]);
    }
    let worst = out
        .windows(2)
        .map(|w| f64::from((w[1] - w[0]).abs()))
        .fold(0.0, f64::max);
    assert!(
        worst < 1.6 * max_step * 2f64.powf(2.0 / 12.0),
        "largest step {worst:.4} against a sine's {max_step:.4}"
    );
}

#[test]
fn low_and_high_sample_rates_work_and_zero_is_refused() {
    for rate in [4_000u32, 8_000, 96_000, 192_000] {
        let mut s = Stretcher::new(2, rate).expect("a stretcher at any usual rate");
        s.set(0.8, 1.0).expect("parameters");
        s.reset();
        let need = s.input_needed(256);
        let x = vec![vec![0.1f32; need]; 2];
        s.push(&x).expect("push");
        let mut out = vec![vec![0.0f32; 256]; 2];
        s.pull(&mut out).expect("pull");
        assert!(out[0].iter().all(|v| v.is_finite()), "{rate} Hz");
    }
    assert!(Stretcher::new(2, 0).is_err());
    assert!(Stretcher::new(0, 44_100).is_err());
}

#[test]
fn the_engine_reads_exactly_the_input_it_announces_at_any_block_size() {
    use sonantica_mix::{ChannelLayout, MatrixParams, MixSettings, Source, StemEngine};
    // Large blocks made of many inner pieces, while frames are worked on ahead:
    // the input read must be what input_frames_for said, every time.
    for (tempo, semis) in [(0.8, -2.0), (1.5, 12.0), (0.5, -12.0), (1.25, 0.0)] {
        let mut e = StemEngine::new(
            &Source::FOUR,
            ChannelLayout::Stereo,
            FS,
            MatrixParams::default(),
        )
        .expect("engine");
        e.apply(&MixSettings {
            tempo,
            transpose: semis,
            ..MixSettings::default()
        })
        .expect("settings");
        e.reset();
        let mut fed = 0usize;
        for (k, block) in [4096usize, 1, 7, 128, 4096, 3000, 4096, 256, 4096]
            .iter()
            .enumerate()
        {
            let need = e.input_frames_for(*block);
            let input: Vec<Vec<f32>> = (0..8)
                .map(|c| {
                    (0..need)
                        .map(|i| (((fed + i) * (c + 1)) % 101) as f32 * 0.004 - 0.2)
                        .collect()
                })
                .collect();
            let mut out = vec![vec![0.0f32; *block]; 2];
            e.process(&input, &mut out)
                .unwrap_or_else(|err| panic!("tempo {tempo}, block {k} ({block} frames): {err}"));
            fed += need;
        }
        let played = e.position();
        assert!(
            fed as f64 >= played,
            "tempo {tempo}: read {fed}, played {played}"
        );
    }
}
