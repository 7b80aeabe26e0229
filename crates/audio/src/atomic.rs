//! Write-then-rename files: a reader never sees a half-written file, and a failed or
//! interrupted write leaves nothing behind (ARCHITECTURE.md, "Nothing partial").

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::AudioError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written under a temporary name next to its final path.
///
/// [`AtomicFile::commit`] flushes, syncs and renames it into place. Dropping it
/// without committing removes the temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file in the directory of `path` (which must exist).
    pub fn create(path: &Path) -> Result<Self, AudioError> {
        let name = path.file_name().ok_or_else(|| {
            AudioError::InvalidArgument(format!("{}: not a file path", path.display()))
        })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_name = format!(
            ".{}.{}-{}.partial",
            name.to_string_lossy(),
            std::process::id(),
            n
        );
        let temp_path = path.with_file_name(temp_name);
        let file = File::create(&temp_path).map_err(|e| AudioError::io(path, e))?;
        Ok(Self {
            final_path: path.to_path_buf(),
            temp_path,
            file: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The path the file will have once committed.
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Appends bytes.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), AudioError> {
        let path = &self.final_path;
        match self.file.as_mut() {
            Some(f) => f.write_all(bytes).map_err(|e| AudioError::io(path, e)),
            None => Err(AudioError::InvalidArgument("file already committed".into())),
        }
    }

    /// Overwrites bytes at `offset` (for headers whose sizes are known only at the end),
    /// then returns to the end of the file.
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<(), AudioError> {
        let path = &self.final_path;
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| AudioError::InvalidArgument("file already committed".into()))?;
        let io = |e| AudioError::io(path, e);
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(())
    }

    /// Flushes and syncs the data, then renames the file into place.
    pub fn commit(mut self) -> Result<PathBuf, AudioError> {
        let path = self.final_path.clone();
        if let Some(writer) = self.file.take() {
            let file = writer
                .into_inner()
                .map_err(|e| AudioError::io(&path, e.into_error()))?;
            file.sync_all().map_err(|e| AudioError::io(&path, e))?;
        }
        fs::rename(&self.temp_path, &path).map_err(|e| AudioError::io(&path, e))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the rename itself durable; not every filesystem allows opening a
            // directory, and the data is already safe, so a failure here is ignored.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(path)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_file_leaves_nothing_behind() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("out.flac");
        {
            let mut f = AtomicFile::create(&target)?;
            f.write_all(b"half")?;
        }
        assert_eq!(fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn committed_file_appears_whole() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("out.bin");
        let mut f = AtomicFile::create(&target)?;
        f.write_all(b"0000rest")?;
        f.patch(0, b"HEAD")?;
        f.write_all(b"!")?;
        assert!(!target.exists());
        f.commit()?;
        assert_eq!(fs::read(&target)?, b"HEADrest!");
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
