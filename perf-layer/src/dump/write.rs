//! Writing a dump atomically: a unique temporary file in the destination's
//! directory, synced, then renamed over the destination.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Dump;

/// Why a dump could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpWriteError {
    /// Creating, writing or renaming the file failed.
    #[error(
        "cannot write dump to {path}: {source}; check that the directory exists, is writable and has free space"
    )]
    Io {
        /// The dump's destination.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Serialization failed (it does not, for dumps this crate builds).
    #[error("cannot serialize dump: {0}")]
    Json(#[from] serde_json::Error),
}

impl Dump {
    /// Serializes the dump as pretty JSON into `writer`.
    ///
    /// # Errors
    /// Any I/O error of `writer`.
    pub fn to_writer<W: Write>(&self, writer: W) -> Result<(), serde_json::Error> {
        serde_json::to_writer_pretty(writer, self)
    }

    /// Writes the dump to `path` atomically: into a temporary file in the same
    /// directory, flushed to disk, then renamed over `path`. A crash at any
    /// point leaves either the previous dump or the new one, never half of one.
    /// On Unix the file is created readable by its owner only.
    ///
    /// # Errors
    /// [`DumpWriteError::Io`] naming the path; the previous file is untouched.
    pub fn write_atomic(&self, path: &Path) -> Result<(), DumpWriteError> {
        let io_err = |source| DumpWriteError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = path.file_name().ok_or_else(|| {
            io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        })?;
        // A name no other write uses, in this process or another: two
        // threads writing the same path at once (a periodic dump and an
        // explicit one) must not share, and tear, one temporary file.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let mut tmp_name = file_name.to_owned();
        tmp_name.push(format!(
            ".tmp{}.{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = dir.join(tmp_name);

        let result = (|| {
            let mut options = fs::OpenOptions::new();
            // `create_new`: never reuse a stale file (and its permissions)
            // that a crashed run may have left under this name.
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(&tmp)?;
            let mut writer = io::BufWriter::new(file);
            self.to_writer(&mut writer).map_err(io::Error::other)?;
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        Ok(())
    }
}
