//! Files: `stream` and `download` (the track's own file, with Range
//! requests), and `getCoverArt` (the album's cover, scaled to `size`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;

use super::browse::{suffix, Id};
use super::{Fail, Params, Reply};
use crate::app::App;

/// The track's file as it is stored: every client plays the common formats,
/// and a Range request seeks in it. As an attachment for `download`.
pub(crate) async fn file(
    app: &App,
    params: &Params,
    headers: &HeaderMap,
    attachment: bool,
) -> Result<Reply, Fail> {
    let (track, path, ext) = match Id::of(params, "id")? {
        Id::Track(id) => {
            let track = app.library().track(id).await?;
            let path = app.library().track_file(&track)?;
            let ext = suffix(&track);
            (track, path, ext)
        }
        Id::Version(id, preset) => {
            let mut track = app.library().track(id).await?;
            let (path, _) = app.library().version(id, preset).await?;
            track.title = format!("{} ({})", track.title, super::browse::version_label(preset));
            (track, path, "flac".to_owned())
        }
        _ => return Err(Fail::not_found("not a song id")),
    };
    let mut req = Request::new(Body::empty());
    for name in [
        header::RANGE,
        header::IF_RANGE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        if let Some(v) = headers.get(&name) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    let mut res = crate::http::tracks::serve_file(path, req).await;
    if let Ok(v) = HeaderValue::from_str(super::browse::content_type(&ext)) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if attachment {
        // The title as the name, reduced to characters every client takes.
        let name: String = track
            .title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || " -_.()".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(Reply::Raw(res))
}

/// The cover of an album (or of a song's album), at most `size` pixels on its
/// longest side (the stored cover is at most 600).
pub(crate) async fn cover(app: &App, params: &Params) -> Result<Reply, Fail> {
    let album = match Id::of(params, "id")? {
        Id::Album(id) => id,
        Id::Track(id) | Id::Version(id, _) => app
            .library()
            .track(id)
            .await?
            .album_id
            .ok_or_else(|| Fail::not_found("this song has no album, so no cover"))?,
        Id::Artist(_) => return Err(Fail::not_found("artists have no pictures here")),
    };
    let size = params.number::<u32>("size")?;
    let path = app
        .catalog()
        .cover(album, app.library())
        .await?
        .ok_or_else(|| Fail::not_found(format!("album {album} has no cover picture")))?;
    let jpeg = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
        let Some(size) = size.filter(|&s| s > 0) else {
            return Ok(bytes);
        };
        // The stored cover is the station's own JPEG (made in the sandbox).
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
            .map_err(|e| e.to_string())?;
        let size = size.clamp(16, 2048);
        if img.width().max(img.height()) <= size {
            return Ok(bytes);
        }
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&img.thumbnail(size, size).to_rgb8())
            .map_err(|e| e.to_string())?;
        Ok(out)
    })
    .await
    .map_err(|e| Fail::from(crate::AppError::Internal(format!("cover thread: {e}"))))?
    .map_err(|e| {
        Fail::from(crate::AppError::Internal(format!(
            "cover of album {album}: {e}"
        )))
    })?;
    Ok(Reply::Raw(
        (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
            ],
            Body::from(jpeg),
        )
            .into_response(),
    ))
}
