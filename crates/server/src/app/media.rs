//! The media folder (`DATA/media`): every path under it is built here, and
//! nowhere else.
//!
//! ```text
//! media/
//!   uploads/{random}.{ext}                 uploaded files (the station owns them)
//!   tmp/                                   uploads being received, renders, zips
//!   stems/{track}/{model}/{source}.flac    finished stems
//!   stems/{track}/{model}.all.{flac|wav}   every stem of a model in one file
//!   stems/{track}/.{model}.job{id}.tmp     a local job's staging folder
//!   stems/{track}/.{model}.job{id}.{w}.tmp a remote worker's uploads
//!   stems/{track}/.{model}.job{id}.old     the stems a finishing job replaces
//!   stems/{track}/.{model}.job{id}.all.*   its multichannel file, being written
//!   covers/{album}.jpg                     album covers, made from the files
//! ```
//! Names starting with `.` under `stems/{track}/` are unfinished work: a start-up
//! removes them.

use std::path::{Component, Path, PathBuf};

use super::{AppError, AppResult};

/// The media folder and the layout inside it.
#[derive(Debug, Clone)]
pub struct MediaDir {
    root: PathBuf,
}

/// The presets a track's versions are rendered with (see [`MediaDir::version`]).
pub const VERSIONS: [&str; 2] = ["karaoke", "acappella"];

