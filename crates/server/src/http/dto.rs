//! What the API sends and receives. Kept apart from the app's types so that the
//! database can change without changing the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sonantica_audio::OutputFormat;
use sonantica_mix::MixSettings;
use sonantica_pipeline::render::Span;
use utoipa::{IntoParams, ToSchema};

use crate::app::jobs::Job;
use crate::app::library::{StemFile, Track};
use crate::app::status::{AnalysisStatus, JobStatus, TrackOrigin};

/// A stem file of a track.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StemDto {
    /// Model that produced it.
    pub model: String,
    /// Source name: drums, bass, other, vocals (guitar, piano for six-stem models).
    pub source: String,
    /// Where to fetch it (supports HTTP Range).
    pub url: String,
}

impl StemDto {
    pub(crate) fn from_file(s: &StemFile) -> Self {
        StemDto {
            url: format!(
                "/api/tracks/{}/stems/{}?model={}",
                s.track_id, s.source, s.model
            ),
            model: s.model.clone(),
            source: s.source.clone(),
        }
    }
}

/// A track of the library.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrackDto {
    /// Id.
    pub id: i64,
    /// Title (tag, else file name).
    pub title: String,
    /// Artist tag.
    pub artist: Option<String>,
    /// Album tag.
    pub album: Option<String>,
    /// Its album (`/api/albums/{id}`), when it has an album tag.
    pub album_id: Option<i64>,
    /// Album artist tag.
    pub album_artist: Option<String>,
    /// Genre tag.
    pub genre: Option<String>,
    /// Year, from the date tag.
    pub year: Option<i64>,
    /// Disc number.
    pub disc_no: Option<i64>,
    /// Track number on its disc.
    pub track_no: Option<i64>,
    /// `upload` or `library`.
    pub origin: TrackOrigin,
    /// The uploaded file's name.
    pub original_name: Option<String>,
    /// Path inside the library folder (library tracks only).
    pub library_path: Option<String>,
    /// Codec (`flac`, `pcm_s16le`, `mp3`, `vorbis`, `aac`, `alac`, ...).
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: i64,
    /// Channels.
    pub channels: i64,
    /// Speaker layout (`mono`, `stereo`, `5.1`, ...).
    pub layout: String,
    /// Bits per sample (PCM-like codecs).
    pub bits_per_sample: Option<i64>,
    /// Duration in seconds.
    pub duration_s: Option<f64>,
    /// File size in bytes.
    pub file_size: i64,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// `pending`, `done` or `failed`.
    pub analysis_status: AnalysisStatus,
    /// The Inspector report (loudness, true peak, DR, crest, clipping, stereo image).
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<serde_json::Value>,
    /// Why the analysis failed.
    pub analysis_error: Option<String>,
    /// True when stems exist.
    pub is_separated: bool,
    /// The stems, by model.
    pub stems: Vec<StemDto>,
    /// Where the original audio is served (supports HTTP Range).
    pub audio_url: String,
    /// When it was added, ms since the Unix epoch.
    pub created_at: i64,
    /// Times a player reported playing it (Subsonic scrobbles).
    #[serde(default)]
    pub plays: i64,
    /// The last such play, ms since the epoch.
    #[serde(default)]
    pub last_played_at: Option<i64>,
    /// When a player starred it.
    #[serde(default)]
    pub starred_at: Option<i64>,
}

impl TrackDto {
    /// With its plays and star.
    pub(crate) fn with_use(mut self, used: Option<&crate::app::listening::TrackUse>) -> Self {
        if let Some(u) = used {
            self.plays = u.plays;
            self.last_played_at = u.last_played;
            self.starred_at = u.starred;
        }
        self
    }

    pub(crate) fn new(t: Track, stems: &[StemFile]) -> Self {
        TrackDto {
            audio_url: format!("/api/tracks/{}/audio", t.id),
            id: t.id,
            title: t.title,
            artist: t.artist,
            album: t.album,
            album_id: t.album_id,
            album_artist: t.album_artist,
            genre: t.genre,
            year: t.year,
            disc_no: t.disc_no,
            track_no: t.track_no,
            library_path: (t.origin == TrackOrigin::Library).then(|| t.path.clone()),
            origin: t.origin,
            original_name: t.original_name,
            codec: t.codec,
            sample_rate: t.sample_rate,
            channels: t.channels,
            layout: t.layout,
            bits_per_sample: t.bits_per_sample,
            duration_s: t.duration_s,
            file_size: t.file_size,
            tags: serde_json::from_str(&t.tags).unwrap_or_default(),
            analysis_status: t.analysis_status,
            analysis: t.analysis.and_then(|a| serde_json::from_str(&a).ok()),
            analysis_error: t.analysis_error,
            is_separated: !stems.is_empty(),
            stems: stems.iter().map(StemDto::from_file).collect(),
            created_at: t.created_at,
            plays: 0,
            last_played_at: None,
            starred_at: None,
        }
    }
}

