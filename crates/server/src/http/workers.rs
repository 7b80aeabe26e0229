//! The API of remote `sonantica worker` processes (with `--queue redis://…`):
//! claim, progress, stem uploads, complete, fail, release. Every call names the
//! worker; the server checks that it holds the job.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::dto::JobDto;
use super::error::{ApiError, ErrorBody};
use super::{AppJson, AppPath, AppQuery};
use crate::app::remote::Claim;
use crate::app::{AppError, Workers};

type ApiResult<T> = Result<T, ApiError>;

/// Names the calling worker.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkerRequest {
    /// The worker's name (unique per process, e.g. `host:pid`).
    pub worker: String,
}

/// What a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClaimOutcome {
    /// The job is this worker's now: work on it.
    Claimed,
    /// Nothing to do (done, failed or cancelled): acknowledge the message.
    Finished,
    /// Another live worker holds it: leave the message.
    Busy,
}

/// The answer to a claim.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimReply {
    /// What the claim found.
    pub outcome: ClaimOutcome,
    /// The job.
    pub job: JobDto,
    /// Where to fetch the track's audio.
    pub audio_url: String,
}

/// A progress report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProgressRequest {
    /// The worker's name.
    pub worker: String,
    /// Fraction done, 0..1.
    pub progress: f64,
    /// Estimated seconds left.
    pub eta_s: Option<f64>,
    /// Where the worker computes the job (`CPU`, `GPU: <adapter>`, or
    /// `CPU (the GPU failed: <why>)`), one line of at most 200 characters;
    /// shown in the job. Older workers leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Whether to go on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProgressReply {
    /// False when the job was cancelled or taken over: stop and acknowledge.
    #[serde(rename = "continue")]
    pub go_on: bool,
}

/// The stems uploaded, to store as the job's result.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CompleteRequest {
    /// The worker's name.
    pub worker: String,
    /// The sources uploaded with `PUT …/stems/{source}`.
    pub sources: Vec<String>,
}

/// Why a job failed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FailRequest {
    /// The worker's name.
    pub worker: String,
    /// What went wrong.
    pub error: String,
}

/// The worker named in a query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkerQuery {
    /// The worker's name.
    pub worker: String,
}

