//! Streaming behaviour of apply: output arrives segment by segment, shifts are
//! repeatable from their seed, and a run can be cancelled between segments.

use std::path::PathBuf;

use sonantica_demucs::{
    ApplyOptions, Checkpoint, DemucsError, HTDemucs, MemorySource, MixSource, Separator,
};

fn separator() -> anyhow::Result<Separator> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/small4.safetensors");
    Ok(Separator::single(HTDemucs::load(
        Checkpoint::load_safetensors(&path)?,
    )?))
}

/// A long procedural mix that is never held in memory.
struct Synth(usize);

impl MixSource for Synth {
    fn len(&self) -> usize {
        self.0
    }
    fn channels(&self) -> usize {
        2
    }
    fn read(
        &mut self,
        start: isize,
        len: usize,
        out: &mut Vec<Vec<f32>>,
    ) -> Result<(), DemucsError> {
        out.resize_with(2, Vec::new);
        for (c, o) in out.iter_mut().enumerate() {
            o.clear();
            o.extend((0..len as isize).map(|i| {
                let j = start + i;
                if j < 0 || j as usize >= self.0 {
                    0.0
                } else {
                    (0.3 * ((j as f64) * 0.01 * (c + 1) as f64).sin()) as f32
                }
            }));
        }
        Ok(())
    }
}

#[test]
fn output_is_emitted_progressively_with_bounded_blocks() -> anyhow::Result<()> {
    let sep = separator()?;
    let len = 20 * 44_100; // 80 segments of 0.25 s
    let opts = ApplyOptions {
        shifts: 0,
        ..ApplyOptions::default()
    };
    let mut passes = 0usize;
    let mut emitted = 0usize;
    let mut largest = 0usize;
    let mut first_emit_at = None;
    let passes_ref = std::cell::Cell::new(0usize);
    sep.apply_stream(
        &mut Synth(len),
        &opts,
        &mut |p| {
            passes = p.done;
            passes_ref.set(p.done);
            true
        },
        &mut |block| {
            let n = block[0][0].len();
            assert!(block.iter().flatten().all(|c| c.len() == n));
            first_emit_at.get_or_insert(passes_ref.get());
            largest = largest.max(n);
            emitted += n;
            Ok(())
        },
    )?;
    assert_eq!(emitted, len, "every frame emitted once");
    assert_eq!(
        first_emit_at,
        Some(1),
        "output starts after the first segment"
    );
    // One stride (0.75 segment) per block: memory does not grow with the track.
    assert!(largest <= 11_025, "largest block {largest}");
    assert!(passes >= 106, "{passes} passes");
    Ok(())
}

#[test]
fn shifts_are_repeatable_from_their_seed_and_cancellation_stops_between_segments(
) -> anyhow::Result<()> {
    let sep = separator()?;
    let mix: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..30_000)
                .map(|i| 0.2 * ((i * (c + 2)) as f32 * 0.003).sin())
                .collect()
        })
        .collect();
    let run = |seed: u64| -> anyhow::Result<Vec<Vec<Vec<f32>>>> {
        let opts = ApplyOptions {
            shifts: 2,
            seed,
            ..ApplyOptions::default()
        };
        Ok(sep.apply(&mix, &opts, &mut |_| true)?)
    };
    let a = run(7)?;
    assert_eq!(a, run(7)?, "same seed, same output");
    assert_ne!(a, run(8)?, "another seed shifts differently");
    assert!(a.iter().flatten().flatten().all(|v| v.is_finite()));

    let mut calls = 0;
    let r = sep.apply(&mix, &ApplyOptions::default(), &mut |_| {
        calls += 1;
        calls < 2
    });
    assert!(matches!(r, Err(DemucsError::Cancelled)));
    assert_eq!(calls, 2, "stopped right after the pass that was refused");
    Ok(())
}

#[test]
fn a_track_separated_from_the_middle_first_then_the_rest_equals_one_run_bit_for_bit(
) -> anyhow::Result<()> {
    let sep = separator()?;
    let len = 5 * 44_100 + 123;
    let mut mix = Vec::new();
    Synth(len).read(0, len, &mut mix)?;
    // Two shifts: two sequences with their own random origins, interleaved.
    let opts = ApplyOptions {
        shifts: 2,
        seed: 3,
        ..ApplyOptions::default()
    };
    let whole = sep.apply(&mix, &opts, &mut |_| true)?;
    let run = |range: std::ops::Range<usize>| -> anyhow::Result<(Vec<Vec<Vec<f32>>>, usize)> {
        let mut out = vec![vec![Vec::new(); 2]; 4];
        let mut passes = 0;
        sep.apply_range(
            &mut MemorySource(&mix),
            &opts,
            range,
            &mut |p| {
                passes = p.total;
                true
            },
            &mut |block| {
                for (o, b) in out.iter_mut().zip(block) {
                    for (oc, bc) in o.iter_mut().zip(b) {
                        oc.extend_from_slice(bc);
                    }
                }
                Ok(())
            },
        )?;
        Ok((out, passes))
    };
    let split = 3 * 44_100 + 17;
    let (late, late_passes) = run(split..len)?;
    let (early, early_passes) = run(0..split)?;
    let all_passes = sep.passes_in(len, &opts, 0..len);
    assert_eq!(late_passes, sep.passes_in(len, &opts, split..len));
    assert!(
        late_passes < all_passes && early_passes < all_passes,
        "each part runs fewer passes ({late_passes}, {early_passes} of {all_passes})"
    );
    // The segments across the split run in both parts, no more.
    assert!(late_passes + early_passes <= all_passes + 2 * opts.shifts);
    for k in 0..4 {
        for c in 0..2 {
            assert_eq!(early[k][c].len(), split);
            assert_eq!(late[k][c].len(), len - split);
            assert!(
                early[k][c] == whole[k][c][..split] && late[k][c] == whole[k][c][split..],
                "source {k} channel {c}: the parts differ from one run"
            );
        }
    }
    let bad = sep.apply_range(
        &mut MemorySource(&mix),
        &opts,
        10..len + 1,
        &mut |_| true,
        &mut |_| Ok(()),
    );
    assert!(matches!(bad, Err(DemucsError::Input(_))));
    Ok(())
}
