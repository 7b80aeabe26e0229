//! Albums and artists from the tracks' tags, and search by words.
//!
//! Every track's tags are read into columns (album artist, genre, year, disc
//! and track number) when it is added or changes, and the track joins its
//! album: the tracks sharing an album title and an album artist (else, for
//! files in the library folder, a folder; else the track artist). Artists are
//! not stored: an artist is the album artist of an album, else the artist of
//! its tracks. Search is SQLite FTS5 over title, artist, album artist, album,
//! genre and file name (`tracks_fts`, kept by triggers).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sqlx::SqlitePool;

use super::library::Track;
use super::status::TrackOrigin;
use super::{now_ms, AppError, AppResult, Library, MediaDir};

/// Image files beside a track that are its album's cover, best first:
/// `cover`, `folder`, `front` (any case), JPEG or PNG.
fn folder_images(track_file: &Path) -> Vec<PathBuf> {
    let Some(dir) = track_file.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_lowercase();
            let (stem, ext) = name.rsplit_once('.')?;
            let rank = ["cover", "folder", "front"]
                .iter()
                .position(|s| *s == stem)?;
            ["jpg", "jpeg", "png"]
                .contains(&ext)
                .then(|| (rank, e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// The ordering tags of a track, as stored in its columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderTags {
    /// Album artist.
    pub album_artist: Option<String>,
    /// Genre.
    pub genre: Option<String>,
    /// Year (from the date tag's first four digits).
    pub year: Option<i64>,
    /// Disc number.
    pub disc_no: Option<i64>,
    /// Track number on its disc.
    pub track_no: Option<i64>,
}

/// The first tag of `keys` (case-insensitive) with a non-blank value. Formats
/// name tags differently (Vorbis `ALBUMARTIST`, ID3 `TPE2`, MP4 `aART`), and
/// tracks stored by an older version kept the raw names.
pub(crate) fn tag<'a>(
    tags: &'a serde_json::Map<String, serde_json::Value>,
    keys: &[&str],
) -> Option<&'a str> {
    keys.iter().find_map(|want| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(want))
            .and_then(|(_, v)| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    })
}

/// The leading number of `9`, `09`, `9/12` or `2006-05-01`.
fn leading_number(value: &str) -> Option<i64> {
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(6)
        .collect();
    digits.parse().ok()
}

impl OrderTags {
    /// Reads the ordering tags from a track's tags (its JSON object).
    pub fn from_tags(tags: &serde_json::Map<String, serde_json::Value>) -> Self {
        let year = tag(tags, &["date", "year", "originaldate", "tdrc", "tyer"])
            .and_then(leading_number)
            .filter(|y| (1000..=9999).contains(y));
        let positive = |v: Option<&str>| v.and_then(leading_number).filter(|n| *n > 0);
        Self {
            album_artist: tag(
                tags,
                &[
                    "album_artist",
                    "albumartist",
                    "album artist",
                    "tpe2",
                    "aart",
                ],
            )
            .map(str::to_owned),
            genre: tag(tags, &["genre", "tcon"]).map(str::to_owned),
            year,
            disc_no: positive(tag(tags, &["disc", "discnumber", "disk", "tpos"])),
            track_no: positive(tag(tags, &["track", "tracknumber", "trck", "trkn"])),
        }
    }
}

/// The folder of a path relative to the library ("" at its top).
fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// A library track's folder and lowercased album title, if it has one.
fn folder_album(track: &Track) -> Option<(String, String)> {
    let album = track
        .album
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())?;
    (track.origin == TrackOrigin::Library)
        .then(|| (folder_of(&track.path).to_owned(), album.to_lowercase()))
}

/// What groups a track into an album, lowercased: the album title and its
/// album artist; without one, the folder of a library file (an album is
/// usually a folder); else the track artist. `None` without an album title.
pub fn album_key(track: &Track, tags: &OrderTags) -> Option<String> {
    let album = track
        .album
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())?;
    let by = match (&tags.album_artist, track.origin) {
        (Some(a), _) => format!("artist:{a}"),
        (None, TrackOrigin::Library) => format!("folder:{}", folder_of(&track.path)),
        (None, TrackOrigin::Upload) => format!("artist:{}", track.artist.as_deref().unwrap_or("")),
    };
    Some(format!("{}\t{by}", album).to_lowercase())
}

