//! `clawscrub follow`: files followed like `tail -F`, scrubbed line by line, with checkpoints
//! so that a restart (even after `kill -9`) resumes just after the last line written.
//!
//! Files are known by device and inode, not by name: a file renamed by rotation keeps being
//! read to its end (and is not taken for a new file if its new name matches the pattern
//! too), the new file at the old name is read from its start, and a file shorter than what
//! was read (copytruncate) is read again from 0. The caller drives [`Follower::tick`] when
//! the file system says something changed (or on a timer) and [`Follower::checkpoint`] after.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobMatcher};

use crate::checkpoint::{fingerprint, Checkpoint, FileState, FINGERPRINT_LEN, VERSION};
use crate::error::Error;
use crate::stats::Stats;
use crate::stream::Filter;
use crate::Scrubber;

/// At most this much is read from one file per tick, so that one busy file does not starve
/// the others.
const READ_PER_TICK: usize = 8 << 20;

/// How long a file renamed away or deleted is still read, for writers that still hold it.
const GONE_GRACE: Duration = Duration::from_secs(2);

/// How scrubbed lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// As they are.
    Plain,
    /// `{"path":…,"line":…}`, one object per line.
    Json,
}

/// What to follow and where to write.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Files, or globs in the last path component (`/tmp/openclaw/openclaw-*.log`).
    pub patterns: Vec<PathBuf>,
    /// Read files present at start from their beginning, not their end.
    pub from_beginning: bool,
    /// Output line format.
    pub format: LineFormat,
    /// Mirror each input file into this directory instead of writing to stdout.
    pub out_dir: Option<PathBuf>,
    /// The checkpoint file.
    pub state: Option<PathBuf>,
    /// A last line without its newline is written after waiting this long.
    pub partial_timeout: Duration,
}

/// A followed file.
struct Tailed<'a> {
    path: PathBuf,
    /// The `--out-dir` file its lines go to: named after the file when first seen, and kept
    /// when it is renamed by rotation.
    output: String,
    file: File,
    id: (u64, u64),
    /// Input bytes whose lines have been written.
    offset: u64,
    /// Bytes read after `offset`: the start of a line whose newline has not come yet.
    pending: Vec<u8>,
    pending_since: Option<Instant>,
    filter: Filter<'a, Vec<u8>>,
    /// When it was found renamed out of the patterns or deleted: it is read on for
    /// [`GONE_GRACE`] (a writer may still hold it open), then dropped.
    gone_since: Option<Instant>,
    /// The file's first bytes as last seen: a file truncated and rewritten past our offset
    /// between two looks is known by its new head.
    head: Vec<u8>,
}

/// How many leading bytes of each followed file are kept to notice it was rewritten.
const HEAD_LEN: usize = 64;

/// An output file of `--out-dir`.
struct OutFile {
    file: File,
    len: u64,
}

/// Where scrubbed lines go.
struct Sink {
    format: LineFormat,
    out_dir: Option<PathBuf>,
    outputs: BTreeMap<String, OutFile>,
    /// Output lengths from the checkpoint, applied when each output is first opened.
    output_marks: BTreeMap<String, u64>,
    stdout: io::Stdout,
    /// Something was written since the last checkpoint.
    dirty: bool,
}

/// The follow loop's state.
pub struct Follower<'a> {
    scrubber: &'a Scrubber,
    options: FollowOptions,
    patterns: Vec<(PathBuf, GlobMatcher)>,
    files: Vec<Tailed<'a>>,
    sink: Sink,
    /// Checkpoint entries not yet matched to a file.
    resume: Vec<FileState>,
    resuming: bool,
    /// When the checkpoint was written: rotated files written since are read on resume.
    checkpoint_time: Option<std::time::SystemTime>,
    first_scan: bool,
    retired: Stats,
    buf: Vec<u8>,
}

