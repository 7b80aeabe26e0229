//! The library: tracks added by upload or found in the library folder, their
//! audio properties, tags and Inspector analysis (computed in the background),
//! and the stems separation produced for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use sonantica_audio::{AudioError, AudioInfo, Decoder};

use super::catalog::{match_query, Catalog};
use super::media::is_plain_relative;
use super::status::{AnalysisStatus, TrackOrigin};
use super::{now_ms, AppError, AppResult, Jobs, MediaDir};
use sonantica_pipeline::sandbox::Isolation;
use sonantica_pipeline::{PipelineError, PipelineResult};

/// A track as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Track {
    /// Id.
    pub id: i64,
    /// Uploaded or found in the library folder.
    pub origin: TrackOrigin,
    /// `uploads/…` under the media folder, or relative to the library folder.
    pub path: String,
    /// File size in bytes when it was read.
    pub file_size: i64,
    /// File modification time (ms since the epoch) when it was read.
    pub file_mtime: i64,
    /// The uploaded file's name, as the client sent it (never used as a path).
    pub original_name: Option<String>,
    /// Title: the title tag, else the file name.
    pub title: String,
    /// Artist tag.
    pub artist: Option<String>,
    /// Album tag.
    pub album: Option<String>,
    /// Codec short name.
    pub codec: String,
    /// Sample rate in Hz.
    pub sample_rate: i64,
    /// Channels.
    pub channels: i64,
    /// Speaker layout name.
    pub layout: String,
    /// Bits per sample of PCM-like codecs.
    pub bits_per_sample: Option<i64>,
    /// Duration in seconds (declared, or measured by the analysis).
    pub duration_s: Option<f64>,
    /// Tags as a JSON object.
    pub tags: String,
    /// Whether the analysis is there.
    pub analysis_status: AnalysisStatus,
    /// The Inspector report as JSON, once done.
    pub analysis: Option<String>,
    /// Why the analysis failed.
    pub analysis_error: Option<String>,
    /// When the track was added (ms since the epoch).
    pub created_at: i64,
    /// Its album (see [`super::catalog`]).
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
}

/// One stored stem file.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StemFile {
    /// Track.
    pub track_id: i64,
    /// Model name.
    pub model: String,
    /// Source name (`vocals`, `drums`, ...).
    pub source: String,
    /// Relative to the media folder.
    pub path: String,
}

/// Which tracks a listing shows, and in what order.
#[derive(Debug, Clone, Default)]
pub struct TrackFilter {
    /// Words to find (see [`match_query`]).
    pub q: Option<String>,
    /// Only this album's tracks.
    pub album: Option<i64>,
    /// Only this artist's (album artist or track artist, any case).
    pub artist: Option<String>,
    /// Only this genre's.
    pub genre: Option<String>,
    /// Only tracks with stems.
    pub separated: bool,
    /// The order (default: relevance for a search, else artist, album, disc
    /// and track).
    pub sort: Option<TrackSort>,
    /// Reversed.
    pub descending: bool,
}

/// Orders of a track listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrackSort {
    /// Best match first (searches).
    Relevance,
    /// Artist, album, disc, track.
    Artist,
    /// Title.
    Title,
    /// Album, disc, track.
    Album,
    /// When added.
    Added,
    /// Length.
    Duration,
    /// Year.
    Year,
}

/// What a library scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScanReport {
    /// New tracks.
    pub added: usize,
    /// Tracks whose file changed (re-read, re-analysed, stems dropped).
    pub changed: usize,
    /// Tracks whose file disappeared.
    pub removed: usize,
    /// Tracks as they were.
    pub unchanged: usize,
    /// Files that look like audio but could not be read, with the reason.
    pub failed: Vec<(String, String)>,
}

/// File extensions a scan considers.
const AUDIO_EXTENSIONS: &[&str] = &[
    "flac", "wav", "wave", "mp3", "ogg", "oga", "m4a", "mp4", "aac", "aif", "aiff", "caf",
];

/// The longest window `GET /api/tracks/{id}/multistem?duration_s=` cuts, in seconds.
pub const MULTISTEM_WINDOW_MAX_S: f64 = 60.0;

/// The audio formats named in error messages.
pub const SUPPORTED: &str = "FLAC, WAV, MP3, Ogg Vorbis, AAC/M4A, ALAC, AIFF";

pub(crate) const TRACK_COLUMNS: &str =
    "id, origin, path, file_size, file_mtime, original_name, title, \
    artist, album, codec, sample_rate, channels, layout, bits_per_sample, duration_s, tags, \
    analysis_status, analysis, analysis_error, created_at, album_id, album_artist, genre, year, \
    disc_no, track_no";

/// The container, from the first bytes of a file that symphonia has accepted:
/// the extension an upload is stored under (and so its Content-Type).
fn sniff_extension(path: &Path) -> &'static str {
    use std::io::Read;
    let mut head = [0u8; 12];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"fLaC") {
        "flac"
    } else if head.starts_with(b"RIFF") || head.starts_with(b"RF64") {
        "wav"
    } else if head.starts_with(b"OggS") {
        "ogg"
    } else if head.starts_with(b"FORM") {
        "aiff"
    } else if head.starts_with(b"caff") {
        "caf"
    } else if head.len() >= 8 && &head[4..8] == b"ftyp" {
        "m4a"
    } else if head.starts_with(b"ID3") || head.first() == Some(&0xFF) {
        "mp3"
    } else {
        "audio"
    }
}

/// Reads a file's headers through `sandbox`; anything that is not decodable
/// audio becomes [`AppError::UnsupportedMedia`] naming `shown` (the upload's name
/// or the path in the library folder), never the file's path on this machine.
fn probe(sandbox: &Isolation, path: &Path, shown: &str) -> AppResult<AudioInfo> {
    readable(sandbox.probe(path), path, shown)
}