/// The FTS5 query for what a user typed: each word, as a prefix, all of them
/// in any order. Quotes keep FTS5 syntax in the words (`AND`, `-`, `*`, `"`)
/// from being read as operators. `None` when nothing searchable is left.
pub fn match_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The albums and artists of the library. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    db: SqlitePool,
    media: MediaDir,
}

impl Catalog {
    pub(crate) fn new(db: SqlitePool, media: MediaDir) -> Self {
        Self { db, media }
    }

    /// Reads the ordering tags of every track not catalogued yet (new, changed,
    /// or stored by an older version) and puts it in its album; removes albums
    /// left without tracks.
    pub(crate) async fn catalogue_pending(&self) -> AppResult<usize> {
        let pending: Vec<Track> = sqlx::query_as(&format!(
            "SELECT {} FROM tracks WHERE catalogued = 0",
            super::library::TRACK_COLUMNS
        ))
        .fetch_all(&self.db)
        .await?;
        let mut parsed: Vec<(&Track, OrderTags)> = pending
            .iter()
            .map(|t| {
                let tags: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&t.tags).unwrap_or_default();
                (t, OrderTags::from_tags(&tags))
            })
            .collect();
        // A library track without an album artist joins the album of the
        // same title in its folder that has one (a soundtrack where a few
        // tracks lack the tag is still one album).
        let mut known: HashMap<(String, String), String> = HashMap::new();
        for (t, o) in &parsed {
            if let (Some(key), Some(a)) = (folder_album(t), &o.album_artist) {
                known.entry(key).or_insert_with(|| a.clone());
            }
        }
        for (t, o) in &mut parsed {
            if o.album_artist.is_some() {
                continue;
            }
            let Some(key) = folder_album(t) else {
                continue;
            };
            if !known.contains_key(&key) {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT path, album_artist FROM tracks
                     WHERE origin = ? AND catalogued = 1 AND album_artist IS NOT NULL
                       AND lower(trim(album)) = ?",
                )
                .bind(TrackOrigin::Library)
                .bind(&key.1)
                .fetch_all(&self.db)
                .await?;
                if let Some((_, a)) = rows.into_iter().find(|(p, _)| folder_of(p) == key.0) {
                    known.insert(key.clone(), a);
                }
            }
            o.album_artist = known.get(&key).cloned();
        }
        for (track, order) in &parsed {
            self.catalogue(track, order).await?;
        }
        self.prune().await?;
        Ok(pending.len())
    }

    async fn catalogue(&self, track: &Track, order: &OrderTags) -> AppResult<()> {
        let mut tx = super::write_tx(&self.db).await?;
        let album_id: Option<i64> = match album_key(track, order) {
            Some(key) => {
                let title = track.album.as_deref().unwrap_or_default().trim();
                sqlx::query(
                    "INSERT INTO albums (key, title, artist, created_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(&key)
                .bind(title)
                .bind(&order.album_artist)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                // An album without a cover is looked at again: the new
                // track may bring one.
                sqlx::query_scalar(
                    "UPDATE albums SET cover = NULLIF(cover, '') WHERE key = ? RETURNING id",
                )
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => None,
        };
        sqlx::query(
            "UPDATE tracks SET album_id = ?, album_artist = ?, genre = ?, year = ?,
                disc_no = ?, track_no = ?, catalogued = 1
             WHERE id = ?",
        )
        .bind(album_id)
        .bind(&order.album_artist)
        .bind(&order.genre)
        .bind(order.year)
        .bind(order.disc_no)
        .bind(order.track_no)
        .bind(track.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes albums without tracks, and their covers.
    pub(crate) async fn prune(&self) -> AppResult<()> {
        let gone: Vec<(i64, Option<String>)> = sqlx::query_as(
            "DELETE FROM albums
             WHERE id NOT IN (SELECT album_id FROM tracks WHERE album_id IS NOT NULL)
             RETURNING id, cover",
        )
        .fetch_all(&self.db)
        .await?;
        for (_, cover) in gone {
            if let Some(rel) = cover.filter(|c| !c.is_empty()) {
                if let Ok(path) = self.media.resolve(&rel) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        Ok(())
    }

    /// The cover of album `id` (a JPEG in the media folder), made the first
    /// time it is asked for: from an image named `cover`, `folder` or `front`
    /// (JPEG or PNG) in the folder of its first track in the library folder,
    /// else the first picture embedded in one of its first tracks. Every file
    /// is read in the sandbox. `None` when the album has no picture.
    pub async fn cover(&self, id: i64, library: &Library) -> AppResult<Option<PathBuf>> {
        let stored: Option<String> =
            sqlx::query_scalar::<_, Option<String>>("SELECT cover FROM albums WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.db)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no album with id {id}")))?;
        let media = self.media.clone();
        if let Some(rel) = stored {
            return Ok(if rel.is_empty() {
                None
            } else {
                Some(media.resolve(&rel)?).filter(|p| p.is_file())
            });
        }
        let mut candidates = Vec::new();
        for tid in self.album_track_ids(id).await?.into_iter().take(3) {
            let track = library.track(tid).await?;
            let Ok(file) = library.track_file(&track) else {
                continue;
            };
            if track.origin == TrackOrigin::Library && candidates.is_empty() {
                candidates.extend(folder_images(&file));
            }
            candidates.push(file);
        }
        let sandbox = library.sandbox().clone();
        let dest = media.resolve(&MediaDir::cover_rel(id))?;
        let temp = media.new_cover_temp();
        let made = tokio::task::spawn_blocking(move || -> AppResult<bool> {
            for c in candidates {
                // A picture that cannot be read is skipped, not an error: the
                // next one may do.
                if let Ok(Some(jpeg)) = sandbox.cover(&c) {
                    std::fs::write(&temp, jpeg).map_err(|e| AppError::io(&temp, e))?;
                    std::fs::rename(&temp, &dest).map_err(|e| {
                        let _ = std::fs::remove_file(&temp);
                        AppError::io(&dest, e)
                    })?;
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
        .map_err(|e| AppError::Internal(format!("making a cover failed: {e}")))??;
        let rel = if made {
            MediaDir::cover_rel(id)
        } else {
            String::new()
        };
        sqlx::query("UPDATE albums SET cover = ? WHERE id = ?")
            .bind(&rel)
            .bind(id)
            .execute(&self.db)
            .await?;
        made.then(|| media.resolve(&rel)).transpose()
    }

    /// Albums, by artist then year then title, a page at a time; with the total.
    pub async fn albums(&self, offset: i64, limit: i64) -> AppResult<(Vec<Album>, i64)> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM albums")
            .fetch_one(&self.db)
            .await?;
        let rows = sqlx::query_as(&format!(
            "{ALBUM_SELECT} GROUP BY a.id
             ORDER BY shown_artist IS NULL, shown_artist COLLATE NOCASE, year, a.title COLLATE NOCASE, a.id
             LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db)
        .await?;
        Ok((rows, total))
    }

    /// One album.
    pub async fn album(&self, id: i64) -> AppResult<Album> {
        sqlx::query_as(&format!("{ALBUM_SELECT} WHERE a.id = ? GROUP BY a.id"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no album with id {id}")))
    }

    /// The ids of an album's tracks in play order: disc, track number, title.
    pub async fn album_track_ids(&self, id: i64) -> AppResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tracks WHERE album_id = ?
             ORDER BY COALESCE(disc_no, 1), track_no IS NULL, track_no, title COLLATE NOCASE, id",
        )
        .bind(id)
        .fetch_all(&self.db)
        .await?)
    }

    /// Every artist (the album artist of an album, else each track's artist),
    /// with how many albums and tracks they have, by name.
    pub async fn artists(&self) -> AppResult<Vec<Artist>> {
        // Album artists and track artists both: the composers on a soundtrack
        // are artists too. An artist's albums are those it is the album
        // artist of or plays on.
        Ok(sqlx::query_as(
            "WITH names AS (
                 SELECT album_artist AS name, id, album_id FROM tracks WHERE album_artist IS NOT NULL
                 UNION
                 SELECT artist AS name, id, album_id FROM tracks WHERE artist IS NOT NULL
             )
             SELECT MIN(name) AS name, COUNT(DISTINCT album_id) AS albums, COUNT(DISTINCT id) AS tracks
             FROM names
             GROUP BY name COLLATE NOCASE
             ORDER BY name COLLATE NOCASE",
        )
        .fetch_all(&self.db)
        .await?)
    }
}

/// Orders (and filters) of an album list, as Subsonic's `getAlbumList2` asks.
#[derive(Debug, Clone, PartialEq)]
pub enum AlbumOrder {
    /// By title.
    Name,
    /// By the artist shown, then title.
    Artist,
    /// Newest first (when they appeared in the library).
    Newest,
    /// In random order.
    Random,
    /// Those of years `from..=to`, in that direction (`from > to`: newest first).
    Years {
        /// First year.
        from: i64,
        /// Last year.
        to: i64,
    },
    /// Those of one genre (any case), by title.
    Genre(String),
}

/// A genre and how much of the library has it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Genre {
    /// As tagged (the first spelling seen, any case).
    pub name: String,
    /// Tracks.
    pub tracks: i64,
    /// Albums.
    pub albums: i64,
}

impl Catalog {
    /// A page of albums in `order`.
    pub async fn album_list(
        &self,
        order: &AlbumOrder,
        offset: i64,
        limit: i64,
    ) -> AppResult<Vec<Album>> {
        let (filter, sort) = match order {
            AlbumOrder::Name => ("", "a.title COLLATE NOCASE, a.id"),
            AlbumOrder::Artist => (
                "",
                "shown_artist IS NULL, shown_artist COLLATE NOCASE, a.title COLLATE NOCASE, a.id",
            ),
            AlbumOrder::Newest => ("", "a.created_at DESC, a.id DESC"),
            AlbumOrder::Random => ("", "random()"),
            AlbumOrder::Years { from, to } if from <= to => (
                "HAVING MIN(t.year) BETWEEN ?1 AND ?2",
                "year, a.title COLLATE NOCASE, a.id",
            ),
            AlbumOrder::Years { .. } => (
                "HAVING MIN(t.year) BETWEEN ?2 AND ?1",
                "year DESC, a.title COLLATE NOCASE, a.id",
            ),
            AlbumOrder::Genre(_) => (
                "HAVING SUM(t.genre = ?3 COLLATE NOCASE) > 0",
                "a.title COLLATE NOCASE, a.id",
            ),
        };
        let (from, to) = match order {
            AlbumOrder::Years { from, to } => (*from, *to),
            _ => (0, 0),
        };
        let genre = match order {
            AlbumOrder::Genre(g) => g.as_str(),
            _ => "",
        };
        Ok(sqlx::query_as(&format!(
            "{ALBUM_SELECT} GROUP BY a.id {filter} ORDER BY {sort} LIMIT ?4 OFFSET ?5"
        ))
        .bind(from)
        .bind(to)
        .bind(genre)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db)
        .await?)
    }

    /// Albums whose title or shown artist contains every one of `words`
    /// (lowercase; as substrings, any case), by title; at most 1000.
    pub async fn albums_containing(&self, words: &[String]) -> AppResult<Vec<Album>> {
        let mut having = String::from("1");
        for _ in words.iter().take(16) {
            having.push_str(
                " AND lower(a.title || ' ' || COALESCE(shown_artist, '')) LIKE ? ESCAPE '\\'",
            );
        }
        let sql = format!(
            "{ALBUM_SELECT} GROUP BY a.id HAVING {having}
             ORDER BY a.title COLLATE NOCASE, a.id LIMIT 1000"
        );
        let mut q = sqlx::query_as(&sql);
        for w in words.iter().take(16) {
            let escaped = w
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            q = q.bind(format!("%{escaped}%"));
        }
        Ok(q.fetch_all(&self.db).await?)
    }

    /// The albums `artist` (any case) is the album artist of or plays on, by
    /// year then title.
    pub async fn artist_albums(&self, artist: &str) -> AppResult<Vec<Album>> {
        Ok(sqlx::query_as(&format!(
            "{ALBUM_SELECT} WHERE a.id IN (
                 SELECT album_id FROM tracks WHERE album_id IS NOT NULL
                   AND (album_artist = ?1 COLLATE NOCASE OR artist = ?1 COLLATE NOCASE))
             GROUP BY a.id ORDER BY year, a.title COLLATE NOCASE, a.id"
        ))
        .bind(artist)
        .fetch_all(&self.db)
        .await?)
    }

    /// Every genre, by name.
    pub async fn genres(&self) -> AppResult<Vec<Genre>> {
        Ok(sqlx::query_as(
            "SELECT MIN(genre) AS name, COUNT(*) AS tracks, COUNT(DISTINCT album_id) AS albums
             FROM tracks WHERE genre IS NOT NULL AND genre != ''
             GROUP BY genre COLLATE NOCASE ORDER BY genre COLLATE NOCASE",
        )
        .fetch_all(&self.db)
        .await?)
    }

    /// Up to `size` tracks at random, of `genre` and years `from..=to` when given.
    pub async fn random_track_ids(
        &self,
        size: i64,
        genre: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
    ) -> AppResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tracks
             WHERE (?1 IS NULL OR genre = ?1 COLLATE NOCASE)
               AND (?2 IS NULL OR year >= ?2) AND (?3 IS NULL OR year <= ?3)
             ORDER BY random() LIMIT ?4",
        )
        .bind(genre)
        .bind(from)
        .bind(to)
        .bind(size)
        .fetch_all(&self.db)
        .await?)
    }
}