impl<'a> Follower<'a> {
    /// Reads the checkpoint (if any) and compiles the patterns.
    pub fn new(scrubber: &'a Scrubber, options: FollowOptions) -> Result<Follower<'a>, Error> {
        let mut patterns = Vec::new();
        for p in &options.patterns {
            let name = p
                .file_name()
                .ok_or_else(|| Error::rule("follow", format!("`{}` names no file", p.display())))?
                .to_string_lossy()
                .into_owned();
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let glob = GlobBuilder::new(&name)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::rule("follow", format!("`{}`: {e}", p.display())))?;
            patterns.push((dir, glob.compile_matcher()));
        }
        let checkpoint = match &options.state {
            Some(path) => Checkpoint::load(path)?,
            None => None,
        };
        let resuming = checkpoint.is_some();
        let checkpoint_time = options
            .state
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok());
        let checkpoint = checkpoint.unwrap_or_default();
        Ok(Follower {
            scrubber,
            patterns,
            files: Vec::new(),
            sink: Sink {
                format: options.format,
                out_dir: options.out_dir.clone(),
                outputs: BTreeMap::new(),
                output_marks: checkpoint.outputs,
                stdout: io::stdout(),
                dirty: false,
            },
            resume: checkpoint.files,
            resuming,
            checkpoint_time,
            first_scan: true,
            retired: Stats::default(),
            buf: vec![0; 256 * 1024],
            options,
        })
    }

    /// The directories holding the followed files, for a file-system watch.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.patterns.iter().map(|(d, _)| d.clone()).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Finds new and rotated files, reads what was appended, writes the scrubbed lines and
    /// the partial lines that waited long enough. Returns whether anything was written.
    pub fn tick(&mut self) -> Result<bool, Error> {
        self.discover()?;
        let mut wrote = false;
        let mut i = 0;
        while i < self.files.len() {
            let t = &mut self.files[i];
            wrote |= pump(
                t,
                &mut self.sink,
                &mut self.buf,
                self.scrubber,
                self.options.partial_timeout,
            )?;
            if t.gone_since
                .is_some_and(|since| since.elapsed() >= GONE_GRACE)
            {
                let mut t = self.files.remove(i);
                if !t.pending.is_empty() {
                    let pending = std::mem::take(&mut t.pending);
                    self.sink.emit(&mut t, &pending, true)?;
                    wrote = true;
                }
                self.retired.merge(&t.filter.stats());
                continue;
            }
            i += 1;
        }
        Ok(wrote)
    }

    /// When the next partial line times out, if one waits.
    pub fn next_deadline(&self) -> Option<Instant> {
        let partial = self
            .files
            .iter()
            .filter_map(|t| t.pending_since)
            .map(|since| since + self.options.partial_timeout);
        let gone = self
            .files
            .iter()
            .filter_map(|t| t.gone_since)
            .map(|since| since + GONE_GRACE);
        partial.chain(gone).min()
    }

    /// Flushes (and for `--out-dir`, fsyncs) what was written, then records how far each
    /// file was read. Does nothing when nothing was written since the last checkpoint.
    pub fn checkpoint(&mut self) -> Result<(), Error> {
        if !self.sink.dirty {
            return Ok(());
        }
        self.sink
            .stdout
            .flush()
            .map_err(|e| Error::io("writing output", e))?;
        for (name, out) in &self.sink.outputs {
            out.file
                .sync_data()
                .map_err(|e| Error::io(format!("{name}: syncing output"), e))?;
        }
        self.sink.dirty = false;
        let Some(state_path) = self.options.state.clone() else {
            return Ok(());
        };
        let mut files = Vec::new();
        for t in &self.files {
            let mut head = vec![0u8; FINGERPRINT_LEN];
            let n = read_head(&t.file, &mut head);
            files.push(FileState {
                path: t.path.clone(),
                dev: t.id.0,
                ino: t.id.1,
                fingerprint: fingerprint(&head[..n]),
                fingerprint_len: n as u64,
                offset: t.offset,
                output: Some(t.output.clone()),
            });
        }
        let state = Checkpoint {
            version: VERSION,
            files,
            outputs: self
                .sink
                .outputs
                .iter()
                .map(|(name, out)| (name.clone(), out.len))
                .collect(),
        };
        state.save(&state_path)
    }

    /// Reopens the `--out-dir` files (after logrotate moved them away).
    pub fn reopen_outputs(&mut self) {
        self.sink.outputs.clear();
        self.sink.output_marks.clear();
    }

    /// Prometheus text: lines, bytes, redactions by rule, files followed, lag per file.
    pub fn metrics(&self) -> String {
        let mut total = self.retired.clone();
        for t in &self.files {
            total.merge(&t.filter.stats());
        }
        let mut s = String::new();
        s.push_str(
            "# HELP clawscrub_lines_total Lines scrubbed.\n# TYPE clawscrub_lines_total counter\n",
        );
        s.push_str(&format!("clawscrub_lines_total {}\n", total.lines));
        s.push_str(
            "# HELP clawscrub_bytes_total Bytes read.\n# TYPE clawscrub_bytes_total counter\n",
        );
        s.push_str(&format!("clawscrub_bytes_total {}\n", total.bytes_in));
        s.push_str("# HELP clawscrub_redactions_total Secrets replaced, by rule.\n# TYPE clawscrub_redactions_total counter\n");
        for (rule, n) in &total.by_rule {
            s.push_str(&format!(
                "clawscrub_redactions_total{{rule=\"{rule}\"}} {n}\n"
            ));
        }
        s.push_str("# HELP clawscrub_files_followed Files being followed.\n# TYPE clawscrub_files_followed gauge\n");
        s.push_str(&format!("clawscrub_files_followed {}\n", self.files.len()));
        s.push_str("# HELP clawscrub_lag_bytes Bytes in a file not yet written out.\n# TYPE clawscrub_lag_bytes gauge\n");
        for t in &self.files {
            let len = t.file.metadata().map_or(t.offset, |m| m.len());
            let path = t
                .path
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            s.push_str(&format!(
                "clawscrub_lag_bytes{{path=\"{path}\",inode=\"{}\"}} {}\n",
                t.id.1,
                len.saturating_sub(t.offset)
            ));
        }
        s
    }

    fn discover(&mut self) -> Result<(), Error> {
        let mut seen: HashSet<(u64, u64)> = HashSet::new();
        let mut found: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
        for (dir, glob) in &self.patterns {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue; // Not there (yet).
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if !glob.is_match(entry.file_name()) {
                    continue;
                }
                if let Ok(meta) = std::fs::metadata(&path) {
                    if meta.is_file() && seen.insert((meta.dev(), meta.ino())) {
                        found.push((path, meta));
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, meta) in found {
            let id = (meta.dev(), meta.ino());
            if let Some(t) = self.files.iter_mut().find(|t| t.id == id) {
                t.path = path;
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue; // Gone already, or unreadable: looked at again next tick.
            };
            let (offset, output) = self.start_offset(&file, id, meta.len());
            let mut t = self.tailed(path, file, id, offset)?;
            if let Some(output) = output {
                t.output = output;
            }
            self.files.push(t);
        }
        for t in &mut self.files {
            if seen.contains(&t.id) {
                t.gone_since = None;
            } else if t.gone_since.is_none() {
                t.gone_since = Some(Instant::now());
            }
        }
        if self.first_scan {
            self.resume_rotated()?;
            // Files rotated away while we were down: read the rest of each, from its old
            // directory, if its inode is still there under any name.
            for state in std::mem::take(&mut self.resume) {
                if let Some((path, file)) = find_inode(&state) {
                    let id = (state.dev, state.ino);
                    let mut t = self.tailed(path, file, id, state.offset)?;
                    if let Some(output) = state.output {
                        t.output = output;
                    }
                    t.gone_since = Some(Instant::now());
                    self.files.push(t);
                }
            }
        }
        self.first_scan = false;
        Ok(())
    }

    /// On resume: files made and rotated away while we were down (`app.log.1`, `app.log-2`
    /// beside a followed `app.log`), unknown to the checkpoint but written after it, are read
    /// whole.
    fn resume_rotated(&mut self) -> Result<(), Error> {
        let Some(since) = self.checkpoint_time else {
            return Ok(());
        };
        let known: HashSet<(u64, u64)> = self
            .files
            .iter()
            .map(|t| t.id)
            .chain(self.resume.iter().map(|s| (s.dev, s.ino)))
            .collect();
        let names: Vec<(PathBuf, String)> = self
            .files
            .iter()
            .filter_map(|t| Some((t.path.parent()?.to_path_buf(), output_name(&t.path))))
            .collect();
        let mut found = Vec::new();
        for (dir, name) in &names {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                let other = entry.file_name().to_string_lossy().into_owned();
                let sibling = other.len() > name.len()
                    && other.starts_with(name.as_str())
                    && matches!(other.as_bytes()[name.len()], b'.' | b'-' | b'_');
                let fresh = meta.modified().is_ok_and(|m| m > since);
                if sibling && fresh && meta.is_file() && !known.contains(&(meta.dev(), meta.ino()))
                {
                    found.push((entry.path(), (meta.dev(), meta.ino()), name.clone()));
                }
            }
        }
        found.sort();
        for (path, id, output) in found {
            if let Ok(file) = File::open(&path) {
                let mut t = self.tailed(path, file, id, 0)?;
                t.output = output;
                t.gone_since = Some(Instant::now());
                self.files.push(t);
            }
        }
        Ok(())
    }

    /// Where to start reading a file seen for the first time, and its output when the
    /// checkpoint names one.
    fn start_offset(&mut self, file: &File, id: (u64, u64), len: u64) -> (u64, Option<String>) {
        if let Some(k) = self
            .resume
            .iter()
            .position(|s| (s.dev, s.ino) == id && same_head(file, s))
        {
            let state = self.resume.remove(k);
            let offset = if state.offset <= len { state.offset } else { 0 };
            return (offset, state.output);
        }
        (self.offset_for_new(file, len), None)
    }

    fn offset_for_new(&self, file: &File, len: u64) -> u64 {
        if self.first_scan && !self.resuming && !self.options.from_beginning {
            // From the end, but from the start of the line being written.
            let from = len.saturating_sub(64 * 1024);
            let mut tail = vec![0u8; (len - from) as usize];
            if file.read_exact_at(&mut tail, from).is_ok() {
                return match memchr::memrchr(b'\n', &tail) {
                    Some(i) => from + i as u64 + 1,
                    None if from == 0 => 0,
                    None => len,
                };
            }
            return len;
        }
        0
    }

    fn tailed(
        &self,
        path: PathBuf,
        mut file: File,
        id: (u64, u64),
        offset: u64,
    ) -> Result<Tailed<'a>, Error> {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("{}: reading", path.display()), e))?;
        Ok(Tailed {
            output: output_name(&path),
            path,
            file,
            id,
            offset,
            pending: Vec::new(),
            pending_since: None,
            filter: Filter::new(self.scrubber, Vec::new()),
            gone_since: None,
            head: Vec::new(),
        })
    }
}

