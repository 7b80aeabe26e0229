//! Album covers: a picture embedded in an audio file or an image file beside
//! it, decoded, made at most [`COVER_PX`] square and encoded as JPEG. Both
//! are untrusted input: the station runs this in its sandbox
//! ([`crate::sandbox::Isolation::cover`]).

use std::io::{Cursor, Read};
use std::path::Path;

use crate::{PipelineError, PipelineResult};

/// The longest side of a stored cover, in pixels: sharp on a phone's album
/// page, small enough (tens of KB) for a grid of hundreds.
pub const COVER_PX: u32 = 600;

/// Largest picture accepted, per side: a cover is a few thousand pixels at
/// most, and the limit bounds what decoding may allocate.
const MAX_SIDE: u32 = 10_000;

/// True when `bytes` start like a JPEG or PNG file.
fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]) || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// The cover of `path` as JPEG: the image itself when `path` is a JPEG or PNG
/// file, else the picture embedded in the audio file. `None` when an audio
/// file carries no picture.
pub fn cover_of(path: &Path) -> PipelineResult<Option<Vec<u8>>> {
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| PipelineError::io(path, e))?;
    let picture = if is_image(&head[..n]) {
        std::fs::read(path).map_err(|e| PipelineError::io(path, e))?
    } else {
        match sonantica_audio::embedded_picture(path)? {
            Some(p) => p,
            None => return Ok(None),
        }
    };
    to_jpeg(&picture)
        .map(Some)
        .map_err(|e| PipelineError::BadInput(format!("{}: the cover picture: {e}", path.display())))
}

/// Decodes a picture (with limits on its size), scales it to fit
/// [`COVER_PX`] and encodes it as JPEG.
pub fn to_jpeg(picture: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    let mut reader = image::ImageReader::new(Cursor::new(picture)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader.decode()?;
    let small = if img.width() > COVER_PX || img.height() > COVER_PX {
        img.thumbnail(COVER_PX, COVER_PX)
    } else {
        img
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&small.to_rgb8())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_picture_becomes_a_small_jpeg_of_the_same_colour() {
        let big = image::RgbImage::from_pixel(1200, 900, image::Rgb([200, 30, 40]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let jpeg = to_jpeg(&png).expect("jpeg");
        let back = image::load_from_memory(&jpeg).expect("decode").to_rgb8();
        assert_eq!(back.dimensions(), (600, 450));
        let p = back.get_pixel(300, 225).0;
        for (got, want) in p.iter().zip([200u8, 30, 40]) {
            assert!(got.abs_diff(want) <= 6, "{p:?}");
        }
    }

    #[test]
    fn absurd_sizes_and_junk_are_errors() {
        // A PNG header declaring 100000 x 100000 pixels.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(100_000u32.to_be_bytes());
        png.extend(100_000u32.to_be_bytes());
        png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(to_jpeg(&png).is_err());
        assert!(to_jpeg(b"\xFF\xD8\xFFjunk").is_err());
    }
}
