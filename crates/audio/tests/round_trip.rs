//! `OutputFormat::round_trip` predicts, sample for sample, what the decoder
//! reads back from a written file: the station serves stems still being made
//! through it and promises they equal the finished files.

use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};

#[test]
fn round_trip_equals_what_the_decoder_reads_back_from_every_integer_format() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // Values on and between the grid, beyond full scale, and tiny ones.
    let mut x: Vec<f32> = (0..20_000)
        .map(|i| 1.3 * ((i as f32) * 0.0137).sin() * ((i as f32) * 0.00071).cos())
        .collect();
    x.extend([
        1.0,
        -1.0,
        0.999_999_9,
        -1.000_001,
        1e-9,
        -3e-8,
        0.5,
        2.0,
        -2.0,
    ]);
    for format in [
        OutputFormat::Flac16,
        OutputFormat::Flac24,
        OutputFormat::Wav16,
        OutputFormat::Wav24,
        OutputFormat::WavF32,
    ] {
        let path = dir
            .path()
            .join(format!("t-{format:?}.{}", format.extension()));
        let mut w = AudioWriter::create(&path, format, 44_100, ChannelLayout::default_for(2))?;
        let y: Vec<f32> = x.iter().map(|v| -0.7 * v).collect();
        w.write(&[&x, &y])?;
        w.finish()?;
        let (_, back) = Decoder::read_all(&path)?;
        for (c, want) in [&x, &y].into_iter().enumerate() {
            let predicted: Vec<f32> = want.iter().map(|&v| format.round_trip(v)).collect();
            let bad = predicted
                .iter()
                .zip(&back[c])
                .position(|(p, b)| p.to_bits() != b.to_bits());
            assert_eq!(back[c].len(), want.len(), "{format:?}");
            assert_eq!(bad, None, "{format:?} channel {c}: first differing sample");
        }
    }
    Ok(())
}
