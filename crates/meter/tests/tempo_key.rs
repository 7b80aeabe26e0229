//! Tempo and key on signals with known answers: click tracks at 90, 120 and 174
//! BPM, and chord progressions in five major and five minor keys.

use sonantica_meter::TempoKey;

const FS: u32 = 44_100;

fn feed(tk: &mut TempoKey, x: &[f32], block: usize) {
    for chunk in x.chunks(block) {
        tk.process(&[chunk, chunk]);
    }
}

/// `seconds` of clicks (5 ms bursts of a 2 kHz tone) at `bpm`, the first at `first_s`.
fn clicks(bpm: f64, seconds: f64, first_s: f64) -> Vec<f32> {
    let n = (seconds * f64::from(FS)) as usize;
    let period = 60.0 / bpm;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(FS) - first_s;
            if t < 0.0 {
                return 0.0;
            }
            let into = t % period;
            if into < 0.005 {
                (0.6 * (std::f64::consts::TAU * 2000.0 * into).sin()) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn click_tracks_give_their_tempo_within_one_bpm_and_the_beat_grid() {
    for (bpm, first) in [(90.0, 0.3), (120.0, 0.05), (174.0, 0.2)] {
        let mut tk = TempoKey::new(FS);
        feed(&mut tk, &clicks(bpm, 30.0, first), 1000);
        let t = tk.tempo().expect("a tempo");
        eprintln!(
            "{bpm} BPM: estimated {:.2}, offset {:.3} s, confidence {:.2}",
            t.bpm, t.offset_s, t.confidence
        );
        assert!(
            (t.bpm - bpm).abs() <= 1.0,
            "{bpm} BPM estimated as {:.2}",
            t.bpm
        );
        // The grid passes through the clicks (within 15 ms, modulo a beat).
        let period = 60.0 / t.bpm;
        let d = (t.offset_s - first).rem_euclid(period);
        let miss = d.min(period - d);
        assert!(
            miss < 0.015,
            "{bpm} BPM: the grid misses the clicks by {:.1} ms",
            miss * 1e3
        );
    }
}

#[test]
fn a_drum_pattern_with_offbeats_keeps_its_tempo() {
    // Kick on the beat, hi-hat on the off-beats (quieter): the beat is still 100 BPM.
    let bpm = 100.0;
    let kick = clicks(bpm, 30.0, 0.1);
    let hat = clicks(bpm, 30.0, 0.1 + 30.0 / bpm);
    let x: Vec<f32> = kick.iter().zip(&hat).map(|(k, h)| k + 0.4 * h).collect();
    let mut tk = TempoKey::new(FS);
    feed(&mut tk, &x, 4096);
    let t = tk.tempo().expect("a tempo");
    eprintln!("kick and hat at {bpm}: estimated {:.2}", t.bpm);
    assert!((t.bpm - bpm).abs() <= 1.0, "estimated {:.2}", t.bpm);
}

#[test]
fn short_or_silent_signals_have_no_tempo_or_key() {
    let mut tk = TempoKey::new(FS);
    feed(&mut tk, &vec![0.0; 20 * FS as usize], 512);
    assert_eq!(tk.tempo(), None);
    assert_eq!(tk.key(), None);
    let mut short = TempoKey::new(FS);
    feed(&mut short, &clicks(120.0, 5.0, 0.0), 512);
    assert_eq!(short.tempo(), None, "5 s is too short to tell");
}

/// A chord of MIDI notes as tones with three harmonics, `seconds` long.
fn chord(notes: &[i32], seconds: f64) -> Vec<f32> {
    let n = (seconds * f64::from(FS)) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(FS);
            let env = (t / 0.02).min(1.0) * ((seconds - t) / 0.05).clamp(0.0, 1.0);
            notes
                .iter()
                .map(|&m| {
                    let f = 440.0 * 2f64.powf(f64::from(m - 69) / 12.0);
                    (1..=3)
                        .map(|h| (std::f64::consts::TAU * f * h as f64 * t).sin() / h as f64)
                        .sum::<f64>()
                })
                .sum::<f64>()
                * env
                * 0.08
        })
        .map(|v| v as f32)
        .collect()
}

/// I–IV–V–I (major) or i–iv–V–i (minor, with the raised leading note), twice,
/// with the root an octave down in the bass.
fn progression(tonic: i32, major: bool) -> Vec<f32> {
    let triad = |root: i32, major: bool| -> Vec<i32> {
        let third = if major { 4 } else { 3 };
        vec![root - 12, root, root + third, root + 7]
    };
    let chords = [
        triad(tonic, major),
        triad(tonic + 5, major),
        triad(tonic + 7, true),
        triad(tonic, major),
    ];
    let mut x = Vec::new();
    for _ in 0..2 {
        for c in &chords {
            x.extend(chord(c, 1.5));
        }
    }
    x
}

#[test]
fn chord_progressions_in_ten_keys_give_their_key() {
    // MIDI tonics around middle C: C, G, Eb, A, F# (major) and A, E, D, C, F# (minor).
    let cases = [
        (60, true, "C major"),
        (67, true, "G major"),
        (63, true, "Eb major"),
        (57, true, "A major"),
        (66, true, "F# major"),
        (57, false, "A minor"),
        (64, false, "E minor"),
        (62, false, "D minor"),
        (60, false, "C minor"),
        (66, false, "F# minor"),
    ];
    for (tonic, major, name) in cases {
        let mut tk = TempoKey::new(FS);
        feed(&mut tk, &progression(tonic, major), 777);
        let key = tk.key().expect("a key");
        assert_eq!(key.to_string(), name);
    }
}
