//! Errors as HTTP responses: every [`AppError`] maps to a status in one `match`,
//! and the body is always JSON `{error, detail}`.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sonantica_audio::AudioError;
use sonantica_pipeline::PipelineError;

use crate::app::AppError;

/// A stable machine-readable error code: what a client branches on (never the
/// text of the detail).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 404.
    NotFound,
    /// 400: the request is wrong.
    BadRequest,
    /// 415: not audio the station can decode.
    UnsupportedMedia,
    /// 413.
    TooLarge,
    /// 409: conflicts with the current state.
    Conflict,
    /// 409: a worker's stems are not (or no longer) on the station: upload them
    /// again, then complete.
    StemsMissing,
    /// 422: a worker's stems do not fit the job; nothing was kept.
    BadStems,
    /// 401.
    Unauthorized,
    /// 429: wait before logging in again.
    TooManyAttempts,
    /// 403: a cross-site request with the session cookie.
    Forbidden,
    /// 422: the model is not installed.
    ModelUnavailable,
    /// 422: the audio is broken.
    BadAudio,
    /// 500: the separation model failed.
    ModelError,
    /// 400: the Stem Engine refused its settings.
    BadMix,
    /// 500: the Inspector failed.
    MeterError,
    /// 507: the disk is full.
    DiskFull,
    /// 500: a file operation failed.
    IoError,
    /// 500.
    DatabaseError,
    /// 503: Redis cannot be reached.
    QueueUnavailable,
    /// 409: the work was cancelled.
    Cancelled,
    /// 409: those stems are still being separated (the body's `ready` says
    /// which spans are final).
    NotReady,
    /// 500.
    Internal,
}

/// The body of every error response.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code (`not_found`, `bad_request`, ...).
    pub error: ErrorCode,
    /// What went wrong and, where there is one, what to do about it.
    pub detail: String,
    /// With `not_ready`: the spans of the track whose stems are final,
    /// `[[start_s, end_s], ...]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Vec<[f64; 2]>>,
}

/// An [`AppError`] on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

/// The status and code of an error.
pub fn classify(e: &AppError) -> (StatusCode, ErrorCode) {
    use ErrorCode as C;
    match e {
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, C::NotFound),
        AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, C::BadRequest),
        AppError::UnsupportedMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, C::UnsupportedMedia),
        AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, C::TooLarge),
        AppError::Conflict(_) => (StatusCode::CONFLICT, C::Conflict),
        AppError::StemsMissing(_) => (StatusCode::CONFLICT, C::StemsMissing),
        AppError::NotReady { .. } => (StatusCode::CONFLICT, C::NotReady),
        AppError::BadStems(_) => (StatusCode::UNPROCESSABLE_ENTITY, C::BadStems),
        AppError::Unauthorized => (StatusCode::UNAUTHORIZED, C::Unauthorized),
        AppError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, C::TooManyAttempts),
        AppError::Forbidden(_) => (StatusCode::FORBIDDEN, C::Forbidden),
        AppError::ModelUnavailable(_) => (StatusCode::UNPROCESSABLE_ENTITY, C::ModelUnavailable),
        AppError::Pipeline(p) => match p {
            PipelineError::Audio(AudioError::Io { source, .. }) => io_status(source),
            PipelineError::Audio(AudioError::InvalidArgument(_)) => {
                (StatusCode::BAD_REQUEST, C::BadRequest)
            }
            PipelineError::Audio(_) => (StatusCode::UNPROCESSABLE_ENTITY, C::BadAudio),
            PipelineError::Unreadable { .. } => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, C::UnsupportedMedia)
            }
            PipelineError::Model(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::ModelError),
            PipelineError::Mix(_) => (StatusCode::BAD_REQUEST, C::BadMix),
            PipelineError::Meter(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::MeterError),
            PipelineError::BadInput(_) => (StatusCode::BAD_REQUEST, C::BadRequest),
            PipelineError::ModelUnavailable(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, C::ModelUnavailable)
            }
            PipelineError::Io { source, .. } => io_status(source),
            PipelineError::Cancelled => (StatusCode::CONFLICT, C::Cancelled),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, C::Internal),
        },
        AppError::Io { source, .. } => io_status(source),
        AppError::Database(_) | AppError::Migrate(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, C::DatabaseError)
        }
        AppError::Queue(_) => (StatusCode::SERVICE_UNAVAILABLE, C::QueueUnavailable),
        AppError::Cancelled => (StatusCode::CONFLICT, C::Cancelled),
        AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::Internal),
    }
}

fn io_status(e: &std::io::Error) -> (StatusCode, ErrorCode) {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge => {
            (StatusCode::INSUFFICIENT_STORAGE, ErrorCode::DiskFull)
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::IoError),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = classify(&self.0);
        if status.is_server_error() {
            tracing::error!("{}", self.0);
        }
        let body = Json(ErrorBody {
            error: code,
            detail: self.0.to_string(),
            ready: match &self.0 {
                AppError::NotReady { ready, .. } => Some(ready.clone()),
                _ => None,
            },
        });
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else if let AppError::TooManyAttempts(wait) = self.0 {
            (status, [(header::RETRY_AFTER, wait.to_string())], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(e: MultipartRejection) -> Self {
        ApiError(AppError::BadRequest(e.body_text()))
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(AppError::TooLarge(
                "the upload is larger than the server accepts (--max-upload-mb)".into(),
            ))
        } else {
            ApiError(AppError::BadRequest(format!(
                "malformed upload: {}",
                e.body_text()
            )))
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(AppError::TooLarge("the request body is too large".into()))
        } else {
            ApiError(AppError::BadRequest(e.body_text()))
        }
    }
}
