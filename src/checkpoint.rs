//! The checkpoint file of `clawscrub follow`: where each followed file was read up to, and how
//! long each output file was, when the output covering it was last flushed.
//!
//! It names each file by device, inode and a fingerprint (SHA-256 of its first bytes, never
//! the bytes: they may hold a secret), so that a file rotated or replaced while clawscrub was
//! down is not resumed at a stranger's offset. It is written atomically (temporary file,
//! fsync, rename), so a crash leaves the old checkpoint or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;

/// The format version written and accepted.
pub const VERSION: u32 = 1;

/// How many leading bytes the fingerprint covers (fewer while the file is shorter).
pub const FINGERPRINT_LEN: usize = 256;

/// Everything `follow` needs to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// One entry per followed file.
    pub files: Vec<FileState>,
    /// For `--out-dir`: each output file's length when the checkpoint was taken. Anything
    /// beyond it was written after, and is cut off and written again on resume.
    #[serde(default)]
    pub outputs: BTreeMap<String, u64>,
}

/// Where one followed file was read up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileState {
    /// Its path when the checkpoint was taken.
    pub path: PathBuf,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Hex SHA-256 of its first `fingerprint_len` bytes.
    pub fingerprint: String,
    /// How many bytes the fingerprint covers.
    pub fingerprint_len: u64,
    /// The offset just after the last line written out.
    pub offset: u64,
    /// The output file (for `--out-dir`) its lines go to.
    #[serde(default)]
    pub output: Option<String>,
}

/// The fingerprint of a file's first bytes.
pub fn fingerprint(head: &[u8]) -> String {
    let digest = Sha256::digest(head);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    /// Reads a checkpoint; a missing file is an empty one (first run). A malformed file is an
    /// error naming it, never a guess.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, Error> {
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("{}: reading", path.display()), e)),
        };
        Checkpoint::parse(&text)
            .map(Some)
            .map_err(|message| Error::Config {
                path: path.to_path_buf(),
                message: format!("not a clawscrub follow checkpoint: {message}"),
            })
    }

    /// Parses and checks a checkpoint's text.
    pub fn parse(text: &[u8]) -> Result<Checkpoint, String> {
        let state: Checkpoint = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        if state.version != VERSION {
            return Err(format!(
                "version {} (this clawscrub reads version {VERSION})",
                state.version
            ));
        }
        for f in &state.files {
            let hex =
                f.fingerprint.len() == 64 && f.fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex || f.fingerprint_len > FINGERPRINT_LEN as u64 {
                return Err(format!("bad fingerprint for {}", f.path.display()));
            }
        }
        Ok(state)
    }

    /// Writes the checkpoint atomically: temporary file in the same directory, fsync, rename,
    /// fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let err =
            |what: &str, e: std::io::Error| Error::io(format!("{}: {what}", path.display()), e);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".clawscrub-state-")
            .tempfile_in(&dir)
            .map_err(|e| err("writing the checkpoint", e))?;
        let text = serde_json::to_vec(self).map_err(|e| err("writing the checkpoint", e.into()))?;
        temp.write_all(&text)
            .and_then(|()| temp.write_all(b"\n"))
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| err("writing the checkpoint", e))?;
        temp.persist(path)
            .map_err(|e| err("writing the checkpoint", e.error))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
