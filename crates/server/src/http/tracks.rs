//! Tracks and their media: list, upload, details, audio, stems, zip, mix.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sonantica_mix::Source;
use tokio::io::AsyncWriteExt;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::dto::{
    JobDto, MixBody, MixRequest, ModelQuery, MultistemQuery, SeparateRequest, StemDto, TrackDto,
    TrackPage, TrackQuery,
};
use super::error::{ApiError, ErrorBody};
use super::{check_model_param, AppPath, AppQuery, OptionalJson};
use crate::app::jobs::PRIORITY_INTERACTIVE;
use crate::app::{App, AppError};
use sonantica_pipeline::render::{check_complete, render_mix};

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn track_dto(app: &App, id: i64) -> ApiResult<TrackDto> {
    let track = app.track(id).await?;
    let stems = app.stems(id).await?;
    Ok(TrackDto::new(track, &stems))
}

/// List tracks, with paging and search.
#[utoipa::path(get, path = "/api/tracks", tag = "tracks", params(TrackQuery),
    responses((status = 200, body = TrackPage), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_tracks(
    State(app): State<App>,
    AppQuery(q): AppQuery<TrackQuery>,
) -> ApiResult<Json<TrackPage>> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50);
    if offset < 0 || !(1..=500).contains(&limit) {
        return Err(AppError::BadRequest("offset must be ≥ 0 and limit 1..=500".into()).into());
    }
    let (tracks, total) = app.list_tracks(q.q.as_deref(), offset, limit).await?;
    let ids: Vec<i64> = tracks.iter().map(|t| t.id).collect();
    let mut stems = app.stems_of(&ids).await?;
    let items = tracks
        .into_iter()
        .map(|t| {
            let s = stems.remove(&t.id).unwrap_or_default();
            TrackDto::new(t, &s)
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
    State(app): State<App>,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<TrackDto>)> {
    let mut multipart = multipart?;
    let max = app.config().max_upload_bytes;
    while let Some(mut field) = multipart.next_field().await? {
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
        let tmp_dir = app.media().tmp();
        // Removed when dropped: an upload that fails leaves nothing behind.
        let staged = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&tmp_dir)
            .map_err(|e| AppError::io(&tmp_dir, e))?;
        let io = |e| AppError::io(staged.path(), e);
        let mut file = tokio::fs::File::from_std(staged.reopen().map_err(io)?);
        let mut received = 0u64;
        while let Some(chunk) = field.chunk().await? {
            received += chunk.len() as u64;
            if received > max {
                return Err(AppError::TooLarge(format!(
                    "the upload is larger than {} MB (--max-upload-mb)",
                    max / (1 << 20)
                ))
                .into());
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        if received == 0 {
            return Err(AppError::UnsupportedMedia(format!(
                "{}: the file is empty",
                name.as_deref().unwrap_or("upload")
            ))
            .into());
        }
        let track = app.add_upload(staged, name).await?;
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
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<TrackDto>> {
    Ok(Json(track_dto(&app, id).await?))
}

/// Delete an uploaded track with its stems (library tracks follow the folder).
#[utoipa::path(delete, path = "/api/tracks/{id}", tag = "tracks",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn delete_track(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<StatusCode> {
    app.delete_track(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn serve_file(path: PathBuf, req: Request) -> Response {
    match ServeFile::new(path).oneshot(req).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(never) => match never {},
    }
}

/// The original audio file (HTTP Range supported).
#[utoipa::path(get, path = "/api/tracks/{id}/audio", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, description = "the file", content_type = "audio/*"),
        (status = 206, description = "a range of it"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn track_audio(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
    req: Request,
) -> ApiResult<Response> {
    let track = app.track(id).await?;
    let path = app.track_file(&track)?;
    Ok(serve_file(path, req).await)
}

/// The stems of a track.
#[utoipa::path(get, path = "/api/tracks/{id}/stems", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    responses((status = 200, body = [StemDto]), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn list_stems(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<Vec<StemDto>>> {
    app.track(id).await?;
    let stems = app.stems(id).await?;
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
    State(app): State<App>,
    AppPath((id, source)): AppPath<(i64, String)>,
    AppQuery(q): AppQuery<ModelQuery>,
    req: Request,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    app.track(id).await?;
    let (model, stems) = app.model_stems(id, q.model.as_deref()).await?;
    // The source is matched against the stored stems, never joined onto a path.
    let stem = stems.iter().find(|s| s.source == source).ok_or_else(|| {
        AppError::NotFound(format!(
            "track {id} has no stem {source:?} from {model} (it has {})",
            stems
                .iter()
                .map(|s| s.source.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let path = app.media_file(&stem.path)?;
    Ok(serve_file(path, req).await)
}

/// Every stem in one multichannel file (HTTP Range supported): what the Studio
/// plays, so that all stems stream on one clock. With `start_s`/`duration_s`, a
/// window of it as 32-bit float WAV (what the Studio's channel check renders).
#[utoipa::path(get, path = "/api/tracks/{id}/multistem", tag = "media",
    params(("id" = i64, Path, description = "track id"), MultistemQuery),
    responses((status = 200, description = "8-channel 24-bit FLAC (four stems) or 12-channel 16-bit WAV (six); channels: each stem's left and right, in the model's source order. A window: 32-bit float WAV, same channels"),
        (status = 206, description = "a range of it"), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn multistem(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<MultistemQuery>,
    req: Request,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    app.track(id).await?;
    if q.start_s.is_some() || q.duration_s.is_some() {
        let bytes = app
            .multistem_window(
                id,
                q.model.as_deref(),
                q.start_s.unwrap_or(0.0),
                q.duration_s.unwrap_or(10.0),
            )
            .await?;
        let mut res = Response::new(Body::from(bytes));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
        return Ok(res);
    }
    let path = app.multistem(id, q.model.as_deref()).await?;
    Ok(serve_file(path, req).await)
}

fn attachment(name: &str) -> HeaderValue {
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

fn stream_file(file: std::fs::File, content_type: &'static str, name: &str) -> ApiResult<Response> {
    let len = file.metadata().map(|m| m.len()).ok();
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut res = Response::new(Body::from_stream(stream));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_DISPOSITION, attachment(name));
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(res)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("a worker thread failed: {e}")))?
}

/// All stems of one model as a zip.
#[utoipa::path(get, path = "/api/tracks/{id}/stems.zip", tag = "media",
    params(("id" = i64, Path, description = "track id"), ModelQuery),
    responses((status = 200, description = "zip of the FLAC stems", content_type = "application/zip"),
        (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn stems_zip(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<ModelQuery>,
) -> ApiResult<Response> {
    check_model_param(q.model.as_deref())?;
    let track = app.track(id).await?;
    let (model, stems) = app.model_stems(id, q.model.as_deref()).await?;
    let files: Vec<(String, PathBuf)> = stems
        .iter()
        .map(|s| {
            let ext = s.path.rsplit('.').next().unwrap_or("flac").to_owned();
            Ok((format!("{}.{ext}", s.source), app.media_file(&s.path)?))
        })
        .collect::<Result<_, AppError>>()?;
    let tmp = app.media().tmp();
    let file = blocking(move || {
        use std::io::Write;
        // An unnamed temporary file: gone when the response is sent (or dropped).
        let out = tempfile::tempfile_in(&tmp).map_err(|e| AppError::io(&tmp, e))?;
        let mut zip = zip::ZipWriter::new(out);
        // FLAC is already compressed: store it.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        let zerr = |e: zip::result::ZipError| AppError::Internal(format!("writing the zip: {e}"));
        for (name, path) in &files {
            zip.start_file(name.as_str(), options).map_err(zerr)?;
            let mut f = std::fs::File::open(path).map_err(|e| AppError::io(path, e))?;
            std::io::copy(&mut f, &mut zip).map_err(|e| AppError::io(path, e))?;
        }
        let mut out = zip.finish().map_err(zerr)?;
        out.flush().map_err(|e| AppError::io(&tmp, e))?;
        out.seek(SeekFrom::Start(0))
            .map_err(|e| AppError::io(&tmp, e))?;
        Ok(out)
    })
    .await?;
    stream_file(
        file,
        "application/zip",
        &format!("{} - stems ({model}).zip", track.title),
    )
}

fn parse_source(name: &str) -> Result<Source, AppError> {
    name.parse::<Source>()
        .map_err(|e| AppError::BadRequest(e.to_string()))
}

/// Render a mix of the stems (preset, gains, layout, format) with the Stem Engine.
#[utoipa::path(post, path = "/api/tracks/{id}/mix", tag = "media",
    params(("id" = i64, Path, description = "track id")),
    request_body = MixRequest,
    responses((status = 200, description = "the rendered file", content_type = "audio/flac"),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn mix_track(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
    OptionalJson(req): OptionalJson<MixBody>,
) -> ApiResult<Response> {
    check_model_param(req.model.as_deref())?;
    let MixBody {
        model,
        format,
        settings,
    } = req;
    let track = app.track(id).await?;
    let (_, stems) = app.model_stems(id, model.as_deref()).await?;
    let mut files = Vec::new();
    for s in &stems {
        files.push((parse_source(&s.source)?, app.media_file(&s.path)?));
    }
    check_complete(&files.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        .map_err(|m| AppError::Conflict(format!("track {id}: {m}")))?;
    let ext = format.extension();
    let label = settings.preset.map_or("mix", |p| p.id);
    let layout = settings.layout;
    let tmp = app.media().tmp();
    let out_path = tmp.join(format!(
        ".mix-{}.{ext}",
        crate::app::auth::generate_token().get(..16).unwrap_or("x")
    ));
    let shutdown = app.shutdown_token();
    let file = blocking(move || {
        let result = render_mix(
            &files,
            &out_path,
            &settings,
            format,
            &mut |_, _| {},
            &|| shutdown.is_cancelled(),
        );
        let opened = result
            .map_err(AppError::from)
            .and_then(|_| std::fs::File::open(&out_path).map_err(|e| AppError::io(&out_path, e)));
        // The open handle keeps the data; the name goes now.
        let _ = std::fs::remove_file(&out_path);
        opened
    })
    .await?;
    stream_file(
        file,
        if ext == "flac" {
            "audio/flac"
        } else {
            "audio/wav"
        },
        &format!("{} ({label}, {layout}).{ext}", track.title),
    )
}

/// Queue a separation of the track (202 with the job; 200 with the existing job when
/// one is queued or running, or the stems already exist).
#[utoipa::path(post, path = "/api/tracks/{id}/separate", tag = "jobs",
    params(("id" = i64, Path, description = "track id")),
    request_body(content = Option<SeparateRequest>, description = "optional: the model"),
    responses((status = 202, body = JobDto, description = "queued"),
        (status = 200, body = JobDto, description = "the existing job"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn separate_track(
    State(app): State<App>,
    AppPath(id): AppPath<i64>,
    OptionalJson(req): OptionalJson<SeparateRequest>,
) -> ApiResult<(StatusCode, Json<JobDto>)> {
    check_model_param(req.model.as_deref())?;
    let (job, created) = app
        .enqueue(id, req.model.as_deref(), PRIORITY_INTERACTIVE)
        .await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(job.into())))
}
