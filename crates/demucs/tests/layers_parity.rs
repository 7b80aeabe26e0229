//! Layer-by-layer parity with the reference PyTorch HTDemucs: one forward pass of
//! the small fixture model over one segment, every module output compared with the
//! activations the reference recorded (tools/reference/make_fixtures.py).

mod common;
use common::*;

use sonantica_demucs::weights::read_tensors;
use sonantica_demucs::{Checkpoint, HTDemucs};
use sonantica_testkit::snr::snr_db;

#[test]
fn every_layer_matches_the_reference_at_60_db() -> anyhow::Result<()> {
    let acts = read_tensors(&fixture("act_small4.safetensors"))?;
    let model = HTDemucs::load(Checkpoint::load_safetensors(&fixture(
        "small4.safetensors",
    ))?)?;
    let input = &acts["input"];
    let len = input.shape[2];
    let mix: Vec<Vec<f32>> = (0..2)
        .map(|c| input.data[c * len..(c + 1) * len].to_vec())
        .collect();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    let out = model.forward_traced(&mix, &mut |name, data| {
        if let Some(r) = acts.get(name) {
            assert_eq!(
                r.data.len(),
                data.len(),
                "{name}: size {:?} vs {}",
                r.shape,
                data.len()
            );
            let snr = snr_db(&r.data, data);
            if snr < 60.0 {
                failures.push(format!("{name}: {snr:.1} dB"));
            }
            checked.push(format!("{name} {snr:.1}"));
        }
    })?;
    let flat: Vec<f32> = out.iter().flatten().flatten().copied().collect();
    let snr = snr_db(&acts["output"].data, &flat);
    checked.push(format!("output {snr:.1}"));
    println!("{}", checked.join("\n"));
    assert!(failures.is_empty(), "layers below 60 dB: {failures:?}");
    assert!(snr >= 60.0, "output {snr:.1} dB");
    // Every recorded module was compared.
    assert!(
        checked.len() >= acts.len() - 2,
        "{} of {} compared",
        checked.len(),
        acts.len()
    );
    Ok(())
}
