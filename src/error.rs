//! Typed errors. Messages name the file, rule or pattern at fault and never quote input text,
//! because input text (and user patterns) may be the very secrets we exist to hide.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while building a [`crate::Scrubber`] or running it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule file or rule definition is malformed.
    #[error("{origin}: {message}")]
    Rule {
        /// Where the rule came from: `patterns/keys.toml`, a `--rules` path, `--pattern #2`.
        origin: String,
        /// What is wrong, naming the rule id when there is one.
        message: String,
    },
    /// The OpenClaw configuration file could not be used.
    #[error("{}: {message}", path.display())]
    Config {
        /// The `openclaw.json` path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `--mask` value or the hash key is unusable.
    #[error("mask: {0}")]
    Mask(String),
    /// A SQLite transcript store could not be read or updated.
    #[error("{}: {message}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// A file was replaced by its scrubbed copy, and then carrying over what a writer
    /// appended to the old file after the rename failed: that may be missing. Unlike every
    /// other error of a file scrubbed in place, the file is not left unchanged.
    #[error("{source} (the file was replaced by its scrubbed copy; lines written to the old file after that may be missing)")]
    AfterReplace {
        /// What failed.
        source: Box<Error>,
    },
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn rule(origin: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Rule {
            origin: origin.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the error is a closed pipe downstream, which a filter treats as a quiet end.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}