/// Albums with what their tracks say: the artist shown (the album artist, else
/// the one artist of every track, else none: various artists), the year,
/// counts and length.
const ALBUM_SELECT: &str = "SELECT a.id, a.title, a.created_at,
        COALESCE(a.artist, CASE WHEN COUNT(DISTINCT t.artist) = 1 THEN MAX(t.artist) END) AS shown_artist,
        MIN(t.year) AS year, COUNT(t.id) AS tracks,
        MAX(COALESCE(t.disc_no, 1)) AS discs, SUM(COALESCE(t.duration_s, 0)) AS duration_s,
        MIN(t.genre) AS genre
    FROM albums a JOIN tracks t ON t.album_id = a.id";

/// An album.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Album {
    /// Id (never reused).
    pub id: i64,
    /// Title.
    pub title: String,
    /// When it first appeared, ms since the epoch.
    pub created_at: i64,
    /// The artist shown: the album artist, else the one artist of every track;
    /// `None` for various artists.
    pub shown_artist: Option<String>,
    /// The earliest year of its tracks.
    pub year: Option<i64>,
    /// Number of tracks.
    pub tracks: i64,
    /// Number of discs.
    pub discs: i64,
    /// Total length in seconds.
    pub duration_s: f64,
    /// A genre of its tracks.
    pub genre: Option<String>,
}

