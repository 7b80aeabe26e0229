//! End-to-end parity with the reference `apply_model` (shifts=0, overlap 0.25,
//! split): every stem at ≥ 100 dB SNR, for a 4-source model, a 6-source model and
//! a bag with a non-identity weight matrix.

mod common;
use common::*;

use std::path::PathBuf;

use sonantica_demucs::weights::read_tensors;
use sonantica_demucs::{ApplyOptions, Checkpoint, HTDemucs, Separator};
use sonantica_testkit::snr::snr_db;

fn mix() -> anyhow::Result<Vec<Vec<f32>>> {
    let t = &read_tensors(&fixture("mix.safetensors"))?["mix"];
    let n = t.shape[1];
    Ok((0..2)
        .map(|c| t.data[c * n..(c + 1) * n].to_vec())
        .collect())
}

/// Checks `separator` against the reference on one thread and on two: the
/// second runs each segment's branches side by side and splits its products,
/// which must not change the result beyond the tolerance.
fn check_against(separator: &Separator, reference: &str) -> anyhow::Result<()> {
    for threads in [1, 2] {
        // The thread count is global: a test running beside this one may see
        // 2, which only changes how its work is spread, never what it computes.
        sonantica_demucs::ops::set_threads(threads);
        println!("{threads} thread(s)");
        check_on_threads(separator, reference)?;
    }
    sonantica_demucs::ops::set_threads(1);
    Ok(())
}

fn check_on_threads(separator: &Separator, reference: &str) -> anyhow::Result<()> {
    let mix = mix()?;
    let opts = ApplyOptions {
        shifts: 0,
        ..ApplyOptions::default()
    };
    let mut calls = 0;
    let out = separator.apply(&mix, &opts, &mut |_| {
        calls += 1;
        true
    })?;
    assert!(calls >= 2, "split into several segments");
    let r = &read_tensors(&fixture(reference))?["out"];
    let (s, c, n) = (r.shape[0], r.shape[1], r.shape[2]);
    assert_eq!((out.len(), out[0].len(), out[0][0].len()), (s, c, n));
    for (k, name) in separator.sources().iter().enumerate() {
        let reference: Vec<f32> = r.data[k * c * n..(k + 1) * c * n].to_vec();
        let got: Vec<f32> = out[k].iter().flatten().copied().collect();
        let snr = snr_db(&reference, &got);
        println!("{name}: {snr:.1} dB");
        assert!(snr >= 100.0, "{name}: {snr:.1} dB < 100 dB");
    }
    Ok(())
}

#[test]
fn four_source_model_matches_reference_apply_model() -> anyhow::Result<()> {
    let model = HTDemucs::load(Checkpoint::load_safetensors(&fixture(
        "small4.safetensors",
    ))?)?;
    check_against(&Separator::single(model), "ref_small4.safetensors")
}

#[test]
fn six_source_model_matches_reference_apply_model() -> anyhow::Result<()> {
    let model = HTDemucs::load(Checkpoint::load_safetensors(&fixture(
        "small6.safetensors",
    ))?)?;
    assert_eq!(model.config().sources.len(), 6);
    check_against(&Separator::single(model), "ref_small6.safetensors")
}

fn th_fixture() -> anyhow::Result<PathBuf> {
    let dir = fixture("");
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("small4-") && n.ends_with(".th"))
        {
            return Ok(p);
        }
    }
    anyhow::bail!("no small4-*.th fixture")
}

#[test]
fn legacy_th_package_matches_reference_apply_model() -> anyhow::Result<()> {
    let sep = sonantica_demucs::load_separator(&th_fixture()?)?;
    check_against(&sep, "ref_small4.safetensors")
}

#[test]
fn bag_with_weight_matrix_matches_reference_apply_model() -> anyhow::Result<()> {
    let sep = sonantica_demucs::load_separator(&fixture("bag.yaml"))?;
    assert_eq!(sep.models().len(), 2);
    check_against(&sep, "ref_bag.safetensors")
}
