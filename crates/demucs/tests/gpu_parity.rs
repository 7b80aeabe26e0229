//! The GPU engine end to end against the reference `apply_model` (shifts=0,
//! overlap 0.25, split), with the same fixtures and thresholds as the CPU
//! engine's `apply_parity.rs`: every stem at ≥ 100 dB, for the 4-source and
//! 6-source models, the legacy `.th` package and a bag. On lavapipe in CI; no
//! test here is skipped for want of a GPU.

mod common;
use common::*;

use sonantica_demucs::gpu::Gpu;
use sonantica_demucs::weights::read_tensors;
use sonantica_demucs::{load_separator, ApplyOptions, Separator};
use sonantica_testkit::snr::snr_db;

/// The fixture mix (stereo) and the options the reference ran it with.
fn fixture_mix() -> anyhow::Result<(Vec<Vec<f32>>, ApplyOptions)> {
    let t = &read_tensors(&fixture("mix.safetensors"))?["mix"];
    let n = t.shape[1];
    let mix: Vec<Vec<f32>> = (0..2)
        .map(|c| t.data[c * n..(c + 1) * n].to_vec())
        .collect();
    let opts = ApplyOptions {
        shifts: 0,
        ..ApplyOptions::default()
    };
    Ok((mix, opts))
}

/// The fixture mix through `separator` as the reference ran it (shifts=0).
fn separate_fixture_mix(separator: &Separator) -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
    let (mix, opts) = fixture_mix()?;
    Ok(separator.apply(&mix, &opts, &mut |_| true)?)
}

/// Every stem of `out` at ≥ 100 dB against the reference's `out` tensor.
fn assert_matches_reference(
    separator: &Separator,
    out: &[Vec<Vec<f32>>],
    reference: &str,
) -> anyhow::Result<()> {
    let r = &read_tensors(&fixture(reference))?["out"];
    let (s, c, n) = (r.shape[0], r.shape[1], r.shape[2]);
    assert_eq!((out.len(), out[0].len(), out[0][0].len()), (s, c, n));
    for (k, name) in separator.sources().iter().enumerate() {
        let want = &r.data[k * c * n..(k + 1) * c * n];
        let got: Vec<f32> = out[k].iter().flatten().copied().collect();
        let snr = snr_db(want, &got);
        println!("{reference} {name}: {snr:.1} dB");
        assert!(snr >= 100.0, "{name}: {snr:.1} dB < 100 dB");
    }
    Ok(())
}

fn check(mut separator: Separator, reference: &str) -> anyhow::Result<()> {
    let gpu = Gpu::open(true)?;
    separator.use_gpu(&gpu)?;
    let out = separate_fixture_mix(&separator)?;
    assert_eq!(
        separator.gpu_failure(),
        None,
        "the GPU ran every segment ({})",
        gpu.adapter()
    );
    assert_matches_reference(&separator, &out, reference)
}

#[test]
fn four_source_model_on_the_gpu_matches_reference_apply_model() -> anyhow::Result<()> {
    check(
        load_separator(&fixture("small4.safetensors"))?,
        "ref_small4.safetensors",
    )
}

#[test]
fn six_source_model_on_the_gpu_matches_reference_apply_model() -> anyhow::Result<()> {
    check(
        load_separator(&fixture("small6.safetensors"))?,
        "ref_small6.safetensors",
    )
}

#[test]
fn legacy_th_package_on_the_gpu_matches_reference_apply_model() -> anyhow::Result<()> {
    check(
        load_separator(&fixture("small4-ec8eddd3.th"))?,
        "ref_small4.safetensors",
    )
}

#[test]
fn bag_on_the_gpu_matches_reference_apply_model() -> anyhow::Result<()> {
    let sep = load_separator(&fixture("bag.yaml"))?;
    assert_eq!(sep.models().len(), 2);
    check(sep, "ref_bag.safetensors")
}

#[test]
fn a_gpu_that_runs_out_of_memory_mid_run_hands_the_rest_to_the_cpu() -> anyhow::Result<()> {
    // How much the weights take: a budget just above it holds them, and no
    // segment's activations.
    let mut probe = load_separator(&fixture("small4.safetensors"))?;
    let unbounded = Gpu::open(true)?;
    probe.use_gpu(&unbounded)?;
    let (weights, _) = unbounded.memory();
    drop(probe);
    assert_eq!(unbounded.memory().0, 0, "the weights' memory is given back");

    let gpu = Gpu::open_with_budget(true, Some(weights + 4096))?;
    let mut separator = load_separator(&fixture("small4.safetensors"))?;
    separator.use_gpu(&gpu)?;
    let out = separate_fixture_mix(&separator)?;
    let why = separator.gpu_failure().unwrap_or_default();
    assert!(why.contains("out of GPU memory"), "{why:?}");
    // Still the reference's stems: the CPU did the work.
    assert_matches_reference(&separator, &out, "ref_small4.safetensors")?;
    // A budget too small for the weights: the model stays on the CPU.
    let tiny = Gpu::open_with_budget(true, Some(1024))?;
    let mut sep = load_separator(&fixture("small4.safetensors"))?;
    let err = sep
        .use_gpu(&tiny)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("out of GPU memory"), "{err}");
    assert!(sep.gpu().is_none(), "no half-uploaded model is used");
    Ok(())
}

#[test]
fn a_gpu_lost_mid_run_hands_the_rest_to_the_cpu() -> anyhow::Result<()> {
    let gpu = Gpu::open(true)?;
    let mut separator = load_separator(&fixture("small4.safetensors"))?;
    separator.use_gpu(&gpu)?;
    assert!(
        separator.device().starts_with("GPU: "),
        "{}",
        separator.device()
    );
    let (mix, opts) = fixture_mix()?;
    let total = separator.passes(mix[0].len(), &opts);
    assert!(
        total >= 2,
        "the fixture mix takes {total} passes: none left after the loss"
    );
    // The device goes after the first segment, as a driver reset would.
    let out = separator.apply(&mix, &opts, &mut |p| {
        if p.done == 1 {
            gpu.destroy();
        }
        true
    })?;
    let why = separator.gpu_failure().unwrap_or_default();
    println!("{why}");
    assert!(
        why.contains("the GPU was lost"),
        "the loss is named: {why:?}"
    );
    assert!(
        separator.device().starts_with("CPU (the GPU failed: "),
        "{}",
        separator.device()
    );
    // Every stem still the reference's: the CPU did the rest.
    assert_matches_reference(&separator, &out, "ref_small4.safetensors")
}
