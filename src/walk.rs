//! Finding the files a bulk scrub or an audit works on: transcripts and logs under the given
//! paths, or OpenClaw's own layout under its state directory, and the SQLite transcript stores.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::Error;

/// File names walked for when no `--glob` is given.
pub const DEFAULT_GLOBS: [&str; 2] = ["*.jsonl", "*.log"];

/// The name of OpenClaw's SQLite transcript store (versions from 2026.8).
pub const TRANSCRIPT_STORE: &str = "openclaw-agent.sqlite";

/// Files in the state directory that hold secrets by design and are never touched.
const NEVER: [&str; 2] = ["credentials", "auth-profiles.json"];

/// What a file holds, which decides how it is scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Lines of text or JSONL.
    Lines,
    /// A SQLite database with a `transcript_events` table.
    Database,
}

/// One file to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the root it was found under (its name, for a file given by
    /// name): where `--out DIR` puts its copy.
    pub rel: PathBuf,
    /// Lines or database.
    pub kind: TargetKind,
    /// Its size when found, for progress.
    pub len: u64,
}

/// A path passed over, and why; reported, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path.
    pub path: PathBuf,
    /// Why: a symlink leaving the tree, an unreadable directory, …
    pub reason: String,
}

/// The files found, sorted by path, and what was passed over.
#[derive(Debug, Default)]
pub struct Found {
    /// Files to work on.
    pub targets: Vec<Target>,
    /// Paths passed over.
    pub skipped: Vec<Skipped>,
}

/// Compiles `--glob` patterns (matched against file names, or against the path relative to
/// the root when a pattern has a `/`); none means [`DEFAULT_GLOBS`].
pub fn globs(patterns: &[String]) -> Result<GlobSet, Error> {
    let mut builder = GlobSetBuilder::new();
    let defaults: Vec<String> = DEFAULT_GLOBS.iter().map(|g| g.to_string()).collect();
    let patterns = if patterns.is_empty() {
        &defaults
    } else {
        patterns
    };
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| Error::rule("--glob", format!("`{p}`: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| Error::rule("--glob", e.to_string()))
}

/// OpenClaw's state directory: `$OPENCLAW_STATE_DIR`, else `~/.openclaw`.
pub fn state_dir() -> Option<PathBuf> {
    match std::env::var_os("OPENCLAW_STATE_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|home| Path::new(&home).join(".openclaw")),
    }
}

/// Walks `roots`: a file is taken as given (a database when it is one); a directory yields
/// the files matching `globs` and every [`TRANSCRIPT_STORE`] below it. Symlinks are not
/// followed: one pointing inside the tree names a file the walk reaches anyway, one pointing
/// out of it is reported as skipped.
pub fn walk(roots: &[PathBuf], globs: &GlobSet) -> Result<Found, Error> {
    let mut found = Found::default();
    for root in roots {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root.display().to_string(), e))?;
        if meta.is_file() {
            let rel = PathBuf::from(root.file_name().unwrap_or(root.as_os_str()));
            found.targets.push(target(root.clone(), rel, meta.len()));
            continue;
        }
        let canonical_root = root
            .canonicalize()
            .map_err(|e| Error::io(root.display().to_string(), e))?;
        for entry in walkdir::WalkDir::new(root).follow_links(false) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_path_buf();
                    found.skipped.push(Skipped {
                        path,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
            if entry.path_is_symlink() {
                let inside = entry
                    .path()
                    .canonicalize()
                    .is_ok_and(|p| p.starts_with(&canonical_root));
                if !inside && wanted(rel, globs) {
                    found.skipped.push(Skipped {
                        path: entry.path().to_path_buf(),
                        reason: "symlink out of the tree".into(),
                    });
                }
                continue;
            }
            if !entry.file_type().is_file() || !wanted(rel, globs) {
                continue;
            }
            let len = entry.metadata().map_or(0, |m| m.len());
            found
                .targets
                .push(target(entry.path().to_path_buf(), rel.to_path_buf(), len));
        }
    }
    found.targets.sort_by(|a, b| a.path.cmp(&b.path));
    found.targets.dedup_by(|a, b| a.path == b.path);
    Ok(found)
}

/// OpenClaw's files under its state directory `state`: session transcripts, logs and
/// transcript stores; never credentials.
pub fn openclaw_layout(state: &Path) -> Result<Found, Error> {
    let mut builder = GlobSetBuilder::new();
    for p in [
        "agents/*/sessions/*.jsonl",
        "logs/*.log",
        "logs/*.jsonl",
        "agents/*/agent/openclaw-agent.sqlite",
    ] {
        let glob = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::rule("state layout", e.to_string()))?;
        builder.add(glob);
    }
    let layout = builder
        .build()
        .map_err(|e| Error::rule("state layout", e.to_string()))?;
    walk(&[state.to_path_buf()], &layout)
}

fn wanted(rel: &Path, globs: &GlobSet) -> bool {
    if rel
        .components()
        .any(|c| NEVER.iter().any(|n| c.as_os_str() == *n))
    {
        return false;
    }
    let name = rel.file_name().map(Path::new).unwrap_or(rel);
    name == Path::new(TRANSCRIPT_STORE) || globs.is_match(name) || globs.is_match(rel)
}

fn target(path: PathBuf, rel: PathBuf, len: u64) -> Target {
    let kind = if is_sqlite(&path) {
        TargetKind::Database
    } else {
        TargetKind::Lines
    };
    Target {
        path,
        rel,
        kind,
        len,
    }
}

/// True when the file starts with SQLite's header.
fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}