/// A page of tracks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrackPage {
    /// The tracks.
    pub items: Vec<TrackDto>,
    /// Tracks matching in all.
    pub total: i64,
    /// Offset of the first item.
    pub offset: i64,
    /// Page size asked for.
    pub limit: i64,
}

/// Paging and search of `GET /api/tracks`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    /// Words to find, each as the start of a word, in any order, in the title,
    /// artist, album artist, album, genre or file name.
    pub q: Option<String>,
    /// Only this album's tracks.
    pub album: Option<i64>,
    /// Only this artist's tracks (album artist or track artist).
    pub artist: Option<String>,
    /// Only this genre's tracks.
    pub genre: Option<String>,
    /// Only tracks with stems.
    pub separated: Option<bool>,
    /// `relevance` (the default for a search), `artist` (the default: artist,
    /// album, disc, track), `title`, `album`, `added`, `duration` or `year`.
    #[param(value_type = Option<String>)]
    pub sort: Option<crate::app::library::TrackSort>,
    /// `asc` (default) or `desc`.
    pub order: Option<SortOrder>,
    /// First item (default 0).
    pub offset: Option<i64>,
    /// Items per page (default 50, at most 500).
    pub limit: Option<i64>,
}

/// A direction of sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// An album.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlbumDto {
    /// Id (never reused).
    pub id: i64,
    /// Title.
    pub title: String,
    /// The album artist, else the one artist of all its tracks; none for
    /// various artists.
    pub artist: Option<String>,
    /// Year.
    pub year: Option<i64>,
    /// Genre.
    pub genre: Option<String>,
    /// Number of tracks.
    pub tracks: i64,
    /// Number of discs.
    pub discs: i64,
    /// Total length in seconds.
    pub duration_s: f64,
    /// When it first appeared, ms since the Unix epoch.
    pub created_at: i64,
    /// Its cover (JPEG; 404 when the files carry none).
    pub cover_url: String,
}

impl From<crate::app::catalog::Album> for AlbumDto {
    fn from(a: crate::app::catalog::Album) -> Self {
        AlbumDto {
            id: a.id,
            title: a.title,
            artist: a.shown_artist,
            year: a.year,
            genre: a.genre,
            tracks: a.tracks,
            discs: a.discs,
            duration_s: a.duration_s,
            created_at: a.created_at,
            cover_url: format!("/api/albums/{}/cover", a.id),
        }
    }
}

/// A page of albums.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlbumPage {
    /// The albums, by artist, year and title.
    pub items: Vec<AlbumDto>,
    /// Albums in all.
    pub total: i64,
    /// Offset of the first item.
    pub offset: i64,
    /// Page size asked for.
    pub limit: i64,
}

/// An album with its tracks in play order (disc, then track number).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlbumDetail {
    /// The album.
    #[serde(flatten)]
    pub album: AlbumDto,
    /// Its tracks.
    pub items: Vec<TrackDto>,
}

/// An artist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ArtistDto {
    /// Name, as tagged.
    pub name: String,
    /// Albums.
    pub albums: i64,
    /// Tracks.
    pub tracks: i64,
}

/// Paging of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// First item (default 0).
    pub offset: Option<i64>,
    /// Items per page (default 50, at most 500).
    pub limit: Option<i64>,
}

