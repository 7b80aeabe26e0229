//! Jobs (status, events, cancel), the library folder and the models.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;

use super::dto::{BatchQueued, JobDto, JobQuery, ModelDto, SeparateRequest};
use super::error::{ApiError, ErrorBody};
use super::{check_model_param, AppPath, AppQuery, OptionalJson};
use crate::app::library::ScanReport;
use crate::app::status::JobStatus;
use crate::app::{AppError, Jobs, Library};
use sonantica_pipeline::models::KNOWN;

type ApiResult<T> = Result<T, ApiError>;

/// Recent jobs, newest first.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = [JobDto])), security(("token" = [])))]
pub(crate) async fn list_jobs(
    State(jobs): State<Jobs>,
    AppQuery(q): AppQuery<JobQuery>,
) -> ApiResult<Json<Vec<JobDto>>> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(AppError::BadRequest)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::BadRequest("limit must be 1..=1000".into()).into());
    }
    let jobs = jobs.list_jobs(status, limit).await?;
    Ok(Json(jobs.into_iter().map(Into::into).collect()))
}

/// A job: status, progress 0-1, ETA, error.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobDto), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn get_job(
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<JobDto>> {
    Ok(Json(jobs.job(id).await?.into()))
}

/// Cancel a queued or running job.
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, body = JobDto, description = "cancelled"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "already finished")),
    security(("token" = [])))]
pub(crate) async fn cancel_job(
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Json<JobDto>> {
    Ok(Json(jobs.cancel_job(id).await?.into()))
}

/// A job's progress as Server-Sent Events: a `job` event (the job as JSON) at
/// once and on every change, ending after the job finishes.
#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs",
    params(("id" = i64, Path, description = "job id")),
    responses((status = 200, description = "text/event-stream of `job` events with JobDto data",
        content_type = "text/event-stream"), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn job_events(
    State(jobs): State<Jobs>,
    AppPath(id): AppPath<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    jobs.job(id).await?;
    let rx = jobs.job_events();
    struct St {
        jobs: Jobs,
        rx: tokio::sync::broadcast::Receiver<i64>,
        last: Option<JobDto>,
        done: bool,
    }
    let state = St {
        jobs,
        rx,
        last: None,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let job: JobDto = match st.jobs.job(id).await {
                Ok(j) => j.into(),
                Err(e) => {
                    // The job (or its track) was deleted.
                    st.done = true;
                    let ev = Event::default().event("error").data(e.to_string());
                    return Some((Ok(ev), st));
                }
            };
            if st.last.as_ref() != Some(&job) {
                let finished = job.status.is_finished();
                let ev = Event::default()
                    .event("job")
                    .json_data(&job)
                    .unwrap_or_else(|_| Event::default().event("job"));
                st.last = Some(job);
                st.done = finished;
                return Some((Ok(ev), st));
            }
            // Wait for a change to any job (or poll: events can be missed when
            // many jobs change at once, and progress also moves between them).
            let wait = tokio::time::timeout(Duration::from_millis(500), async {
                loop {
                    match st.rx.recv().await {
                        Ok(changed) if changed == id || changed < 0 => return,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                }
            });
            let _ = wait.await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Rescan the library folder for new, changed and removed files.
#[utoipa::path(post, path = "/api/library/scan", tag = "library",
    responses((status = 200, description = "what changed", body = Object),
        (status = 409, body = ErrorBody, description = "no library folder configured")),
    security(("token" = [])))]
pub(crate) async fn scan_library(
    State(library): State<Library>,
    State(jobs): State<Jobs>,
) -> ApiResult<Json<ScanReport>> {
    Ok(Json(library.scan_library(&jobs).await?))
}

/// Queue a separation of every track that has no stems from the model, at a lower
/// priority than separations asked for one track at a time.
#[utoipa::path(post, path = "/api/library/separate", tag = "library",
    request_body(content = Option<SeparateRequest>, description = "optional: the model"),
    responses((status = 202, body = BatchQueued), (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub(crate) async fn separate_library(
    State(jobs): State<Jobs>,
    OptionalJson(req): OptionalJson<SeparateRequest>,
) -> ApiResult<(StatusCode, Json<BatchQueued>)> {
    check_model_param(req.model.as_deref())?;
    if req.from_s.is_some() {
        return Err(AppError::BadRequest(
            "from_s is where one track's separation starts: send it to /api/tracks/{id}/separate"
                .into(),
        )
        .into());
    }
    let queued = jobs.enqueue_library(req.model.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(BatchQueued { queued })))
}

/// The separation models and whether they are installed.
#[utoipa::path(get, path = "/api/models", tag = "library",
    responses((status = 200, body = [ModelDto])), security(("token" = [])))]
pub(crate) async fn list_models(State(jobs): State<Jobs>) -> Json<Vec<ModelDto>> {
    let default = jobs.default_model_name();
    let mut out: Vec<ModelDto> = KNOWN
        .iter()
        .map(|k| ModelDto {
            name: k.name.into(),
            description: k.description.into(),
            installed: jobs.model_path(k.name).is_ok(),
            default: k.name == default,
        })
        .collect();
    if !KNOWN.iter().any(|k| k.name == default) {
        out.push(ModelDto {
            installed: jobs.model_path(&default).is_ok(),
            name: default,
            description: format!("model file {}", jobs.config().default_model),
            default: true,
        });
    }
    // Other bags in the model store (a fine-tuned or a test model) can be
    // chosen by name too.
    for name in sonantica_pipeline::models::store_bags(&jobs.config().models_dir) {
        if !out.iter().any(|m| m.name == name) {
            out.push(ModelDto {
                description: format!("{name}.yaml in the model store"),
                installed: jobs.model_path(&name).is_ok(),
                default: false,
                name,
            });
        }
    }
    Json(out)
}