/// An artist.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Artist {
    /// Name, as tagged.
    pub name: String,
    /// Albums with this artist.
    pub albums: i64,
    /// Tracks with this artist.
    pub tracks: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect()
    }

    #[test]
    fn order_tags_read_every_format_s_names() {
        let vorbis = OrderTags::from_tags(&tags(&[
            ("ALBUMARTIST", "Wesnoth Project"),
            ("DISCNUMBER", "2/3"),
            ("TRACKNUMBER", "09"),
            ("DATE", "2006-05-01"),
            ("GENRE", "Soundtrack"),
        ]));
        assert_eq!(
            vorbis,
            OrderTags {
                album_artist: Some("Wesnoth Project".into()),
                genre: Some("Soundtrack".into()),
                year: Some(2006),
                disc_no: Some(2),
                track_no: Some(9),
            }
        );
        let id3 = OrderTags::from_tags(&tags(&[("TPE2", "X"), ("TPOS", "1"), ("TRCK", "3/10")]));
        assert_eq!(
            (id3.album_artist.as_deref(), id3.disc_no, id3.track_no),
            (Some("X"), Some(1), Some(3))
        );
        let junk = OrderTags::from_tags(&tags(&[("track", "0"), ("date", "99"), ("disc", "x")]));
        assert_eq!((junk.track_no, junk.year, junk.disc_no), (None, None, None));
    }

    #[test]
    fn searches_are_words_in_any_order_and_never_syntax() {
        assert_eq!(
            match_query("westlund  Legends"),
            Some("\"westlund\"* \"Legends\"*".into())
        );
        assert_eq!(
            match_query("a\"b OR -c*"),
            Some("\"a\"* \"b\"* \"OR\"* \"c\"*".into())
        );
        assert_eq!(match_query("  ** -- "), None);
        assert_eq!(match_query("Éowyn"), Some("\"Éowyn\"*".into()));
    }
}