/// Claim a job delivered by the queue.
#[utoipa::path(post, path = "/api/worker/jobs/{id}/claim", tag = "workers",
    params(("id" = i64, Path, description = "job id")), request_body = WorkerRequest,
    responses((status = 200, body = ClaimReply), (status = 404, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn claim(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<WorkerRequest>,
) -> ApiResult<Json<ClaimReply>> {
    let (outcome, job) = match workers.claim(id, &req.worker).await? {
        Claim::Claimed(j) => (ClaimOutcome::Claimed, j),
        Claim::Finished(j) => (ClaimOutcome::Finished, j),
        Claim::Busy(j) => (ClaimOutcome::Busy, j),
    };
    Ok(Json(ClaimReply {
        outcome,
        audio_url: format!("/api/worker/jobs/{id}/audio?{}", worker_query(&req.worker)),
        job: job.into(),
    }))
}

/// The query that names a worker (`worker=NAME`), percent-encoded: names may
/// hold `#`, `:` and `@`, and a bare `#` would end the URL.
pub fn worker_query(name: &str) -> String {
    let escaped: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("worker={escaped}")
}

/// The audio of a job's track, for the worker that holds the job (HTTP Range
/// supported).
#[utoipa::path(get, path = "/api/worker/jobs/{id}/audio", tag = "workers",
    params(("id" = i64, Path, description = "job id"), WorkerQuery),
    responses((status = 200, description = "the track's file", content_type = "audio/*"),
        (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn audio(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<WorkerQuery>,
    req: Request,
) -> ApiResult<Response> {
    let path = workers.audio_file(id, &q.worker).await?;
    Ok(super::tracks::serve_file(path, req).await)
}

/// Report progress; renews the worker's hold on the job.
#[utoipa::path(post, path = "/api/worker/jobs/{id}/progress", tag = "workers",
    params(("id" = i64, Path, description = "job id")), request_body = ProgressRequest,
    responses((status = 200, body = ProgressReply), (status = 404, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn progress(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<ProgressRequest>,
) -> ApiResult<Json<ProgressReply>> {
    let go_on = workers
        .progress(
            id,
            &req.worker,
            req.progress,
            req.eta_s,
            req.device.as_deref(),
        )
        .await?;
    Ok(Json(ProgressReply { go_on }))
}

/// Upload one stem (24-bit FLAC as the body).
#[utoipa::path(put, path = "/api/worker/jobs/{id}/stems/{source}", tag = "workers",
    params(("id" = i64, Path, description = "job id"), ("source" = String, Path, description = "source name"), WorkerQuery),
    request_body(content_type = "audio/flac", description = "the stem"),
    responses((status = 204, description = "stored"), (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn put_stem(
    State(workers): State<Workers>,
    AppPath((id, source)): AppPath<(i64, String)>,
    AppQuery(q): AppQuery<WorkerQuery>,
    req: Request,
) -> ApiResult<StatusCode> {
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(|e| AppError::BadRequest(format!("stem upload: {e}")));
    workers.put_stem(id, &q.worker, &source, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a part of a job's stems goes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartQuery {
    /// The worker's name.
    pub worker: String,
    /// The part's first frame.
    pub at: usize,
    /// The stems' length in frames.
    pub frames: usize,
    /// How many stems the part holds.
    pub stems: usize,
}

/// The answer to a part.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartReply {
    /// A second of the track a listener sought to whose stems are not made
    /// yet: make them next. `null`: carry on.
    pub wanted_s: Option<f64>,
}

/// The largest part the station takes (a segment of six stems at 48 kHz is
/// about 18 MB; workers send at most [`PART_MAX_BYTES`] / 4 at a time).
pub const PART_MAX_BYTES: usize = 64 << 20;

/// Send one part of the stems as they are made (live stems): the station
/// serves it at once, until the job completes with its stems.
#[utoipa::path(put, path = "/api/worker/jobs/{id}/parts", tag = "workers",
    params(("id" = i64, Path, description = "job id"), PartQuery),
    request_body(content_type = "application/octet-stream",
        description = "little-endian f32 frames, each stem's left and right in source order"),
    responses((status = 200, body = PartReply), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn put_part(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppQuery(q): AppQuery<PartQuery>,
    req: Request,
) -> ApiResult<Json<PartReply>> {
    let body = axum::body::to_bytes(req.into_body(), PART_MAX_BYTES)
        .await
        .map_err(|e| {
            AppError::TooLarge(format!(
                "a part is at most {PART_MAX_BYTES} bytes ({e}): send smaller parts"
            ))
        })?;
    let wanted_s = workers
        .put_part(id, &q.worker, q.at, q.frames, q.stems, body)
        .await?;
    Ok(Json(PartReply { wanted_s }))
}

/// Store the uploaded stems as the job's result (idempotent).
#[utoipa::path(post, path = "/api/worker/jobs/{id}/complete", tag = "workers",
    params(("id" = i64, Path, description = "job id")), request_body = CompleteRequest,
    responses((status = 200, body = JobDto), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn complete(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<CompleteRequest>,
) -> ApiResult<Json<JobDto>> {
    Ok(Json(
        workers
            .complete(id, &req.worker, &req.sources)
            .await?
            .into(),
    ))
}

/// Record that the job failed.
#[utoipa::path(post, path = "/api/worker/jobs/{id}/fail", tag = "workers",
    params(("id" = i64, Path, description = "job id")), request_body = FailRequest,
    responses((status = 204), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn fail(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<FailRequest>,
) -> ApiResult<StatusCode> {
    let error: String = req.error.chars().take(4000).collect();
    workers.fail(id, &req.worker, &error).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hand the job back to the queue (the worker is shutting down).
#[utoipa::path(post, path = "/api/worker/jobs/{id}/release", tag = "workers",
    params(("id" = i64, Path, description = "job id")), request_body = WorkerRequest,
    responses((status = 204), (status = 409, body = ErrorBody)),
    security(("worker_token" = [])))]
pub(crate) async fn release(
    State(workers): State<Workers>,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<WorkerRequest>,
) -> ApiResult<StatusCode> {
    workers.release(id, &req.worker).await?;
    Ok(StatusCode::NO_CONTENT)
}
