//! Files: `stream` and `download` (the track's own file, with Range
//! requests; `stream` transcodes to Ogg Opus when asked), and `getCoverArt`
//! (the album's cover, scaled to `size`).

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
    let duration = track.duration_s.unwrap_or(0.0);
    if !attachment {
        if let Some(kbps) = transcode_to(params, &track, duration)? {
            let offset = params.number::<f64>("timeOffset")?.unwrap_or(0.0).max(0.0);
            // Each transcode holds a thread and a sandboxed decoder while it
            // plays: a few at a time, the rest are told to wait.
            let permit = TRANSCODES.try_acquire().map_err(|_| {
                Fail::new(
                    0,
                    "the station is transcoding as many streams as it can: try again soon, or ask for format=raw",
                )
            })?;
            return Ok(Reply::Raw(opus_stream(
                app, path, &track, kbps, offset, permit,
            )));
        }
    }
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
        let name = format!("{}.{ext}", track.title);
        res.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            crate::http::tracks::attachment(&name),
        );
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

/// Transcodes running at once, at most.
static TRANSCODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(6);

/// Opus' bitrate when a player asks for a format but no bitrate (kbps).
const DEFAULT_KBPS: u32 = 128;

/// The bitrate to transcode `stream` to, in kbps (6-510), or `None` to send
/// the file: `format=raw` never transcodes, `format=opus` (or `ogg`) always
/// does, and otherwise a `maxBitRate` below the file's own does (to Opus, the
/// one format made here).
fn transcode_to(
    params: &Params,
    track: &crate::app::library::Track,
    duration: f64,
) -> Result<Option<u32>, Fail> {
    let max = params
        .number::<u32>("maxBitRate")?
        .filter(|&k| k > 0)
        .map(|k| k.clamp(6, 510));
    let file_kbps = (duration > 0.0).then(|| track.file_size as f64 * 8.0 / duration / 1000.0);
    let below_file = max.filter(|&k| file_kbps.is_some_and(|f| f64::from(k) < f));
    Ok(match params.get("format") {
        Some("raw") => None,
        Some("opus" | "ogg" | "oga") => Some(max.unwrap_or(DEFAULT_KBPS)),
        // Another format (mp3, aac…) is not made here: the file itself plays
        // on more players than Opus would, unless it must be smaller.
        _ => below_file,
    })
}

/// Bytes handed to the response as the encoder makes them; a closed response
/// (the player went away) ends the encoding.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        // Sent in small pieces (a page is about a second of audio), so the
        // first second reaches the player at once even at low bitrates; not
        // every little write of the Ogg writer on its own.
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 4 << 10 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the player left"))
    }
}

/// The file decoded (in the sandbox), from `offset` seconds, and encoded as
/// Ogg Opus at `kbps` while it is sent.
fn opus_stream(
    app: &App,
    path: std::path::PathBuf,
    track: &crate::app::library::Track,
    kbps: u32,
    offset: f64,
    permit: tokio::sync::SemaphorePermit<'static>,
) -> axum::response::Response {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sandbox = app.library().sandbox().clone();
    let mut tags = vec![("TITLE".to_owned(), track.title.clone())];
    tags.extend(track.artist.clone().map(|a| ("ARTIST".to_owned(), a)));
    tags.extend(track.album.clone().map(|a| ("ALBUM".to_owned(), a)));
    let id = track.id;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let run = || -> Result<(), String> {
            let mut stream = sandbox.stream(&path).map_err(|e| e.to_string())?;
            let info = stream.info().clone();
            let out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::new(),
            };
            let mut w = sonantica_audio::OggOpusWriter::new(
                out,
                info.sample_rate,
                info.channels,
                kbps * 1000,
                &tags,
            )
            .map_err(|e| e.to_string())?;
            let mut skip = (offset * f64::from(info.sample_rate)).round() as usize;
            while let Some(block) = stream.next_block().map_err(|e| e.to_string())? {
                let n = block.first().map_or(0, Vec::len);
                if skip >= n {
                    skip -= n;
                    continue;
                }
                let planes: Vec<&[f32]> = block.iter().map(|c| &c[skip.min(c.len())..]).collect();
                skip = 0;
                w.write(&planes).map_err(|e| e.to_string())?;
            }
            let mut out = w.finish().map_err(|e| e.to_string())?;
            std::io::Write::flush(&mut out).map_err(|e| e.to_string())
        };
        if let Err(e) = run() {
            if tx.is_closed() {
                return; // the player stopped listening: nothing went wrong
            }
            // After the headers went out, a failure can only end the stream.
            tracing::warn!("subsonic: transcoding track {id}: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    (
        [
            (header::CONTENT_TYPE, "audio/ogg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