/// A separation job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobDto {
    /// Id.
    pub id: i64,
    /// Track being separated.
    pub track_id: i64,
    /// Model.
    pub model: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub status: JobStatus,
    /// Fraction done, 0..1.
    pub progress: f64,
    /// Estimated seconds left while running.
    pub eta_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The worker running (or that ran) it.
    pub worker: Option<String>,
    /// Times a worker took it (more than 1 after a worker died).
    pub attempts: i64,
    /// Priority (interactive 10, library batch 0).
    pub priority: i64,
    /// Queued at, ms since the Unix epoch.
    pub created_at: i64,
    /// Started at.
    pub started_at: Option<i64>,
    /// Finished at.
    pub finished_at: Option<i64>,
    /// Server-Sent Events of this job's progress.
    pub events_url: String,
    /// Where the listener asked the separation to start, in seconds.
    #[serde(default)]
    pub from_s: Option<f64>,
    /// The spans of the track whose stems are final, `[[start_s, end_s], ...]`,
    /// merged: they grow while the job runs (a window inside them can be
    /// fetched from `GET /api/tracks/{id}/multistem` already); the whole
    /// track when it is done; empty before.
    #[serde(default)]
    pub ready: Vec<[f64; 2]>,
    /// How many stems the job makes (each stem's left and right are the
    /// channels of its multistem stream), once a running job has decoded the
    /// track.
    #[serde(default)]
    pub stems: Option<usize>,
    /// Where its worker computes it: `CPU`, `GPU: <adapter>` (name, kind,
    /// backend), or `CPU (the GPU failed: <why>)` after a fallback; absent
    /// until a worker reported.
    #[serde(default)]
    pub device: Option<String>,
}

impl From<Job> for JobDto {
    fn from(j: Job) -> Self {
        JobDto {
            events_url: format!("/api/jobs/{}/events", j.id),
            id: j.id,
            track_id: j.track_id,
            model: j.model,
            status: j.status,
            progress: j.progress,
            eta_s: j.eta_s,
            error: j.error,
            worker: j.worker,
            attempts: j.attempts,
            priority: j.priority,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            from_s: j.from_s,
            ready: j.ready,
            stems: j.stems,
            device: j.device,
        }
    }
}

/// Body of `POST /api/tracks/{id}/separate` and `POST /api/library/separate`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SeparateRequest {
    /// Model name (default: the server's `--model`).
    pub model: Option<String>,
    /// One track only: separate from this second first (where the listener
    /// is), then the rest; its stems are served as they are made (the job's
    /// `ready`). A queued job for the track moves its start here.
    pub from_s: Option<f64>,
}

/// Body of `POST /api/library/separate`'s answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchQueued {
    /// Jobs queued.
    pub queued: usize,
}

/// Status filter of `GET /api/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs with this status.
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Model choice for stem downloads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// Model whose stems to use (default: the default model's, else the first).
    pub model: Option<String>,
}

/// What to stream to a player that schedules samples itself.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The player's sample rate (8000-192000): the stream is resampled to it.
    pub rate: u32,
    /// Where to start, in seconds (default 0).
    pub start_s: Option<f64>,
    /// Stream all stems of this model (two channels each, in source order)
    /// instead of the track itself.
    pub model: Option<String>,
}

/// Model choice and an optional window for the multistem file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MultistemQuery {
    /// Model whose stems to use (default: the default model's, else the first).
    pub model: Option<String>,
    /// Start of a window, in seconds (default 0). With `start_s` or `duration_s`
    /// the answer is that window as 32-bit float WAV instead of the whole file.
    pub start_s: Option<f64>,
    /// Length of the window in seconds (default 10, at most 60).
    pub duration_s: Option<f64>,
}

/// Body of `POST /api/tracks/{id}/mix`: the model, the file format, and the
/// mix itself as `sonantica_mix::MixSettings` (the same JSON the Studio hands
/// its worklet). Documentation only: the handler reads the body as a
/// [`MixBody`], which refuses unknown fields.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct MixRequest {
    /// Model whose stems to mix.
    pub model: Option<String>,
    /// Preset the mix starts from: original, karaoke, acappella, musician,
    /// bass-practice, drum-practice.
    pub preset: Option<String>,
    /// Gain per stem in dB, replacing the preset's for that stem, e.g.
    /// `{"drums": 5, "vocals": null}` (null: off).
    #[serde(default)]
    pub gains: BTreeMap<String, Option<f32>>,
    /// Muted stems.
    #[serde(default)]
    pub mute: Vec<String>,
    /// Soloed stems.
    #[serde(default)]
    pub solo: Vec<String>,
    /// Output layout: mono, stereo (default), 2.1, 5.1, 7.1.
    pub layout: Option<String>,
    /// `flac` (default) or `wav`.
    pub format: Option<String>,
    /// `16`, `24` (default) or `32f` (WAV only).
    pub bit_depth: Option<String>,
    /// LFE crossover in Hz (default 80).
    pub crossover_hz: Option<f32>,
    /// Share of vocals kept in the front pair for 5.1/7.1 (default 0.2).
    pub vocal_front_share: Option<f32>,
    /// Linear gain of "other" kept in the front pair (default 0.707).
    pub ambience_front: Option<f32>,
    /// Level of the surrounds (default 1).
    pub surround_level: Option<f32>,
    /// Delay of the left surround in ms (default 15).
    pub surround_delay_ms: Option<f32>,
    /// LFE level (default 1).
    pub lfe_gain: Option<f32>,
    /// High-pass the mains at the crossover (default false).
    pub mains_highpass: Option<bool>,
    /// Tempo, 0.5 to 1.5 (default 1), without changing the pitch.
    pub tempo: Option<f64>,
    /// Transposition in semitones, -12 to +12 (default 0; a fraction is cents).
    pub transpose: Option<f64>,
    /// Render from this time of the track, in seconds (default 0).
    pub start_s: Option<f64>,
    /// Render up to this time of the track, in seconds (default: its end).
    pub end_s: Option<f64>,
}

