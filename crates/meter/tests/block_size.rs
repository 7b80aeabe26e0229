//! Every meter gives the same result whatever block size the signal arrives in.

mod common;
use common::*;
use sonantica_meter::ChannelLayout;
use sonantica_testkit::signal::noise;

#[test]
fn every_meter_is_independent_of_block_size() {
    const FS: u32 = 44_100;
    let n = 5 * FS as usize;
    // Noise with a slow envelope, a tone, and clip runs that straddle the block
    // boundaries of most block sizes.
    let env = |i: usize| 0.2 + 0.6 * (0.5 + 0.5 * (TAU * 0.7 * i as f64 / f64::from(FS)).sin());
    let mut l: Vec<f32> = noise(n, 1.0, 5)
        .iter()
        .enumerate()
        .map(|(i, v)| v * env(i) as f32)
        .collect();
    let r: Vec<f32> = noise(n, 1.0, 6)
        .iter()
        .zip(&l)
        .enumerate()
        .map(|(i, (v, x))| {
            0.6 * x + 0.3 * v + 0.1 * (TAU * 220.0 * i as f64 / f64::from(FS)).sin() as f32
        })
        .collect();
    for start in [4095, 70_000, 131_071] {
        for x in &mut l[start..start + 4] {
            *x = 1.0;
        }
    }
    let signal = vec![l, r];

    let run = |block: usize| {
        let mut ins = inspector(FS, ChannelLayout::Stereo);
        feed(&mut ins, &signal, block);
        let mut pts = [(0.0f32, 0.0f32); 256];
        ins.goniometer().latest(&mut pts);
        (
            ins.report(),
            ins.readings(),
            pts.to_vec(),
            ins.goniometer().points_written(),
        )
    };
    let reference = run(4096);
    assert!(reference.0.integrated_lufs.is_some() && reference.0.dr.is_some());
    assert_eq!(reference.0.clip_events, 3);
    for block in [1, 7, 128] {
        let got = run(block);
        assert_eq!(got.0, reference.0, "report at block size {block}");
        assert_eq!(got.1, reference.1, "readings at block size {block}");
        assert_eq!(
            got.2, reference.2,
            "goniometer points at block size {block}"
        );
        assert_eq!(got.3, reference.3, "goniometer count at block size {block}");
    }
}
