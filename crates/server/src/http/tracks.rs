//! Tracks and their media: list, upload, details, audio, stems, zip, mix.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::dto::{
    JobDto, MixBody, MixRequest, ModelQuery, MultistemQuery, SeparateRequest, SortOrder, StemDto,
    StreamQuery, TrackDto, TrackPage, TrackQuery,
};
use super::error::{ApiError, ErrorBody};
use super::{check_model_param, AppPath, AppQuery, OptionalJson};
use crate::app::jobs::PRIORITY_INTERACTIVE;
use crate::app::library::{Download, TrackFilter};
use crate::app::listening::Listening;
use crate::app::{AppError, Jobs, Library};

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn track_dto(
    library: &Library,
    listening: &Listening,
    id: i64,
) -> ApiResult<TrackDto> {
    let track = library.track(id).await?;
    let stems = library.stems(id).await?;
    let used = listening.track_use(&[id]).await?;
    Ok(TrackDto::new(track, &stems).with_use(used.get(&id)))
}

/// List tracks, with paging and search.
#[utoipa::path(get, path = "/api/tracks", tag = "tracks", params(TrackQuery),
    responses((status = 200, body = TrackPage), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_tracks(
    State(library): State<Library>,
    State(listening): State<Listening>,
    AppQuery(q): AppQuery<TrackQuery>,
) -> ApiResult<Json<TrackPage>> {
    let (offset, limit) = super::page(q.offset, q.limit)?;
    let filter = TrackFilter {
        q: q.q,
        album: q.album,
        artist: q.artist,
        genre: q.genre,
        separated: q.separated.unwrap_or(false),
        sort: q.sort,
        descending: q.order == Some(SortOrder::Desc),
    };
    let (tracks, total) = library.list_tracks(&filter, offset, limit).await?;
    let ids: Vec<i64> = tracks.iter().map(|t| t.id).collect();
    let mut stems = library.stems_of(&ids).await?;
    let used = listening.track_use(&ids).await?;
    let items = tracks
        .into_iter()
        .map(|t| {
            let s = stems.remove(&t.id).unwrap_or_default();
            let u = used.get(&t.id);
            TrackDto::new(t, &s).with_use(u)
        })
        .collect();
    Ok(Json(TrackPage {
        items,
        total,
        offset,
        limit,
    }))
}

/// Upload a track (multipart field `file`). The type is sniffed from the content.
#[utoipa::path(post, path = "/api/tracks", tag = "tracks",
    request_body(content_type = "multipart/form-data", description = "field `file`: the audio file"),
    responses((status = 201, body = TrackDto), (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn upload_track(
    State(library): State<Library>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<TrackDto>)> {
    let mut multipart = multipart?;
    while let Some(field) = multipart.next_field().await? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(255)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty());
        let body = field.map_err(|e| ApiError::from(e).0);
        let track = library.upload(name, body).await?;
        return Ok((StatusCode::CREATED, Json(TrackDto::new(track, &[]))));
    }
    Err(AppError::BadRequest("the multipart field `file` is missing".into()).into())
}

/// One track with its analysis and stems.
#[utoipa::path(get, path = "/api/tracks/{id}", tag = "tracks",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, body = TrackDto), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_track(
    State(library): State<Library>,
    State(listening): State<Listening>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<TrackDto>> {
    Ok(Json(track_dto(&library, &listening, id).await?))
}

/// Delete an uploaded track with its stems (library tracks follow the folder).
#[utoipa::path(delete, path = "/api/tracks/{id}", tag = "tracks",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn delete_track(
    State(library): State<Library>,
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<StatusCode> {
    library.delete_track(id, &jobs).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn serve_file(path: PathBuf, mut req: Request) -> Response {
    let len = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
    normalize_range(req.headers_mut(), len);
    match ServeFile::new(path).oneshot(req).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(never) => match never {},
    }
}

/// Brings a `Range` header to what RFC 9110 says a server does with it before
/// the file server sees it: a range unit other than bytes, or several ranges,
/// are ignored (the whole file, 200); a suffix longer than the file means the
/// whole file (`bytes=-N` with N ≥ its length is `bytes=0-`).
fn normalize_range(headers: &mut axum::http::HeaderMap, len: Option<u64>) {
    let Some(value) = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(str::to_owned)
    else {
        return;
    };
    let Some(spec) = value
        .split_once('=')
        .filter(|(unit, _)| unit.trim().eq_ignore_ascii_case("bytes"))
        .map(|(_, spec)| spec.trim().to_owned())
    else {
        headers.remove(header::RANGE);
        return;
    };
    if spec.contains(',') {
        headers.remove(header::RANGE);
        return;
    }
    if let (Some(suffix), Some(len)) = (spec.strip_prefix('-'), len) {
        if suffix.parse::<u64>().is_ok_and(|n| n >= len && n > 0) {
            headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-"));
        }
    }
}

/// The original audio file (HTTP Range supported).
#[utoipa::path(get, path = "/api/tracks/{id}/audio", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, description = "the file", content_type = "audio/*"),
        (status = 206, description = "a range of it"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn track_audio(
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
    req: Request,
) -> ApiResult<Response> {
    let track = library.track(id).await?;
    let path = library.track_file(&track)?;
    Ok(serve_file(path, req).await)
}

/// The track at a glance, for a seek bar, from its analysis: per column
/// (at most 2000) the lowest and highest sample (×127), the short-term
/// loudness (LUFS), and the columns that clip. 404 until the analysis ran.
#[utoipa::path(get, path = "/api/tracks/{id}/overview", tag = "tracks",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, description = "`{seconds_per_column, seconds, min: [i8], max: [i8], clipped: [column], loudness: [LUFS|null]}`",
        content_type = "application/json"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn track_overview(
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Response> {
    let json = library.overview(id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            // The overview changes only with the file, and then its id stays:
            // a short private cache.
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        json,
    )
        .into_response())
}

/// The stems of a track.
#[utoipa::path(get, path = "/api/tracks/{id}/stems", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, body = [StemDto]), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_stems(
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<Vec<StemDto>>> {
    library.track(id).await?;
    let stems = library.stems(id).await?;
    Ok(Json(stems.iter().map(StemDto::from_file).collect()))
}

/// One stem file (HTTP Range supported).
#[utoipa::path(get, path = "/api/tracks/{id}/stems/{source}", tag = "media",
    params(("id" = i64, Path, description = "track id"),
        ("source" = String, Path, description = "vocals, drums, bass, other, guitar, piano"),
        ModelQuery),
    responses((status = 200, description = "FLAC", content_type = "audio/flac"),
        (status = 206, description = "a range of it"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_stem(
    State(library): State<Library>,
    AppPath((id, source)): AppPath<(i64, String)>,
    AppQuery(q): AppQuery<ModelQuery>,
    req: Request,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    let path = library.stem_file(id, q.model.as_deref(), &source).await?;
    Ok(serve_file(path, req).await)
}

/// The track (or, with `model`, all its stems) from `start_s`, resampled to
/// the player's `rate`, as a 32-bit float WAV that streams as fast as it is
/// read: what the Studio schedules sample by sample for gapless playback.
/// `X-Frames` says how many frames it holds when that is known.
#[utoipa::path(get, path = "/api/tracks/{id}/stream", tag = "media",
    params(("id" = i64, Path, description = "track id"), StreamQuery),
    responses((status = 200, description = "32-bit float WAV at `rate`: the track's channels, or each stem's left and right in source order. While the model's job runs here, its stems as they are made: the stream waits at the edge of the ready spans", content_type = "audio/wav"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not_ready: the job has only just started"),
        (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn stream_track(
    State(library): State<Library>,
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<StreamQuery>,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    let start_s = q.start_s.unwrap_or(0.0);
    let s = match (
        library
            .pcm_stream(id, q.model.as_deref(), q.rate, start_s)
            .await,
        q.model.as_deref(),
    ) {
        // No stems yet: the job running here streams them as it makes them.
        (Err(AppError::NotFound(missing)), Some(model)) => jobs
            .live_stream(id, model, q.rate, start_s)
            .await?
            .ok_or(AppError::NotFound(missing))?,
        (other, _) => other?,
    };
    let body = futures_util::stream::unfold(s.body, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let mut res = Response::new(Body::from_stream(body));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A hint only: some formats (MP3) know their length only roughly, so the
    // stream is read to its end and carries no Content-Length.
    if let Some(frames) = s.frames {
        h.insert("x-frames", HeaderValue::from(frames));
    }
    Ok(res)
}

/// Every stem in one multichannel file (HTTP Range supported): what the Studio
/// plays, so that all stems stream on one clock. With `start_s`/`duration_s`, a
/// window of it as 32-bit float WAV (what the Studio's channel check renders).
#[utoipa::path(get, path = "/api/tracks/{id}/multistem", tag = "media",
    params(("id" = i64, Path, description = "track id"), MultistemQuery),
    responses((status = 200, description = "8-channel 24-bit FLAC (four stems) or 12-channel 16-bit WAV (six); channels: each stem's left and right, in the model's source order. A window: 32-bit float WAV, same channels; while the model's job runs, any window inside its `ready` spans (the same samples the finished file will hold)"),
        (status = 206, description = "a range of it"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "not_ready: the window is still being separated; `ready` lists the final spans")),
    security(("token" = [])))]
pub(crate) async fn multistem(
    State(library): State<Library>,
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<MultistemQuery>,
    req: Request,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    library.track(id).await?;
    if q.start_s.is_some() || q.duration_s.is_some() {
        let (start_s, duration_s) = (q.start_s.unwrap_or(0.0), q.duration_s.unwrap_or(10.0));
        let window = match library
            .multistem_window(id, q.model.as_deref(), start_s, duration_s)
            .await
        {
            // No stems yet: a job running here may have published this part.
            Err(AppError::NotFound(missing)) => jobs
                .live_window(id, q.model.as_deref(), start_s, duration_s)
                .await?
                .ok_or(AppError::NotFound(missing))?,
            other => other?,
        };
        let len = window.metadata().map(|m| m.len()).ok();
        let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(window));
        let mut res = Response::new(Body::from_stream(stream));
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
        if let Some(len) = len {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        return Ok(res);
    }
    let path = library.multistem(id, q.model.as_deref()).await?;
    Ok(serve_file(path, req).await)
}

/// `Content-Disposition: attachment` naming the file `name`, reduced to
/// characters every client takes.
pub(crate) fn attachment(name: &str) -> HeaderValue {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " -_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A made-for-this-response file as a download.
fn attachment_response(d: Download, content_type: &'static str) -> Response {
    let len = d.file.metadata().map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(d.file));
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, attachment(&d.name));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    res
}

/// All stems of one model as a zip.
#[utoipa::path(get, path = "/api/tracks/{id}/stems.zip", tag = "media",
    params(("id" = i64, Path, description = "track id"), ModelQuery),
    responses((status = 200, description = "zip of the FLAC stems", content_type = "application/zip"),
        (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn stems_zip(
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<ModelQuery>,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    let zip = library.stems_zip(id, q.model.as_deref()).await?;
    Ok(attachment_response(zip, "application/zip"))
}

/// Render a mix of the stems (preset, gains, layout, tempo, transposition, a part
/// of the track, format) with the Stem Engine.
#[utoipa::path(post, path = "/api/tracks/{id}/mix", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    request_body = MixRequest,
    responses((status = 200, description = "the rendered file", content_type = "audio/flac"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn mix_track(
    State(library): State<Library>,
    AppPath(id): AppPath<i64>,
    OptionalJson(req): OptionalJson<MixBody>,
) -> ApiResult<Response> {
    check_model_param(req.model.as_deref())?;
    let MixBody {
        model,
        format,
        settings,
        span,
    } = req;
    let mix = library
        .render_mix(id, model.as_deref(), settings, span, format)
        .await?;
    let content_type = if format.extension() == "flac" {
        "audio/flac"
    } else {
        "audio/wav"
    };
    Ok(attachment_response(mix, content_type))
}

/// Queue a separation of the track (202 with the job; 200 with the existing job when
/// one is queued or running, or the stems already exist).
#[utoipa::path(post, path = "/api/tracks/{id}/separate", tag = "jobs",
    params(("id" = i64, Path, description = "track id")),
    request_body(content = Option<SeparateRequest>, description = "optional: the model, and where to start"),
    responses((status = 202, body = JobDto, description = "queued"),
        (status = 200, body = JobDto, description = "the existing job"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn separate_track(
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
    OptionalJson(req): OptionalJson<SeparateRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    check_model_param(req.model.as_deref())?;
    let (job, created) = jobs
        .enqueue_from(id, req.model.as_deref(), PRIORITY_INTERACTIVE, req.from_s)
        .await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(job.into())))
}