/// `POST /api/tracks/{id}/mix` as the handler reads it.
#[derive(Debug, Clone)]
pub struct MixBody {
    /// Model whose stems to mix.
    pub model: Option<String>,
    /// File format.
    pub format: OutputFormat,
    /// The mix.
    pub settings: MixSettings,
    /// The part of the track to render.
    pub span: Span,
}

impl Default for MixBody {
    fn default() -> Self {
        Self {
            model: None,
            format: OutputFormat::Flac24,
            settings: MixSettings::default(),
            span: Span::WHOLE,
        }
    }
}

impl<'de> Deserialize<'de> for MixBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut text = |key: &str| -> Result<Option<String>, D::Error> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(D::Error::custom(format!(
                    "{key}: expected a string, got {other}"
                ))),
            }
        };
        let model = text("model")?;
        let format = match (
            text("format")?.as_deref().unwrap_or("flac"),
            text("bit_depth")?.as_deref().unwrap_or("24"),
        ) {
            ("flac", "16") => OutputFormat::Flac16,
            ("flac", "24") => OutputFormat::Flac24,
            ("wav", "16") => OutputFormat::Wav16,
            ("wav", "24") => OutputFormat::Wav24,
            ("wav", "32f") => OutputFormat::WavF32,
            ("flac", "32f") => {
                return Err(D::Error::custom(
                    "FLAC cannot hold 32-bit float samples; ask for format wav",
                ))
            }
            (f, b) => {
                return Err(D::Error::custom(format!(
                    "format {f:?} / bit_depth {b:?}: use flac or wav, and 16, 24 or 32f"
                )))
            }
        };
        let mut seconds = |key: &str| -> Result<Option<f64>, D::Error> {
            match map.remove(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
                Some(other) => Err(D::Error::custom(format!(
                    "{key}: expected a number of seconds, got {other}"
                ))),
            }
        };
        let span = Span {
            start_s: seconds("start_s")?.unwrap_or(0.0),
            end_s: seconds("end_s")?,
        };
        span.check().map_err(D::Error::custom)?;
        let settings =
            MixSettings::deserialize(serde_json::Value::Object(map)).map_err(D::Error::custom)?;
        Ok(MixBody {
            model,
            format,
            settings,
            span,
        })
    }
}

/// Body of `POST /api/login`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The access token.
    pub token: String,
}

/// Answer of `GET /api/health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Server version.
    pub version: String,
    /// Where separation runs: a GPU's name, the CPU, or remote workers.
    pub device: String,
}

/// A model and whether it can be used.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelDto {
    /// Name to pass as `model`.
    pub name: String,
    /// What it is.
    pub description: String,
    /// True when its files are in the model store (or it is the configured file).
    pub installed: bool,
    /// True for the server's default.
    pub default: bool,
}

/// A playlist made in a Subsonic player.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlaylistDto {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Comment.
    pub comment: Option<String>,
    /// Entries.
    pub tracks: i64,
    /// Their total length in seconds.
    pub duration_s: f64,
    /// Last changed, ms since the epoch.
    pub changed_at: i64,
    /// The album of its first track (for a cover).
    pub cover_album_id: Option<i64>,
}

impl From<crate::app::listening::Playlist> for PlaylistDto {
    fn from(p: crate::app::listening::Playlist) -> Self {
        PlaylistDto {
            id: p.id,
            name: p.name,
            comment: p.comment,
            tracks: p.entries,
            duration_s: p.duration_s,
            changed_at: p.changed_at,
            cover_album_id: p.first_album,
        }
    }
}

/// A playlist with its tracks in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PlaylistDetail {
    /// The playlist.
    #[serde(flatten)]
    pub playlist: PlaylistDto,
    /// Its tracks (a track may appear twice).
    pub items: Vec<TrackDto>,
}