impl Sink {
    /// Scrubs `data` (whole lines, or with `last` a final partial line) from `t` and writes
    /// it out, then moves `t`'s offset past it.
    fn emit(&mut self, t: &mut Tailed<'_>, data: &[u8], last: bool) -> Result<(), Error> {
        t.filter.feed(data, last)?;
        let mut out = std::mem::take(t.filter.writer_mut());
        if last && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        let out = match self.format {
            LineFormat::Plain => out,
            LineFormat::Json => {
                let path = t.path.display().to_string();
                let mut wrapped = Vec::with_capacity(out.len() + 64);
                for line in out.split_inclusive(|&b| b == b'\n') {
                    let line = line.strip_suffix(b"\n").unwrap_or(line);
                    let record = serde_json::json!({
                        "path": path,
                        "line": String::from_utf8_lossy(line),
                    });
                    serde_json::to_writer(&mut wrapped, &record)
                        .map_err(|e| Error::io("writing output", e.into()))?;
                    wrapped.push(b'\n');
                }
                wrapped
            }
        };
        match &self.out_dir {
            None => self
                .stdout
                .lock()
                .write_all(&out)
                .map_err(|e| Error::io("writing output", e))?,
            Some(dir) => {
                let name = t.output.clone();
                let target = self.output(dir.clone(), &name)?;
                target
                    .file
                    .write_all(&out)
                    .map_err(|e| Error::io(format!("{name}: writing output"), e))?;
                target.len += out.len() as u64;
            }
        }
        t.offset += data.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// The output file `name` under `dir`, opened for appending. The first time it is opened
    /// in a run, whatever was written after the last checkpoint is cut off: those lines are
    /// read and written again, so each line is in the output exactly once.
    fn output(&mut self, dir: PathBuf, name: &str) -> Result<&mut OutFile, Error> {
        if !self.outputs.contains_key(name) {
            let path = dir.join(name);
            let err = |e: io::Error| Error::io(format!("{}: opening output", path.display()), e);
            std::fs::create_dir_all(&dir).map_err(err)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(err)?;
            let mut len = file.metadata().map_err(err)?.len();
            if let Some(&mark) = self.output_marks.get(name) {
                if mark < len {
                    file.set_len(mark).map_err(err)?;
                    len = mark;
                }
            }
            self.outputs.insert(name.to_string(), OutFile { file, len });
        }
        self.outputs
            .get_mut(name)
            .ok_or_else(|| Error::io(name.to_string(), io::ErrorKind::NotFound.into()))
    }
}

/// Reads what was appended to `t` and writes its complete lines, and its partial line when
/// it waited `partial_timeout`. Returns whether anything was written.
fn pump<'a>(
    t: &mut Tailed<'a>,
    sink: &mut Sink,
    buf: &mut [u8],
    scrubber: &'a Scrubber,
    partial_timeout: Duration,
) -> Result<bool, Error> {
    let path = t.path.clone();
    let read_err = |e: io::Error| Error::io(format!("{}: reading", path.display()), e);
    let len = t.file.metadata().map_err(read_err)?.len();
    let mut wrote = false;
    let mut head = [0u8; HEAD_LEN];
    let head_len = read_head(
        &t.file,
        &mut head[..t.head.len().max(len.min(HEAD_LEN as u64) as usize)],
    );
    let rewritten = head[..head_len.min(t.head.len())] != t.head[..head_len.min(t.head.len())];
    t.head.clear();
    t.head.extend_from_slice(&head[..head_len]);
    if len < t.offset + t.pending.len() as u64 || rewritten {
        // Truncated in place (copytruncate): the file starts over.
        t.offset = 0;
        t.pending.clear();
        t.pending_since = None;
        t.filter = Filter::new(scrubber, Vec::new());
        t.file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    }
    let mut read = 0;
    while read < READ_PER_TICK {
        let n = match t.file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        read += n;
        t.pending.extend_from_slice(&buf[..n]);
        if let Some(last) = memchr::memrchr(b'\n', &t.pending) {
            let rest = t.pending.split_off(last + 1);
            let lines = std::mem::replace(&mut t.pending, rest);
            sink.emit(t, &lines, false)?;
            wrote = true;
            t.pending_since = None;
        }
        if !t.pending.is_empty() && t.pending_since.is_none() {
            t.pending_since = Some(Instant::now());
        }
    }
    let timed_out = t
        .pending_since
        .is_some_and(|since| since.elapsed() >= partial_timeout);
    if timed_out && t.gone_since.is_none() {
        let pending = std::mem::take(&mut t.pending);
        sink.emit(t, &pending, true)?;
        t.pending_since = None;
        wrote = true;
    }
    Ok(wrote)
}

/// The output file name for an input: its file name.
fn output_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || "output".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Reads up to `buf.len()` bytes from the start of `file`.
fn read_head(file: &File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// True when `file` starts with the bytes `state` fingerprinted.
fn same_head(file: &File, state: &FileState) -> bool {
    let mut head = vec![0u8; state.fingerprint_len as usize];
    read_head(file, &mut head) == head.len() && fingerprint(&head) == state.fingerprint
}

/// The file a checkpoint entry names, under any name in its old directory.
fn find_inode(state: &FileState) -> Option<(PathBuf, File)> {
    let dir = state.path.parent()?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() && (meta.dev(), meta.ino()) == (state.dev, state.ino) {
            let file = File::open(entry.path()).ok()?;
            if same_head(&file, state) && state.offset <= meta.len() {
                return Some((entry.path(), file));
            }
        }
    }
    None
}