/// A sandbox's verdict on a file as the library reports it.
fn readable<T>(result: PipelineResult<T>, path: &Path, shown: &str) -> AppResult<T> {
    match result {
        Ok(v) => Ok(v),
        Err(PipelineError::Audio(AudioError::Io { source, .. })) => {
            Err(AppError::io(shown, source))
        }
        Err(PipelineError::Audio(AudioError::Empty { .. })) => Err(AppError::UnsupportedMedia(
            format!("{shown}: the file is empty"),
        )),
        Err(PipelineError::Audio(AudioError::Unsupported { detail, .. })) => {
            Err(AppError::UnsupportedMedia(format!(
                "{shown}: not audio in a supported format ({SUPPORTED}): {detail}"
            )))
        }
        Err(PipelineError::Unreadable { why, .. }) => Err(AppError::UnsupportedMedia(format!(
            "{shown}: cannot be read safely: {why}"
        ))),
        Err(PipelineError::Audio(e)) => Err(AppError::UnsupportedMedia(format!(
            "{shown}: cannot be decoded: {}",
            without_path(&e.to_string(), path)
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A message with the file's path taken out (error details never show where
/// the station keeps its files).
fn without_path(message: &str, path: &Path) -> String {
    let p = path.display().to_string();
    message
        .strip_prefix(&format!("{p}: "))
        .unwrap_or(message)
        .replace(&p, "the file")
}

fn tags_json(info: &AudioInfo) -> String {
    let map: serde_json::Map<String, serde_json::Value> = info
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn file_stamp(meta: &std::fs::Metadata) -> (i64, i64) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    (meta.len() as i64, mtime)
}

/// Properties of a probed file, ready for the tracks table.
struct Probed {
    info: AudioInfo,
    size: i64,
    mtime: i64,
    title: String,
}

impl Probed {
    fn read(
        sandbox: &Isolation,
        path: &Path,
        shown: &str,
        fallback_title: &str,
    ) -> AppResult<Probed> {
        let meta = std::fs::metadata(path).map_err(|e| AppError::io(path, e))?;
        let info = probe(sandbox, path, shown)?;
        let (size, mtime) = file_stamp(&meta);
        let title = info
            .tag("title")
            .map(str::to_owned)
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| fallback_title.to_owned());
        Ok(Probed {
            info,
            size,
            mtime,
            title,
        })
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl Probed {
    /// Binds the `file_size` .. `tags` columns, in table order: the same for a new
    /// track and a changed one.
    fn bind<'q>(&'q self, query: SqliteQuery<'q>) -> SqliteQuery<'q> {
        query
            .bind(self.size)
            .bind(self.mtime)
            .bind(&self.title)
            .bind(self.info.tag("artist"))
            .bind(self.info.tag("album"))
            .bind(&self.info.codec)
            .bind(i64::from(self.info.sample_rate))
            .bind(self.info.channels as i64)
            .bind(self.info.layout.to_string())
            .bind(self.info.bits_per_sample.map(i64::from))
            .bind(self.info.duration_s())
            .bind(tags_json(&self.info))
    }
}

/// The file name without its extension, for a title.
fn name_stem(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => base.to_owned(),
    }
}

/// What the library is built from (see [`super::App::open`]).
pub(crate) struct LibrarySetup {
    pub(crate) db: SqlitePool,
    pub(crate) media: MediaDir,
    /// The read-only library folder, canonical.
    pub(crate) root: Option<PathBuf>,
    /// The default model's name: whose stems a player gets when it names none.
    pub(crate) default_model: String,
    pub(crate) max_upload_bytes: u64,
    /// Where untrusted files are read first.
    pub(crate) sandbox: Isolation,
    pub(crate) shutdown: CancellationToken,
}

impl LibrarySetup {
    fn catalog(&self) -> Catalog {
        Catalog::new(self.db.clone(), self.media.clone())
    }
}

pub(crate) struct LibraryInner {
    db: SqlitePool,
    media: MediaDir,
    library_root: Option<PathBuf>,
    default_model: String,
    max_upload_bytes: u64,
    sandbox: Isolation,
    /// Albums: every added or changed track joins its album.
    catalog: Catalog,
    /// Wakes the analysis task when a track is added.
    analysis_queued: Notify,
    /// Serialises library scans.
    scanning: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

/// The library: tracks (uploads and the library folder), their analysis, their
/// stems, and what is made from the stems (multistem files, zips, renders).
/// Cheap to clone.
#[derive(Clone)]
pub struct Library {
    inner: Arc<LibraryInner>,
}

impl Library {
    pub(crate) fn new(s: LibrarySetup) -> Self {
        Self {
            inner: Arc::new(LibraryInner {
                catalog: s.catalog(),
                db: s.db,
                media: s.media,
                library_root: s.root,
                default_model: s.default_model,
                max_upload_bytes: s.max_upload_bytes,
                sandbox: s.sandbox,
                analysis_queued: Notify::new(),
                scanning: tokio::sync::Mutex::new(()),
                shutdown: s.shutdown,
            }),
        }
    }

    /// The media folder.
    pub fn media(&self) -> &MediaDir {
        &self.inner.media
    }

    /// Where untrusted files are read.
    pub(crate) fn sandbox(&self) -> &Isolation {
        &self.inner.sandbox
    }

    /// The albums and artists.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// Whether a library folder is configured.
    pub fn has_folder(&self) -> bool {
        self.inner.library_root.is_some()
    }

    /// Removes what an interrupted run can leave in `media/`: half-received
    /// uploads, unfinished stem folders and renders, and upload files no track
    /// refers to.
    pub(crate) async fn tidy_media(&self) -> AppResult<()> {
        let known: Vec<(String,)> = sqlx::query_as("SELECT path FROM tracks WHERE origin = ?")
            .bind(TrackOrigin::Upload)
            .fetch_all(&self.inner.db)
            .await?;
        let known: std::collections::HashSet<String> = known.into_iter().map(|(p,)| p).collect();
        self.inner.media.tidy(|rel| known.contains(rel))
    }

    /// Receives an upload's bytes (at most the configured size) into `media/tmp/`
    /// and adds it as [`Self::add_upload`] does. Nothing is left behind when the
    /// body fails, is too large, empty or not audio.
    pub async fn upload<S, B, E>(&self, original_name: Option<String>, body: S) -> AppResult<Track>
    where
        S: futures_util::Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        AppError: From<E>,
    {
        let max = self.inner.max_upload_bytes;
        let (staged, received) = self
            .inner
            .media
            .receive(".upload-", body, max, || {
                format!(
                    "the upload is larger than {} MB (--max-upload-mb)",
                    max / (1 << 20)
                )
            })
            .await?;
        if received == 0 {
            return Err(AppError::UnsupportedMedia(format!(
                "{}: the file is empty",
                original_name.as_deref().unwrap_or("upload")
            )));
        }
        self.add_upload(staged, original_name).await
    }
}

/// What a scan of the library folder found: every audio file's path (relative
/// to `root`), and the files that are new or changed since `known` (path → id,
/// size, mtime), each probed through `sandbox`.
type Walk = (
    std::collections::HashSet<String>,
    Vec<(String, Option<i64>, Result<Probed, String>)>,
);

/// Walks the library folder (blocking): the scan's first phase.
fn walk_library(
    root: &Path,
    known: &HashMap<String, (i64, i64, i64)>,
    sandbox: &Isolation,
) -> Walk {
    let mut found = std::collections::HashSet::new();
    let mut changes: Vec<(String, Option<i64>, Result<Probed, String>)> = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                // An unreadable folder or file: reported, never a path outside.
                let rel = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map_or_else(|| "?".to_owned(), |p| p.display().to_string());
                let why = e
                    .io_error()
                    .map_or_else(|| e.to_string(), |io| io.to_string());
                changes.push((rel, None, Err(why)));
                continue;
            }
        };
        // A link to a file counts as that file (music kept on another disk
        // and linked in); links to folders are not followed (no loops), and a
        // linked file is probed in the sandbox like any other.
        let linked = entry.path_is_symlink();
        let meta = if linked {
            std::fs::metadata(entry.path()).ok()
        } else {
            entry.metadata().ok()
        };
        if !meta.as_ref().is_some_and(std::fs::Metadata::is_file) {
            continue;
        }
        let path = entry.path();
        let is_audio = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_audio {
            continue;
        }
        let Some(rel) = path
            .strip_prefix(root)
            .ok()
            .and_then(|r| r.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        found.insert(rel.clone());
        let stamp = meta.as_ref().map(file_stamp);
        let previous = known.get(&rel);
        if let (Some((_, size, mtime)), Some(stamp)) = (previous, stamp) {
            if (*size, *mtime) == stamp {
                continue;
            }
        }
        let probed = Probed::read(sandbox, path, &rel, &name_stem(&rel)).map_err(|e| e.to_string());
        changes.push((rel, previous.map(|p| p.0), probed));
    }
    (found, changes)
}

impl Library {
    async fn insert_track(
        &self,
        origin: TrackOrigin,
        path: &str,
        original_name: Option<&str>,
        p: &Probed,
    ) -> AppResult<Track> {
        let query = sqlx::query(
            "INSERT INTO tracks (id, origin, path, original_name, created_at, file_size,
                file_mtime, title, artist, album, codec, sample_rate, channels, layout,
                bits_per_sample, duration_s, tags)
             VALUES (
                MAX(COALESCE((SELECT MAX(id) FROM tracks), 0),
                    COALESCE((SELECT id FROM id_high_water WHERE tbl = 'tracks'), 0)) + 1,
                ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(origin)
        .bind(path)
        .bind(original_name)
        .bind(now_ms());
        let id = p
            .bind(query)
            .execute(&self.inner.db)
            .await?
            .last_insert_rowid();
        self.inner.analysis_queued.notify_one();
        self.track(id).await
    }

    /// Adds an uploaded file (already received into `staged`, a temporary file in
    /// the media folder): checks from its content that it is audio we decode, moves
    /// it into `media/uploads/` and records the track. On any failure the staged
    /// file is removed and nothing is recorded.
    pub async fn add_upload(
        &self,
        staged: tempfile::NamedTempFile,
        original_name: Option<String>,
    ) -> AppResult<Track> {
        let shown = original_name.clone().unwrap_or_else(|| "upload".into());
        let title = name_stem(&shown);
        let media = self.inner.media.clone();
        let sandbox = self.inner.sandbox.clone();
        let (probed, rel, dest) = tokio::task::spawn_blocking(move || -> AppResult<_> {
            let probed = Probed::read(&sandbox, staged.path(), &shown, &title)?;
            let ext = sniff_extension(staged.path());
            let (name, dest) = media.new_upload(ext);
            staged
                .persist(&dest)
                .map_err(|e| AppError::io(&dest, e.error))?;
            Ok((probed, MediaDir::upload_rel(&name), dest))
        })
        .await
        .map_err(|e| AppError::Internal(format!("upload check failed: {e}")))??;
        match self
            .insert_track(TrackOrigin::Upload, &rel, original_name.as_deref(), &probed)
            .await
        {
            // A scan catalogues once at its end; an upload right away.
            Ok(t) => {
                self.inner.catalog.catalogue_pending().await?;
                self.track(t.id).await
            }
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                Err(e)
            }
        }
    }

    /// One track.
    pub async fn track(&self, id: i64) -> AppResult<Track> {
        sqlx::query_as(&format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.inner.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no track with id {id}")))
    }

    /// A page of the tracks `filter` selects, in its order; with the number of
    /// tracks it selects in all.
    pub async fn list_tracks(
        &self,
        filter: &TrackFilter,
        offset: i64,
        limit: i64,
    ) -> AppResult<(Vec<Track>, i64)> {
        let search = filter.q.as_deref().and_then(match_query);
        if filter.q.as_deref().is_some_and(|q| !q.trim().is_empty()) && search.is_none() {
            // Only punctuation: nothing can match.
            return Ok((Vec::new(), 0));
        }
        // Matches and their rank first (FTS5's bm25: a word in the title counts
        // most, in the file name least); every other part is fixed text.
        let hits = if search.is_some() {
            "WITH hits AS (SELECT rowid AS id, bm25(tracks_fts, 10.0, 6.0, 4.0, 4.0, 2.0, 1.0) AS rank
                           FROM tracks_fts WHERE tracks_fts MATCH ?1)
             SELECT {cols} FROM tracks JOIN hits USING (id)"
        } else {
            "SELECT {cols} FROM tracks WHERE ?1 IS NULL"
        };
        let filters = " AND (?2 IS NULL OR album_id = ?2)
             AND (?3 IS NULL OR COALESCE(album_artist, artist) = ?3 COLLATE NOCASE
                  OR artist = ?3 COLLATE NOCASE)
             AND (?4 IS NULL OR genre = ?4 COLLATE NOCASE)
             AND (?5 = 0 OR EXISTS (SELECT 1 FROM stems s WHERE s.track_id = tracks.id))";
        let base = |cols: &str| {
            let from = hits.replace("{cols}", cols);
            if search.is_some() {
                format!("{from} WHERE 1 {filters}")
            } else {
                format!("{from} {filters}")
            }
        };
        let sort = filter.sort.unwrap_or(if search.is_some() {
            TrackSort::Relevance
        } else {
            TrackSort::Artist
        });
        let dir = if filter.descending { "DESC" } else { "ASC" };
        let order = match sort {
            TrackSort::Relevance if search.is_some() => format!("rank {dir}, id"),
            TrackSort::Relevance | TrackSort::Artist => format!(
                "COALESCE(album_artist, artist) IS NULL, COALESCE(album_artist, artist) COLLATE NOCASE {dir},
                 album COLLATE NOCASE {dir}, COALESCE(disc_no, 1) {dir}, track_no IS NULL,
                 track_no {dir}, title COLLATE NOCASE {dir}, id"
            ),
            TrackSort::Title => format!("title COLLATE NOCASE {dir}, id"),
            TrackSort::Album => format!(
                "album IS NULL, album COLLATE NOCASE {dir}, COALESCE(disc_no, 1) {dir},
                 track_no IS NULL, track_no {dir}, title COLLATE NOCASE, id"
            ),
            TrackSort::Added => format!("created_at {dir}, id {dir}"),
            TrackSort::Duration => format!("duration_s IS NULL, duration_s {dir}, id"),
            TrackSort::Year => format!("year IS NULL, year {dir}, album COLLATE NOCASE, id"),
        };
        fn bind<'q>(
            sql: &'q str,
            search: &Option<String>,
            filter: &TrackFilter,
        ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
            sqlx::query(sql)
                .bind(search.clone())
                .bind(filter.album)
                .bind(filter.artist.clone())
                .bind(filter.genre.clone())
                .bind(filter.separated)
        }
        let count_sql = base("COUNT(*)");
        let total: i64 = sqlx::Row::try_get(
            &bind(&count_sql, &search, filter)
                .fetch_one(&self.inner.db)
                .await?,
            0,
        )?;
        let list_sql = format!(
            "{} ORDER BY {order} LIMIT ?6 OFFSET ?7",
            base(TRACK_COLUMNS)
        );
        let rows = bind(&list_sql, &search, filter)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.inner.db)
            .await?;
        let tracks = rows
            .iter()
            .map(<Track as sqlx::FromRow<sqlx::sqlite::SqliteRow>>::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((tracks, total))
    }

    /// A track's overview (JSON, see `sonantica_meter::Overview`), once its
    /// analysis has made one.
    pub async fn overview(&self, id: i64) -> AppResult<String> {
        let row: Option<(Option<String>, AnalysisStatus)> =
            sqlx::query_as("SELECT overview, analysis_status FROM tracks WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.inner.db)
                .await?;
        match row {
            None => Err(AppError::NotFound(format!("no track with id {id}"))),
            Some((Some(o), _)) => Ok(o),
            Some((None, AnalysisStatus::Failed)) => Err(AppError::NotFound(format!(
                "track {id} has no overview: its analysis failed"
            ))),
            Some((None, _)) => Err(AppError::NotFound(format!(
                "track {id} has no overview yet: its analysis is still to run"
            ))),
        }
    }

    /// The audio file of a track, checked to lie inside the media or library folder.
    pub fn track_file(&self, track: &Track) -> AppResult<PathBuf> {
        let rel = Path::new(&track.path);
        let path = match track.origin {
            TrackOrigin::Upload => self.inner.media.resolve(&track.path)?,
            TrackOrigin::Library => {
                let root = self.inner.library_root.as_ref().ok_or_else(|| {
                    AppError::NotFound(format!(
                        "track {} is in a library folder that is not configured now",
                        track.id
                    ))
                })?;
                if !is_plain_relative(rel) {
                    return Err(AppError::Internal(format!(
                        "track {} has an invalid stored path",
                        track.id
                    )));
                }
                root.join(rel)
            }
        };
        if !path.is_file() {
            return Err(AppError::NotFound(format!(
                "the file of track {} is missing ({})",
                track.id, track.path
            )));
        }
        Ok(path)
    }

    /// The file of one stem. The source is matched against the stored stems,
    /// never joined onto a path.
    pub async fn stem_file(
        &self,
        id: i64,
        model: Option<&str>,
        source: &str,
    ) -> AppResult<PathBuf> {
        self.track(id).await?;
        let (model, stems) = self.model_stems(id, model).await?;
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
        self.media_file(&stem.path)
    }

    /// A media-relative stored path made absolute, checked to stay inside `media/`.
    pub(crate) fn media_file(&self, rel: &str) -> AppResult<PathBuf> {
        self.inner.media.resolve(rel)
    }

    /// The stems of a track, by model then source.
    pub async fn stems(&self, track_id: i64) -> AppResult<Vec<StemFile>> {
        Ok(sqlx::query_as(
            "SELECT track_id, model, source, path FROM stems WHERE track_id = ?
             ORDER BY model, rowid",
        )
        .bind(track_id)
        .fetch_all(&self.inner.db)
        .await?)
    }

    /// The stems of several tracks at once (for a page of the library).
    pub async fn stems_of(&self, track_ids: &[i64]) -> AppResult<HashMap<i64, Vec<StemFile>>> {
        let mut out: HashMap<i64, Vec<StemFile>> = HashMap::new();
        if track_ids.is_empty() {
            return Ok(out);
        }
        // The ids are integers from the database, so they can be inlined safely.
        let list = track_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let rows: Vec<StemFile> = sqlx::query_as(&format!(
            "SELECT track_id, model, source, path FROM stems WHERE track_id IN ({list})
             ORDER BY track_id, model, rowid"
        ))
        .fetch_all(&self.inner.db)
        .await?;
        for r in rows {
            out.entry(r.track_id).or_default().push(r);
        }
        Ok(out)
    }

    /// The stems of one model (the default model's when it has stems, else the
    /// first model that has); `NotFound` when the track is not separated.
    pub async fn model_stems(
        &self,
        track_id: i64,
        model: Option<&str>,
    ) -> AppResult<(String, Vec<StemFile>)> {
        let all = self.stems(track_id).await?;
        let chosen = match model {
            Some(m) => m.to_owned(),
            None => {
                let default = self.inner.default_model.clone();
                if all.iter().any(|s| s.model == default) {
                    default
                } else {
                    all.first()
                        .map(|s| s.model.clone())
                        .ok_or_else(|| {
                            AppError::NotFound(format!(
                                "track {track_id} has no stems yet: POST /api/tracks/{track_id}/separate"
                            ))
                        })?
                }
            }
        };
        let stems: Vec<StemFile> = all.into_iter().filter(|s| s.model == chosen).collect();
        if stems.is_empty() {
            return Err(AppError::NotFound(format!(
                "track {track_id} has no stems from model {chosen}"
            )));
        }
        Ok((chosen, stems))
    }

    /// Every stem of one model in one multichannel file, for players that need all
    /// stems on one clock: 8-channel 24-bit FLAC for four stereo stems, 12-channel
    /// 16-bit WAV for six (FLAC holds at most 8 channels); channels are the stems'
    /// left and right in the model's source order. Built on first request and kept
    /// next to the stems (dropped when they are replaced).
    pub async fn multistem(&self, track_id: i64, model: Option<&str>) -> AppResult<PathBuf> {
        let (model, stems) = self.model_stems(track_id, model).await?;
        let files: Vec<PathBuf> = stems
            .iter()
            .map(|s| self.media_file(&s.path))
            .collect::<AppResult<_>>()?;
        let ext = multistem_format(files.len()).1;
        let out = self.inner.media.multistem(track_id, &model, ext);
        if out.is_file() {
            return Ok(out);
        }
        tokio::task::spawn_blocking(move || -> AppResult<PathBuf> {
            write_multistem(&files, &out)?;
            Ok(out)
        })
        .await
        .map_err(|e| AppError::Internal(format!("building the multistem file failed: {e}")))?
    }

    /// A window of [`Self::multistem`] as a 32-bit float WAV file: `duration_s`
    /// seconds (at most [`MULTISTEM_WINDOW_MAX_S`]) from `start_s`, shorter at the
    /// end of the track. What the Studio renders offline (its channel check), so a
    /// browser never has to decode a whole track's stems for a few seconds of them.
    /// The window is written to an unnamed temporary file and streamed from
    /// there, so that concurrent windows cost disk, not memory.
    pub async fn multistem_window(
        &self,
        track_id: i64,
        model: Option<&str>,
        start_s: f64,
        duration_s: f64,
    ) -> AppResult<std::fs::File> {
        if !(start_s.is_finite() && start_s >= 0.0) {
            return Err(AppError::BadRequest(format!(
                "start_s must be a number of seconds ≥ 0, not {start_s}"
            )));
        }
        if !(duration_s > 0.0 && duration_s <= MULTISTEM_WINDOW_MAX_S) {
            return Err(AppError::BadRequest(format!(
                "duration_s must be more than 0 and at most {MULTISTEM_WINDOW_MAX_S} s, not {duration_s}"
            )));
        }
        let all = self.multistem(track_id, model).await?;
        let tmp = self.inner.media.tmp();
        tokio::task::spawn_blocking(move || -> AppResult<std::fs::File> {
            let mut reader = sonantica_audio::BlockReader::new(Decoder::open(&all)?);
            let info = reader.info().clone();
            let rate = f64::from(info.sample_rate);
            let mut skip = (start_s * rate).round() as u64;
            let mut left = ((duration_s * rate).round() as usize).max(1);
            let mut buf = vec![Vec::new(); info.channels];
            while skip > 0 {
                let n = reader.read(skip.min(1 << 16) as usize, &mut buf)?;
                if n == 0 {
                    break; // past the end: nothing is written below
                }
                skip -= n as u64;
            }
            // Removed when dropped, whatever happens below.
            let out = tempfile::Builder::new()
                .prefix(".window-")
                .suffix(".wav")
                .tempfile_in(&tmp)
                .map_err(|e| AppError::io(&tmp, e))?
                .into_temp_path();
            let mut w = sonantica_audio::AudioWriter::create(
                &out,
                sonantica_audio::OutputFormat::WavF32,
                info.sample_rate,
                sonantica_audio::ChannelLayout::Discrete(info.channels as u16),
            )?;
            while left > 0 {
                let n = reader.read(left.min(1 << 16), &mut buf)?;
                if n == 0 {
                    break;
                }
                let planes: Vec<&[f32]> = buf.iter().map(|c| &c[..n]).collect();
                w.write(&planes)?;
                left -= n;
            }
            if w.frames_written() == 0 {
                return Err(AppError::BadRequest(format!(
                    "start_s {start_s} is past the end of the track ({:.2} s)",
                    info.duration_s().unwrap_or(0.0)
                )));
            }
            w.finish()?;
            // The open handle keeps the data; the name goes with `out`.
            std::fs::File::open(&out).map_err(|e| AppError::io(&out, e))
        })
        .await
        .map_err(|e| AppError::Internal(format!("cutting the multistem window failed: {e}")))?
    }

    /// Removes an uploaded track: its row, jobs, stems and files. Library tracks
    /// follow the library folder and cannot be deleted here.
    pub async fn delete_track(&self, id: i64, jobs: &Jobs) -> AppResult<()> {
        let track = self.track(id).await?;
        if track.origin != TrackOrigin::Upload {
            return Err(AppError::Conflict(format!(
                "track {id} is from the library folder; remove the file there and rescan"
            )));
        }
        jobs.cancel_track_jobs(id).await?;
        sqlx::query("DELETE FROM tracks WHERE id = ?")
            .bind(id)
            .execute(&self.inner.db)
            .await?;
        let file = self.media_file(&track.path)?;
        let _ = std::fs::remove_file(file);
        let _ = std::fs::remove_dir_all(self.inner.media.track_stems(id));
        self.inner.catalog.prune().await
    }

    /// Brings the library in line with the library folder: new files are added,
    /// changed ones re-read (their analysis redone, their stems dropped), and
    /// tracks whose file is gone removed. Files are only read, never modified.
    pub async fn scan_library(&self, jobs: &Jobs) -> AppResult<ScanReport> {
        let Some(root) = self.inner.library_root.clone() else {
            return Err(AppError::Conflict(
                "no library folder is configured: start the server with --library DIR".into(),
            ));
        };
        let _guard = self.inner.scanning.lock().await;
        let known: Vec<(i64, String, i64, i64)> =
            sqlx::query_as("SELECT id, path, file_size, file_mtime FROM tracks WHERE origin = ?")
                .bind(TrackOrigin::Library)
                .fetch_all(&self.inner.db)
                .await?;
        let known: HashMap<String, (i64, i64, i64)> = known
            .into_iter()
            .map(|(id, p, s, m)| (p, (id, s, m)))
            .collect();
        let known_for_walk = known.clone();
        let sandbox = self.inner.sandbox.clone();
        // The walk and the probes are blocking file work.
        let (found, changes) =
            tokio::task::spawn_blocking(move || walk_library(&root, &known_for_walk, &sandbox))
                .await
                .map_err(|e| AppError::Internal(format!("library scan failed: {e}")))?;

        let mut report = ScanReport::default();
        for (rel, previous, probed) in changes {
            match (previous, probed) {
                (None, Ok(p)) => {
                    self.insert_track(TrackOrigin::Library, &rel, None, &p)
                        .await?;
                    report.added += 1;
                }
                (Some(id), Ok(p)) => {
                    jobs.cancel_track_jobs(id).await?;
                    let mut tx = super::write_tx(&self.inner.db).await?;
                    let update = sqlx::query(
                        "UPDATE tracks SET file_size = ?, file_mtime = ?, title = ?, artist = ?,
                            album = ?, codec = ?, sample_rate = ?, channels = ?, layout = ?,
                            bits_per_sample = ?, duration_s = ?, tags = ?,
                            analysis_status = ?, analysis = NULL, analysis_error = NULL,
                            catalogued = 0
                         WHERE id = ?",
                    );
                    p.bind(update)
                        .bind(AnalysisStatus::Pending)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM stems WHERE track_id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    let _ = std::fs::remove_dir_all(self.inner.media.track_stems(id));
                    self.inner.analysis_queued.notify_one();
                    report.changed += 1;
                }
                (previous, Err(e)) => {
                    // A file that became unreadable is treated as gone.
                    if let Some(id) = previous {
                        self.remove_library_track(id, jobs).await?;
                        report.removed += 1;
                    }
                    report.failed.push((rel, e));
                }
            }
        }
        for (rel, (id, _, _)) in &known {
            if !found.contains(rel) {
                self.remove_library_track(*id, jobs).await?;
                report.removed += 1;
            }
        }
        // Unreadable folders are reported too, but they are not files found.
        let failed_files = report
            .failed
            .iter()
            .filter(|(rel, _)| found.contains(rel))
            .count();
        report.unchanged = found
            .len()
            .saturating_sub(report.added + report.changed + failed_files);
        self.inner.catalog.catalogue_pending().await?;
        Ok(report)
    }

    async fn remove_library_track(&self, id: i64, jobs: &Jobs) -> AppResult<()> {
        jobs.cancel_track_jobs(id).await?;
        sqlx::query("DELETE FROM tracks WHERE id = ?")
            .bind(id)
            .execute(&self.inner.db)
            .await?;
        let _ = std::fs::remove_dir_all(self.inner.media.track_stems(id));
        Ok(())
    }

    /// Analyses tracks whose analysis is pending, one at a time, until shutdown.
    pub(crate) async fn analysis_loop(&self) {
        let shutdown = self.inner.shutdown.clone();
        loop {
            let notified = self.inner.analysis_queued.notified();
            let next: Result<Option<(i64,)>, _> = sqlx::query_as(
                "SELECT id FROM tracks WHERE analysis_status = ? ORDER BY id LIMIT 1",
            )
            .bind(AnalysisStatus::Pending)
            .fetch_optional(&self.inner.db)
            .await;
            match next {
                Ok(Some((id,))) => {
                    if let Err(e) = self.analyse_track(id).await {
                        tracing::error!("analysis of track {id}: {e}");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                        }
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = notified => {}
                    }
                }
                Err(e) => {
                    tracing::error!("analysis queue: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    }
                }
            }
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// Runs the Inspector over one track and stores the report (or the failure).
    pub async fn analyse_track(&self, id: i64) -> AppResult<()> {
        let track = self.track(id).await?;
        let sandbox = self.inner.sandbox.clone();
        let shown = track.path.clone();
        let result = match self.track_file(&track) {
            // Decoded in the sandbox and streamed here: the station never
            // parses the container itself.
            Ok(path) => tokio::task::spawn_blocking(move || {
                readable(sandbox.analyze(&path, |_| {}), &path, &shown)
            })
            .await
            .map_err(|e| AppError::Internal(format!("analysis failed: {e}")))
            .and_then(|r| r),
            Err(e) => Err(e),
        };
        let q = match result {
            Ok(a) => {
                let json = serde_json::to_string(&a.report)
                    .map_err(|e| AppError::Internal(format!("analysis report: {e}")))?;
                let overview = serde_json::to_string(&a.overview)
                    .map_err(|e| AppError::Internal(format!("track overview: {e}")))?;
                sqlx::query(
                    "UPDATE tracks SET analysis_status = ?, analysis = ?, analysis_error = NULL,
                        duration_s = ?, overview = ? WHERE id = ? AND file_mtime = ?",
                )
                .bind(AnalysisStatus::Done)
                .bind(json)
                .bind(a.report.duration_s)
                .bind(overview)
            }
            Err(e) => sqlx::query(
                "UPDATE tracks SET analysis_status = ?, analysis_error = ?
                 WHERE id = ? AND file_mtime = ?",
            )
            .bind(AnalysisStatus::Failed)
            .bind(e.to_string()),
        };
        q.bind(id)
            .bind(track.file_mtime)
            .execute(&self.inner.db)
            .await?;
        Ok(())
    }
}

/// The format of a multistem file of `stems` stereo stems: 24-bit FLAC up to
/// four (FLAC's eight channels), else 16-bit WAV.
pub(crate) fn multistem_format(stems: usize) -> (sonantica_audio::OutputFormat, &'static str) {
    if stems * 2 <= 8 {
        (sonantica_audio::OutputFormat::Flac24, "flac")
    } else {
        (sonantica_audio::OutputFormat::Wav16, "wav")
    }
}

/// Writes every stem of `files` (in order) as two channels of one file at
/// `out` (written under a temporary name and renamed when complete).
pub(crate) fn write_multistem(files: &[PathBuf], out: &Path) -> AppResult<()> {
    let format = multistem_format(files.len()).0;
    let mut readers = Vec::new();
    for f in files {
        readers.push(sonantica_audio::BlockReader::new(Decoder::open(f)?));
    }
    let rate = readers.first().map_or(44_100, |r| r.info().sample_rate);
    let channels = 2 * readers.len();
    let layout = sonantica_audio::ChannelLayout::Discrete(channels as u16);
    let mut w = sonantica_audio::AudioWriter::create(out, format, rate, layout)?;
    let mut bufs: Vec<Vec<Vec<f32>>> = readers
        .iter()
        .map(|r| vec![Vec::new(); r.info().channels.clamp(1, 2)])
        .collect();
    loop {
        let mut n = usize::MAX;
        for (r, b) in readers.iter_mut().zip(bufs.iter_mut()) {
            n = n.min(r.read(4096, b)?);
        }
        if n == 0 || n == usize::MAX {
            break;
        }
        let planes: Vec<&[f32]> = bufs
            .iter()
            .flat_map(|b| [&b[0][..n], &b[b.len() - 1][..n]])
            .collect();
        w.write(&planes)?;
    }
    w.finish()?;
    Ok(())
}

/// A file made for one response (a zip, a render): open, its name already gone,
/// so it disappears when the response is sent or dropped.
#[derive(Debug)]
pub struct Download {
    /// The open file, at its start.
    pub file: std::fs::File,
    /// The name to offer the listener.
    pub name: String,
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("{what} failed: {e}")))?
}

impl Library {
    /// Every stem of one model as a zip (stored, not compressed: FLAC already is).
    pub async fn stems_zip(&self, id: i64, model: Option<&str>) -> AppResult<Download> {
        let track = self.track(id).await?;
        let (model, stems) = self.model_stems(id, model).await?;
        let files: Vec<(String, PathBuf)> = stems
            .iter()
            .map(|s| {
                let ext = s.path.rsplit('.').next().unwrap_or("flac").to_owned();
                Ok((format!("{}.{ext}", s.source), self.media_file(&s.path)?))
            })
            .collect::<AppResult<_>>()?;
        let tmp = self.inner.media.tmp();
        let file = blocking("writing the zip", move || {
            use std::io::{Seek, SeekFrom, Write};
            // An unnamed temporary file: gone when the response is sent (or dropped).
            let out = tempfile::tempfile_in(&tmp).map_err(|e| AppError::io(&tmp, e))?;
            let mut zip = zip::ZipWriter::new(out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(true);
            let zerr =
                |e: zip::result::ZipError| AppError::Internal(format!("writing the zip: {e}"));
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
        Ok(Download {
            file,
            name: format!("{} - stems ({model}).zip", track.title),
        })
    }

    /// A version of track `id` (`preset`: `karaoke` or `acappella`) rendered
    /// once from its stems (the default model's, else the first made) as
    /// 16-bit FLAC with the track's tags, its title marked, and kept beside
    /// the stems until they change. Returns the file and the model used.
    pub async fn version(&self, id: i64, preset: &'static str) -> AppResult<(PathBuf, String)> {
        let track = self.track(id).await?;
        let (model, stems) = self.model_stems(id, None).await?;
        let media = &self.inner.media;
        let dest = media.version(id, &model, preset);
        if dest.is_file() {
            return Ok((dest, model));
        }
        let settings = sonantica_mix::MixSettings::from_preset(
            sonantica_mix::Preset::by_id(preset)
                .ok_or_else(|| AppError::Internal(format!("no preset {preset}")))?,
        );
        let mut files = Vec::new();
        for s in &stems {
            let source: sonantica_mix::Source = s
                .source
                .parse()
                .map_err(|e: sonantica_mix::ParseSourceError| AppError::Internal(e.to_string()))?;
            files.push((source, self.media_file(&s.path)?));
        }
        let label = if preset == "karaoke" {
            "Karaoke"
        } else {
            "A cappella"
        };
        let tags = version_tags(&track, label, &model);
        let temp = media.new_render("flac");
        let shutdown = self.inner.shutdown.clone();
        let out = dest.clone();
        blocking("rendering a version", move || {
            let rendered = sonantica_pipeline::render::render_mix(
                &files,
                &temp,
                &settings,
                sonantica_pipeline::render::Span::WHOLE,
                sonantica_audio::OutputFormat::Flac16,
                &tags,
                &mut |_, _| {},
                &|| shutdown.is_cancelled(),
            );
            let placed = rendered
                .map_err(AppError::from)
                .and_then(|_| std::fs::rename(&temp, &out).map_err(|e| AppError::io(&out, e)));
            if placed.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            placed
        })
        .await?;
        Ok((dest, model))
    }

    /// Renders a mix of one model's stems with `pipeline::render` (what Save mix
    /// and `sonantica render` run) into a file of `format`.
    pub async fn render_mix(
        &self,
        id: i64,
        model: Option<&str>,
        settings: sonantica_mix::MixSettings,
        span: sonantica_pipeline::render::Span,
        format: sonantica_audio::OutputFormat,
    ) -> AppResult<Download> {
        let track = self.track(id).await?;
        let (_, stems) = self.model_stems(id, model).await?;
        let mut files = Vec::new();
        for s in &stems {
            let source: sonantica_mix::Source =
                s.source
                    .parse()
                    .map_err(|e: sonantica_mix::ParseSourceError| {
                        AppError::BadRequest(e.to_string())
                    })?;
            files.push((source, self.media_file(&s.path)?));
        }
        sonantica_pipeline::render::check_complete(
            &files.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        )
        .map_err(|m| AppError::Conflict(format!("track {id}: {m}")))?;
        let ext = format.extension();
        let name = format!(
            "{} ({}, {}).{ext}",
            track.title,
            settings.preset.map_or("mix", |p| p.id),
            settings.layout
        );
        let out_path = self.inner.media.new_render(ext);
        let shutdown = self.inner.shutdown.clone();
        let file = blocking("rendering the mix", move || {
            let result = sonantica_pipeline::render::render_mix(
                &files,
                &out_path,
                &settings,
                span,
                format,
                &[],
                &mut |_, _| {},
                &|| shutdown.is_cancelled(),
            );
            let opened = result.map_err(AppError::from).and_then(|_| {
                std::fs::File::open(&out_path).map_err(|e| AppError::io(&out_path, e))
            });
            // The open handle keeps the data; the name goes now.
            let _ = std::fs::remove_file(&out_path);
            opened
        })
        .await?;
        Ok(Download { file, name })
    }
}

/// The tags of a rendered version: the track's own (title, artist, album,
/// numbers, genre, year) with the title marked and a note of what was done.
fn version_tags(track: &Track, label: &str, model: &str) -> Vec<(String, String)> {
    let mut tags = vec![("TITLE".to_owned(), format!("{} ({label})", track.title))];
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            tags.push((k.to_owned(), v));
        }
    };
    add("ARTIST", track.artist.clone());
    add("ALBUM", track.album.clone());
    add("ALBUMARTIST", track.album_artist.clone());
    add("GENRE", track.genre.clone());
    add("DATE", track.year.map(|y| y.to_string()));
    add("TRACKNUMBER", track.track_no.map(|n| n.to_string()));
    add("DISCNUMBER", track.disc_no.map(|n| n.to_string()));
    add("VERSION", Some(label.to_owned()));
    add(
        "COMMENT",
        Some(format!(
            "{label}: rendered by Sonántica from the {model} stems"
        )),
    );
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_only() {
        assert!(is_plain_relative(Path::new("a/b.flac")));
        assert!(!is_plain_relative(Path::new("../a.flac")));
        assert!(!is_plain_relative(Path::new("/etc/passwd")));
        assert!(!is_plain_relative(Path::new("a/../../b")));
    }

    #[test]
    fn titles_come_from_the_file_name_without_extension() {
        assert_eq!(name_stem("My Song.flac"), "My Song");
        assert_eq!(name_stem("dir/x.y.wav"), "x.y");
        assert_eq!(name_stem(".hidden"), ".hidden");
        assert_eq!(name_stem("C:\\music\\a.mp3"), "a");
    }
}