impl MediaDir {
    /// The media folder at `root` (nothing is created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the folder and its `uploads/`, `stems/` and `tmp/`.
    pub fn create(&self) -> AppResult<()> {
        for dir in [self.uploads(), self.stems_root(), self.tmp(), self.covers()] {
            std::fs::create_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
        }
        Ok(())
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Temporary files: uploads being received, renders, zips.
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Uploaded files.
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// The stored (media-relative) path of an upload named `name`.
    pub fn upload_rel(name: &str) -> String {
        format!("uploads/{name}")
    }

    /// A new upload's name (random, with the extension its content calls for)
    /// and where it lands.
    pub fn new_upload(&self, ext: &str) -> (String, PathBuf) {
        let name = format!("{}.{ext}", random_name(20));
        let path = self.uploads().join(&name);
        (name, path)
    }

    /// Where a render for one response is written before it is opened (and its
    /// name removed): hidden, random, in `tmp/`.
    pub fn new_render(&self, ext: &str) -> PathBuf {
        self.tmp().join(format!(".mix-{}.{ext}", random_name(16)))
    }

    /// A stem file `source` in a staging folder.
    pub fn staged_stem(staging: &Path, source: &str) -> PathBuf {
        staging.join(format!("{source}.flac"))
    }

    /// Every track's stems.
    pub fn stems_root(&self) -> PathBuf {
        self.root.join("stems")
    }

    /// One track's stems, of every model.
    pub fn track_stems(&self, track: i64) -> PathBuf {
        self.stems_root().join(track.to_string())
    }

    /// One model's stems of a track.
    pub fn model_stems(&self, track: i64, model: &str) -> PathBuf {
        self.track_stems(track).join(model)
    }

    /// The stored (media-relative) path of a stem file named `file` (e.g.
    /// `vocals.flac`).
    pub fn stem_rel(track: i64, model: &str, file: &str) -> String {
        format!("stems/{track}/{model}/{file}")
    }

    /// Album covers, as the station made them.
    pub fn covers(&self) -> PathBuf {
        self.root.join("covers")
    }

    /// An album's cover, relative to the media folder (what `albums.cover` stores).
    pub fn cover_rel(album: i64) -> String {
        format!("covers/{album}.jpg")
    }

    /// Where a cover is written before it is renamed into place.
    pub fn new_cover_temp(&self) -> PathBuf {
        self.tmp().join(format!(".cover-{}.jpg", random_name(16)))
    }

    /// Where a local job stages its stems before they move into place.
    pub fn job_staging(&self, track: i64, model: &str, job: i64) -> PathBuf {
        self.track_stems(track)
            .join(format!(".{model}.job{job}.tmp"))
    }

    /// Where a remote worker's uploads for a job wait (a hash of the worker's
    /// name tells workers apart without putting the name in a path).
    pub fn remote_staging(&self, track: i64, model: &str, job: i64, worker: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let tag: String = Sha256::digest(worker.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        self.track_stems(track)
            .join(format!(".{model}.job{job}.{tag}.tmp"))
    }

    /// Removes a track's stem folder if nothing is left in it (after a
    /// cancelled or failed first separation).
    pub fn remove_track_stems_if_empty(&self, track: i64) {
        // remove_dir refuses a folder that is not empty: exactly what is wanted.
        let _ = std::fs::remove_dir(self.track_stems(track));
    }

    /// Where the stems a finishing job replaces wait until the swap is done.
    pub fn replaced_stems(&self, track: i64, model: &str, job: i64) -> PathBuf {
        self.track_stems(track)
            .join(format!(".{model}.job{job}.old"))
    }

    /// The multichannel file of a model's stems (`ext` is `flac` or `wav`).
    pub fn multistem(&self, track: i64, model: &str, ext: &str) -> PathBuf {
        self.track_stems(track).join(format!("{model}.all.{ext}"))
    }

    /// Where a finishing job writes the multichannel file of its stems before
    /// it moves into place with them.
    pub fn staged_multistem(&self, track: i64, model: &str, job: i64, ext: &str) -> PathBuf {
        self.track_stems(track)
            .join(format!(".{model}.job{job}.all.{ext}"))
    }

    /// A version of a track rendered from one model's stems with a preset
    /// (`karaoke`, `acappella`): what Subsonic players stream.
    pub fn version(&self, track: i64, model: &str, preset: &str) -> PathBuf {
        self.track_stems(track)
            .join(format!("{model}.{preset}.flac"))
    }

    /// Every file made from a model's stems: the multichannel files and the
    /// rendered versions (to drop them when the stems change).
    pub fn multistems(&self, track: i64, model: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = ["flac", "wav"]
            .iter()
            .map(|ext| self.multistem(track, model, ext))
            .collect();
        files.extend(
            VERSIONS
                .iter()
                .map(|preset| self.version(track, model, preset)),
        );
        files
    }

    /// Streams `body` into a new temporary file in `tmp/` (named `prefix…`, removed
    /// when dropped), refusing more than `max` bytes with [`AppError::TooLarge`]
    /// (`too_large` says what). Returns the file, synced, and its length.
    pub async fn receive<S, B, E>(
        &self,
        prefix: &str,
        mut body: S,
        max: u64,
        too_large: impl Fn() -> String,
    ) -> AppResult<(tempfile::NamedTempFile, u64)>
    where
        S: futures_util::Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        AppError: From<E>,
    {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let tmp = self.tmp();
        let staged = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(&tmp)
            .map_err(|e| AppError::io(&tmp, e))?;
        let io = |e| AppError::io(staged.path(), e);
        let mut file = tokio::fs::File::from_std(staged.reopen().map_err(io)?);
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            let chunk = chunk.as_ref();
            received += chunk.len() as u64;
            if received > max {
                return Err(AppError::TooLarge(too_large()));
            }
            file.write_all(chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        Ok((staged, received))
    }

    /// A stored media-relative path made absolute, checked to stay inside the
    /// folder (no root, no `..`).
    pub fn resolve(&self, rel: &str) -> AppResult<PathBuf> {
        let path = Path::new(rel);
        if !is_plain_relative(path) {
            return Err(AppError::Internal(format!(
                "invalid stored path {}",
                path.display()
            )));
        }
        Ok(self.root.join(path))
    }

    /// Removes what an interrupted run can leave: everything in `tmp/`,
    /// unfinished stem folders, and uploads that `is_known` does not claim
    /// (given the stored path, `uploads/{name}`).
    pub fn tidy(&self, is_known: impl Fn(&str) -> bool) -> AppResult<()> {
        remove_children(&self.tmp(), |_| true)?;
        if let Ok(tracks) = std::fs::read_dir(self.stems_root()) {
            for t in tracks.flatten() {
                remove_children(&t.path(), |name| name.starts_with('.'))?;
            }
        }
        remove_children(&self.uploads(), |name| !is_known(&Self::upload_rel(name)))
    }
}

/// `len` random hex digits, for names nobody can guess.
fn random_name(len: usize) -> String {
    let t = super::auth::generate_token();
    t.get(..len).unwrap_or(&t).to_owned()
}

/// True when `rel` is a plain relative path (no root, no `..`).
pub(crate) fn is_plain_relative(rel: &Path) -> bool {
    rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Removes the entries of `dir` whose names `pick` selects (files and folders).
fn remove_children(dir: &Path, pick: impl Fn(&str) -> bool) -> AppResult<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !pick(&name) {
            continue;
        }
        let path = e.path();
        let r = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        r.map_err(|e| AppError::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_resolve_inside_the_folder_only() {
        let m = MediaDir::new("/data/media");
        assert_eq!(
            m.resolve(&MediaDir::stem_rel(3, "htdemucs", "vocals.flac"))
                .ok(),
            Some(PathBuf::from("/data/media/stems/3/htdemucs/vocals.flac"))
        );
        for bad in ["../etc/passwd", "/etc/passwd", "stems/../../x"] {
            assert!(m.resolve(bad).is_err(), "{bad}");
        }
        assert_eq!(
            m.job_staging(3, "htdemucs", 9),
            PathBuf::from("/data/media/stems/3/.htdemucs.job9.tmp")
        );
    }
}
