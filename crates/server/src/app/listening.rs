//! What listeners do in their players: plays (with what is playing now),
//! stars and playlists. Subsonic players report and read them; the Studio
//! shows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use super::{now_ms, AppError, AppResult};

/// Something a star is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Starred {
    /// A track.
    Track(i64),
    /// An album.
    Album(i64),
    /// An artist, by name (any case).
    Artist(String),
}

/// How a track has been used: plays, the last one, its star.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct TrackUse {
    /// Times played.
    pub plays: i64,
    /// The last play, ms since the epoch.
    pub last_played: Option<i64>,
    /// When it was starred.
    pub starred: Option<i64>,
}

/// A playlist.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Playlist {
    /// Id (never reused).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Comment.
    pub comment: Option<String>,
    /// Shared with other users (the station has one; kept for players).
    pub public: bool,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last changed.
    pub changed_at: i64,
    /// Entries.
    pub entries: i64,
    /// Their total length in seconds.
    pub duration_s: f64,
    /// Its first track's album (for a cover).
    pub first_album: Option<i64>,
}

/// A player's report of what it plays now.
#[derive(Debug, Clone, PartialEq)]
pub struct NowPlaying {
    /// The track.
    pub track_id: i64,
    /// The player (its `c` parameter).
    pub player: String,
    /// Minutes since it started.
    pub minutes_ago: u64,
}

/// A `stars` row: track, album, artist (one of them), when.
type StarRow = (Option<i64>, Option<i64>, Option<String>, i64);

/// The longest a report of what plays now is shown without another.
const NOW_PLAYING_FOR: Duration = Duration::from_secs(30 * 60);

/// Plays, stars and playlists. Cheap to clone.
#[derive(Clone)]
pub struct Listening {
    db: SqlitePool,
    now: Arc<Mutex<HashMap<String, (i64, Instant)>>>,
}

impl Listening {
    pub(crate) fn new(db: SqlitePool) -> Self {
        Self {
            db,
            now: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records a play of `track` at `at` (ms since the epoch; now if none).
    pub async fn played(&self, track: i64, at: Option<i64>) -> AppResult<()> {
        sqlx::query("INSERT INTO plays (track_id, played_at) VALUES (?, ?)")
            .bind(track)
            .bind(at.unwrap_or_else(now_ms))
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// `player` has started `track`.
    pub fn playing(&self, track: i64, player: &str) {
        if let Ok(mut m) = self.now.lock() {
            m.retain(|_, (_, at)| at.elapsed() < NOW_PLAYING_FOR);
            // Players are named by the client; keep the table small anyway.
            if m.len() < 1000 || m.contains_key(player) {
                m.insert(player.to_owned(), (track, Instant::now()));
            }
        }
    }

    /// What players reported playing in the last half hour, latest first.
    pub fn now_playing(&self) -> Vec<NowPlaying> {
        let Ok(m) = self.now.lock() else {
            return Vec::new();
        };
        let mut list: Vec<(Instant, NowPlaying)> = m
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < NOW_PLAYING_FOR)
            .map(|(player, (track, at))| {
                (
                    *at,
                    NowPlaying {
                        track_id: *track,
                        player: player.clone(),
                        minutes_ago: at.elapsed().as_secs() / 60,
                    },
                )
            })
            .collect();
        list.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        list.into_iter().map(|(_, n)| n).collect()
    }

    /// Plays and stars of `tracks`.
    pub async fn track_use(&self, tracks: &[i64]) -> AppResult<HashMap<i64, TrackUse>> {
        self.uses(
            "SELECT t.value,
                    (SELECT COUNT(*) FROM plays p WHERE p.track_id = t.value),
                    (SELECT MAX(played_at) FROM plays p WHERE p.track_id = t.value),
                    (SELECT starred_at FROM stars s WHERE s.track_id = t.value)
             FROM json_each(?) t",
            tracks,
        )
        .await
    }

    /// Plays (summed over their tracks) and stars of `albums`.
    pub async fn albums_use(&self, albums: &[i64]) -> AppResult<HashMap<i64, TrackUse>> {
        self.uses(
            "SELECT a.value,
                    (SELECT COUNT(*) FROM plays p JOIN tracks t ON t.id = p.track_id
                     WHERE t.album_id = a.value),
                    (SELECT MAX(played_at) FROM plays p JOIN tracks t ON t.id = p.track_id
                     WHERE t.album_id = a.value),
                    (SELECT starred_at FROM stars s WHERE s.album_id = a.value)
             FROM json_each(?) a",
            albums,
        )
        .await
    }

    /// Runs `sql` (rows of id, plays, last play, star over `json_each(?)`)
    /// for `ids`, in one query.
    async fn uses(&self, sql: &str, ids: &[i64]) -> AppResult<HashMap<i64, TrackUse>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = serde_json::to_string(ids).map_err(|e| AppError::Internal(e.to_string()))?;
        let rows: Vec<(i64, i64, Option<i64>, Option<i64>)> =
            sqlx::query_as(sql).bind(list).fetch_all(&self.db).await?;
        Ok(rows
            .into_iter()
            .map(|(id, plays, last_played, starred)| {
                (
                    id,
                    TrackUse {
                        plays,
                        last_played,
                        starred,
                    },
                )
            })
            .collect())
    }

    /// Albums by how often their tracks were played (`recent`: by the last
    /// play), played ones only.
    pub async fn album_ids_by_plays(
        &self,
        recent: bool,
        offset: i64,
        limit: i64,
    ) -> AppResult<Vec<i64>> {
        let order = if recent {
            "MAX(p.played_at)"
        } else {
            "COUNT(*)"
        };
        Ok(sqlx::query_scalar(&format!(
            "SELECT t.album_id FROM plays p JOIN tracks t ON t.id = p.track_id
             WHERE t.album_id IS NOT NULL
             GROUP BY t.album_id ORDER BY {order} DESC, t.album_id LIMIT ? OFFSET ?"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db)
        .await?)
    }

    /// Stars `what` (again: no change).
    pub async fn star(&self, what: &Starred) -> AppResult<()> {
        let (t, a, r) = columns(what);
        sqlx::query(
            "INSERT INTO stars (track_id, album_id, artist, starred_at) VALUES (?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(t)
        .bind(a)
        .bind(r)
        .bind(now_ms())
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Takes the star off `what`.
    pub async fn unstar(&self, what: &Starred) -> AppResult<()> {
        let (t, a, r) = columns(what);
        sqlx::query(
            "DELETE FROM stars WHERE track_id IS ? AND album_id IS ?
               AND (artist = ? COLLATE NOCASE OR (artist IS NULL AND ? IS NULL))",
        )
        .bind(t)
        .bind(a)
        .bind(r.clone())
        .bind(r)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Everything starred, latest first.
    pub async fn starred(&self) -> AppResult<Vec<(Starred, i64)>> {
        let rows: Vec<StarRow> = sqlx::query_as(
            "SELECT track_id, album_id, artist, starred_at FROM stars ORDER BY starred_at DESC, rowid DESC",
        )
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, a, r, at)| {
                let what = match (t, a, r) {
                    (Some(t), _, _) => Starred::Track(t),
                    (_, Some(a), _) => Starred::Album(a),
                    (_, _, Some(r)) => Starred::Artist(r),
                    _ => return None,
                };
                Some((what, at))
            })
            .collect())
    }

    /// Every playlist, by name.
    pub async fn playlists(&self) -> AppResult<Vec<Playlist>> {
        Ok(sqlx::query_as(&format!(
            "{PLAYLIST_SELECT} GROUP BY p.id ORDER BY p.name COLLATE NOCASE, p.id"
        ))
        .fetch_all(&self.db)
        .await?)
    }

    /// One playlist and its tracks in order.
    pub async fn playlist(&self, id: i64) -> AppResult<(Playlist, Vec<i64>)> {
        let p: Playlist =
            sqlx::query_as(&format!("{PLAYLIST_SELECT} WHERE p.id = ? GROUP BY p.id"))
                .bind(id)
                .fetch_optional(&self.db)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("no playlist {id}")))?;
        let tracks = sqlx::query_scalar(
            "SELECT track_id FROM playlist_entries WHERE playlist_id = ? ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.db)
        .await?;
        Ok((p, tracks))
    }

    /// A new playlist of `tracks` (each must exist).
    pub async fn create_playlist(&self, name: &str, tracks: &[i64]) -> AppResult<i64> {
        let now = now_ms();
        let mut tx = super::write_tx(&self.db).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO playlists (name, created_at, changed_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        insert_entries(&mut tx, id, 0, tracks).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Changes a playlist: its name, comment and sharing when given; the
    /// entries at `remove` (positions in the current order) taken out, then
    /// `add` appended. `replace` instead sets the whole list.
    pub async fn update_playlist(&self, id: i64, change: &PlaylistChange) -> AppResult<()> {
        let mut tx = super::write_tx(&self.db).await?;
        let found = sqlx::query(
            "UPDATE playlists SET name = COALESCE(?, name), comment = COALESCE(?, comment),
                public = COALESCE(?, public), changed_at = ? WHERE id = ?",
        )
        .bind(change.name.as_deref())
        .bind(change.comment.as_deref())
        .bind(change.public)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if found == 0 {
            return Err(AppError::NotFound(format!("no playlist {id}")));
        }
        let mut current: Vec<i64> = sqlx::query_scalar(
            "SELECT track_id FROM playlist_entries WHERE playlist_id = ? ORDER BY position",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(all) = &change.replace {
            current = all.clone();
        } else {
            let mut remove = change.remove.clone();
            remove.sort_unstable();
            remove.dedup();
            if let Some(&bad) = remove.iter().find(|&&i| i >= current.len()) {
                return Err(AppError::BadRequest(format!(
                    "the playlist has no entry {bad} (it has {})",
                    current.len()
                )));
            }
            for &i in remove.iter().rev() {
                current.remove(i);
            }
            current.extend(&change.add);
        }
        sqlx::query("DELETE FROM playlist_entries WHERE playlist_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_entries(&mut tx, id, 0, &current).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a playlist.
    pub async fn delete_playlist(&self, id: i64) -> AppResult<()> {
        let n = sqlx::query("DELETE FROM playlists WHERE id = ?")
            .bind(id)
            .execute(&self.db)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(AppError::NotFound(format!("no playlist {id}")));
        }
        Ok(())
    }
}

/// A change to a playlist (see [`Listening::update_playlist`]).
#[derive(Debug, Clone, Default)]
pub struct PlaylistChange {
    /// New name.
    pub name: Option<String>,
    /// New comment.
    pub comment: Option<String>,
    /// Shared or not.
    pub public: Option<bool>,
    /// Tracks to append.
    pub add: Vec<i64>,
    /// Positions to take out.
    pub remove: Vec<usize>,
    /// The whole new list instead of `add` and `remove`.
    pub replace: Option<Vec<i64>>,
}

const PLAYLIST_SELECT: &str =
    "SELECT p.id, p.name, p.comment, p.public, p.created_at, p.changed_at,
        COUNT(e.track_id) AS entries, COALESCE(SUM(t.duration_s), 0.0) AS duration_s,
        (SELECT t2.album_id FROM playlist_entries e2 JOIN tracks t2 ON t2.id = e2.track_id
         WHERE e2.playlist_id = p.id ORDER BY e2.position LIMIT 1) AS first_album
    FROM playlists p
    LEFT JOIN playlist_entries e ON e.playlist_id = p.id
    LEFT JOIN tracks t ON t.id = e.track_id";

async fn insert_entries(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    playlist: i64,
    from: usize,
    tracks: &[i64],
) -> AppResult<()> {
    for (i, &t) in tracks.iter().enumerate() {
        let r = sqlx::query(
            "INSERT INTO playlist_entries (playlist_id, position, track_id) VALUES (?, ?, ?)",
        )
        .bind(playlist)
        .bind((from + i) as i64)
        .bind(t)
        .execute(&mut **tx)
        .await;
        match r {
            Ok(_) => {}
            // The foreign key: a track that does not exist.
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                return Err(AppError::NotFound(format!("no track {t}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn columns(what: &Starred) -> (Option<i64>, Option<i64>, Option<String>) {
    match what {
        Starred::Track(t) => (Some(*t), None, None),
        Starred::Album(a) => (None, Some(*a), None),
        Starred::Artist(r) => (None, None, Some(r.clone())),
    }
}
