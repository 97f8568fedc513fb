//! Scrubbing files already on disk: in place, atomically and losing no line that is appended
//! meanwhile, or into a mirror tree; files in parallel, and large files in chunks scrubbed in
//! parallel and written in order.
//!
//! In place, a file is compared with its scrubbed output as the output is made, and a
//! temporary file is only started at the first difference (with the identical head copied
//! in): a file with nothing to redact is read, never written, so a second run over a scrubbed
//! tree touches nothing.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, FileTimes, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use tempfile::NamedTempFile;

use crate::error::Error;
use crate::report::Located;
use crate::stats::Stats;
use crate::stream::Filter;
use crate::walk::{Target, TargetKind};
use crate::{sqlite, Finding, Scrubber};

/// How much of the text before a chunk is scrubbed (output discarded) to set up the state a
/// multi-line secret carries from line to line: more than a PEM block's longest run.
const CONTEXT: usize = 128 * 1024;

/// Where scrubbed files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// Over the originals, each atomically.
    InPlace,
    /// Under this directory, at each target's relative path.
    Mirror(PathBuf),
}

/// How a bulk scrub writes its results.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// In place or into a mirror tree.
    pub dest: Dest,
    /// Give a rewritten file its original modification time back.
    pub keep_mtime: bool,
    /// Keep each original rewritten in place as a hard link with this suffix added.
    pub backup_suffix: Option<OsString>,
    /// Size of the chunks a large file is split into (cut back to a newline).
    pub chunk_size: usize,
    /// Files at least this large are scrubbed in parallel chunks (when there are threads).
    pub parallel_min: u64,
}

impl Default for BulkOptions {
    fn default() -> BulkOptions {
        BulkOptions {
            dest: Dest::InPlace,
            keep_mtime: false,
            backup_suffix: None,
            chunk_size: 2 << 20,
            parallel_min: 16 << 20,
        }
    }
}

/// Counters a progress display reads while the work goes on.
#[derive(Debug, Default)]
pub struct Progress {
    /// Files finished (done or failed).
    pub files: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
    /// Secrets replaced, counted as each file finishes.
    pub redactions: AtomicU64,
}

/// What scrubbing one file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Lines, bytes and redactions.
    pub stats: Stats,
    /// Whether a file was written: an in-place file with nothing to redact is not.
    pub rewritten: bool,
    /// Bytes a writer appended to the old file in the instant between the last check and the
    /// rename, or after the rename to finish a line; they were scrubbed and appended to the
    /// new file.
    pub late_bytes: u64,
}

/// Scrubs every target, files in parallel on the current rayon pool; results are in the
/// order of `targets`. A failed file is left as it was.
pub fn scrub_all(
    scrubber: &Scrubber,
    targets: &[Target],
    options: &BulkOptions,
    progress: &Progress,
) -> Vec<Result<Outcome, Error>> {
    targets
        .par_iter()
        .map(|t| {
            let result = scrub_target(scrubber, t, options, progress);
            progress.files.fetch_add(1, Ordering::Relaxed);
            if let Ok(outcome) = &result {
                progress
                    .redactions
                    .fetch_add(outcome.stats.redactions, Ordering::Relaxed);
            }
            result
        })
        .collect()
}

/// Scrubs one target as `options` say.
pub fn scrub_target(
    scrubber: &Scrubber,
    target: &Target,
    options: &BulkOptions,
    progress: &Progress,
) -> Result<Outcome, Error> {
    match (target.kind, &options.dest) {
        (TargetKind::Lines, Dest::InPlace) => {
            scrub_lines(scrubber, &target.path, None, options, progress)
        }
        (TargetKind::Lines, Dest::Mirror(dir)) => {
            let dest = dir.join(&target.rel);
            scrub_lines(scrubber, &target.path, Some(&dest), options, progress)
        }
        (TargetKind::Database, Dest::InPlace) => {
            let outcome = sqlite::scrub_database(scrubber, &target.path)?;
            progress.bytes.fetch_add(target.len, Ordering::Relaxed);
            Ok(outcome)
        }
        (TargetKind::Database, Dest::Mirror(dir)) => {
            let dest = dir.join(&target.rel);
            create_parent(&dest)?;
            sqlite::copy_database(&target.path, &dest)?;
            let mut outcome = sqlite::scrub_database(scrubber, &dest)?;
            outcome.rewritten = true;
            progress.bytes.fetch_add(target.len, Ordering::Relaxed);
            Ok(outcome)
        }
    }
}

/// How long a file that ends in the middle of a line is given for the rest of that line. A
/// writer writes a line's pieces microseconds apart.
const LINE_END_WAIT: Duration = Duration::from_millis(100);

/// How long one file's scrub waits for line ends in all, never restarted: the wait for each
/// line starts again at every newline, so a writer that goes on writing lines in pieces, with
/// pauses between them, would otherwise hold the scrub for as long as it writes.
const LINE_END_WAIT_TOTAL: Duration = Duration::from_secs(1);

/// A file last modified longer ago than this has no writer in the middle of a line: it just
/// lacks a final newline, and is not waited for.
const WRITER_GONE: Duration = Duration::from_secs(1);

/// Waiting, up to [`LINE_END_WAIT`] for each line and [`LINE_END_WAIT_TOTAL`] in all, for a
/// file that ends in the middle of a line to end it. A writer that writes one line in pieces
/// through one open file (`writeln!`, a logger's stream) would otherwise have its line
/// scrubbed in pieces, each on its own (a secret split between them stays partly in clear),
/// and the rest of it land in the old file after the rename.
#[derive(Default)]
struct LineEndWait {
    /// Time spent sleeping for the line cut short: the scrubbing, sync and rename in between
    /// do not count.
    waited: Duration,
    /// Time spent sleeping for all the lines of the file.
    total: Duration,
}

impl LineEndWait {
    /// Notes bytes read: a newline among them ends the line waited for, if any, and the
    /// next line cut short has the whole time again.
    fn saw(&mut self, bytes: &[u8]) {
        if self.waited > Duration::ZERO && memchr::memchr(b'\n', bytes).is_some() {
            self.waited = Duration::ZERO;
        }
    }

    /// Whether to look again for the rest of a line that `src` cuts short at `at`: there is
    /// time left, and the file has been written to lately and not truncated below `at`. If
    /// so, this has slept a millisecond.
    fn wait(&mut self, src: &File, at: u64) -> io::Result<bool> {
        if self.waited >= LINE_END_WAIT || self.total >= LINE_END_WAIT_TOTAL {
            return Ok(false);
        }
        let meta = src.metadata()?;
        // A file truncated meanwhile (`copytruncate`) has no line to finish.
        if meta.len() < at {
            return Ok(false);
        }
        // A file no one has written to for a second just lacks a final newline.
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age > WRITER_GONE) {
            return Ok(false);
        }
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
        let slept = started.elapsed();
        self.waited += slept;
        self.total += slept;
        Ok(true)
    }
}

/// Reads a file from a line start to its end, as far as the scrub is concerned: an end that
/// cuts a line short is only reported once [`LineEndWait`] gives up on the rest of it, so
/// that the filter sees the line whole.
struct WholeLines<'a> {
    src: &'a File,
    /// The offset of the next byte to read.
    at: u64,
    /// The last byte read: a newline at the start.
    last: u8,
    /// None for a mirror, whose source is never replaced: its reader takes the end as it is.
    line_end: Option<&'a mut LineEndWait>,
    progress: &'a Progress,
}

impl Read for WholeLines<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.src.read_at(buf, self.at)?;
            if let Some(&last) = buf[..n].last() {
                if let Some(line_end) = self.line_end.as_deref_mut() {
                    line_end.saw(&buf[..n]);
                }
                self.at += n as u64;
                self.last = last;
                self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(n);
            }
            let cut_short = self.last != b'\n' && !buf.is_empty();
            let look_again = match self.line_end.as_deref_mut() {
                Some(line_end) if cut_short => line_end.wait(self.src, self.at)?,
                _ => false,
            };
            if !look_again {
                return Ok(0);
            }
        }
    }
}

/// Scrubs a text file over itself (`dest` none) or into `dest`, through a temporary file in
/// the destination directory that is renamed into place once complete and synced.
fn scrub_lines(
    scrubber: &Scrubber,
    path: &Path,
    dest: Option<&Path>,
    options: &BulkOptions,
    progress: &Progress,
) -> Result<Outcome, Error> {
    let io_err = |what: &str, e: io::Error| Error::io(format!("{}: {what}", path.display()), e);
    let src = File::open(path).map_err(|e| io_err("opening", e))?;
    let meta = src.metadata().map_err(|e| io_err("reading metadata", e))?;
    if !meta.is_file() {
        return Err(io_err(
            "opening",
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    let target = dest.unwrap_or(path);
    if dest.is_some() {
        create_parent(target)?;
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(OsString::new, |n| n.to_os_string());
    let original = File::open(path).map_err(|e| io_err("opening", e))?;
    let mut out = Divergent::new(original, dir.clone(), name, dest.is_some())
        .map_err(|e| io_err("creating a temporary file", e))?;

    // In place, a line cut short by the end of the file is waited for, in all the reads below.
    // A mirror's source is not replaced: nothing written to it later is lost.
    let mut line_end = dest.is_none().then(LineEndWait::default);
    let (mut stats, mut read) = scrub_file(
        scrubber,
        &src,
        &mut out,
        line_end.as_mut(),
        options,
        progress,
        &io_err,
    )?;
    if !out.diverged() {
        return Ok(Outcome {
            stats,
            rewritten: false,
            late_bytes: 0,
        });
    }
    // Lines appended while we scrubbed: catch up until the file stands still, then sync.
    loop {
        let len = src
            .metadata()
            .map_err(|e| io_err("reading metadata", e))?
            .len();
        if len > read {
            let (tail_stats, end) = scrub_tail(
                scrubber,
                &src,
                read,
                &mut out,
                line_end.as_mut(),
                progress,
                &io_err,
            )?;
            stats.merge(&tail_stats);
            read = end;
            continue;
        }
        out.flush()
            .map_err(|e| io_err("writing the scrubbed copy", e))?;
        let Some(temp) = out.temp() else { break };
        let file = temp.as_file();
        file.set_permissions(meta.permissions())
            .map_err(|e| io_err("setting permissions", e))?;
        let written = file.metadata().map_err(|e| io_err("reading metadata", e))?;
        if (written.uid(), written.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
                .map_err(|e| io_err("keeping the owner", e))?;
        }
        if options.keep_mtime {
            let mut times = FileTimes::new();
            if let Ok(t) = meta.modified() {
                times = times.set_modified(t);
            }
            if let Ok(t) = meta.accessed() {
                times = times.set_accessed(t);
            }
            file.set_times(times)
                .map_err(|e| io_err("keeping the modification time", e))?;
        }
        file.sync_all()
            .map_err(|e| io_err("syncing the scrubbed copy", e))?;
        let len_now = src
            .metadata()
            .map_err(|e| io_err("reading metadata", e))?
            .len();
        if len_now == len {
            break;
        }
    }
    if dest.is_none() {
        if let Some(suffix) = &options.backup_suffix {
            let mut backup = path.as_os_str().to_os_string();
            backup.push(suffix);
            std::fs::hard_link(path, &backup).map_err(|e| {
                Error::io(
                    format!("{}: keeping a backup", Path::new(&backup).display()),
                    e,
                )
            })?;
        }
    }
    let Some(temp) = out.into_temp() else {
        unreachable!("checked above: the output diverged");
    };
    // What the new file holds of ours: past it, only a writer that reopened the file writes.
    let renamed_len = temp
        .as_file()
        .metadata()
        .map_err(|e| io_err("reading metadata", e))?
        .len();
    temp.persist(target)
        .map_err(|e| io_err("renaming the scrubbed copy into place", e.error))?;
    if let Ok(d) = File::open(&dir) {
        // The rename is durable once the directory is; a failure here loses nothing.
        let _ = d.sync_all();
    }
    // A writer holding the old file open may have appended in the instant before the
    // rename, or be writing the rest of a line there: carry those bytes over, scrubbed.
    let mut late_bytes = 0;
    if dest.is_none() {
        let late = carry_over(
            scrubber,
            &src,
            read,
            (target, renamed_len),
            progress,
            &io_err,
        );
        let (late_stats, late) = late.map_err(|e| Error::AfterReplace {
            source: Box::new(e),
        })?;
        stats.merge(&late_stats);
        late_bytes = late;
    }
    Ok(Outcome {
        stats,
        rewritten: true,
        late_bytes,
    })
}

/// Scrubs what a writer appended to `src`, the old file, after offset `read` and the rename,
/// and appends it to the new file at `target`, which held `renamed_len` bytes when renamed.
/// Its wait for line ends has a budget of its own: a writer that reopens the file for each
/// line has only the line it was writing at the rename left in the old file, which may have
/// come after the budget before the rename ran out. Returns the stats and how many bytes came
/// late.
fn carry_over(
    scrubber: &Scrubber,
    src: &File,
    mut read: u64,
    (target, renamed_len): (&Path, u64),
    progress: &Progress,
    io_err: &dyn Fn(&str, io::Error) -> Error,
) -> Result<(Stats, u64), Error> {
    let (mut stats, mut late_bytes) = (Stats::default(), 0);
    let mut new = None;
    let mut line_end = LineEndWait::default();
    let mut new_line_end = LineEndWait::default();
    let mut carried = Vec::new();
    loop {
        let len = src
            .metadata()
            .map_err(|e| io_err("reading metadata", e))?
            .len();
        if len <= read {
            // The copy may end in a line cut short whose rest is still to come.
            let cut_short = ends_mid_line(src, read).map_err(|e| io_err("reading", e))?;
            if cut_short && line_end.wait(src, read).map_err(|e| io_err("reading", e))? {
                continue;
            }
            break;
        }
        carried.clear();
        let (tail_stats, end) = scrub_tail(
            scrubber,
            src,
            read,
            &mut carried,
            Some(&mut line_end),
            progress,
            io_err,
        )?;
        stats.merge(&tail_stats);
        late_bytes += end - read;
        read = end;
        let new = match &mut new {
            Some(new) => new,
            None => new.insert(
                OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(target)
                    .map_err(|e| io_err("appending late lines", e))?,
            ),
        };
        // The writer may be writing a line in pieces to the new file too: carried lines go
        // between its lines, not between the pieces of one. Only a file grown since the
        // rename is looked at: the scrubbed copy may end in a line cut short, whose rest is
        // carried, and no one else will finish it.
        while grew_and_ends_mid_line(new, renamed_len)
            .map_err(|e| io_err("appending late lines", e))?
            && new_line_end
                .wait(new, renamed_len)
                .map_err(|e| io_err("appending late lines", e))?
        {}
        new.write_all(&carried)
            .map_err(|e| io_err("appending late lines", e))?;
    }
    if let Some(new) = new {
        new.sync_all()
            .map_err(|e| io_err("appending late lines", e))?;
    }
    Ok((stats, late_bytes))
}

/// Scrubs `src` from its start to its end into `out`: in parallel chunks when it is large
/// and there are threads, the rest (and whatever is appended meanwhile) as a stream. Returns
/// the stats and the offset where it stopped reading.
fn scrub_file(
    scrubber: &Scrubber,
    src: &File,
    out: &mut (impl Write + Send),
    line_end: Option<&mut LineEndWait>,
    options: &BulkOptions,
    progress: &Progress,
    io_err: &dyn Fn(&str, io::Error) -> Error,
) -> Result<(Stats, u64), Error> {
    let len = src
        .metadata()
        .map_err(|e| io_err("reading metadata", e))?
        .len();
    let mut stats = Stats::default();
    let mut done = 0;
    if len >= options.parallel_min && rayon::current_num_threads() > 1 {
        done = scrub_chunks(
            scrubber,
            src,
            len,
            out,
            options.chunk_size,
            progress,
            &mut stats,
        )
        .map_err(|e| io_err("scrubbing", e))?;
    }
    let (tail, end) = scrub_tail(scrubber, src, done, out, line_end, progress, io_err)?;
    stats.merge(&tail);
    Ok((stats, end))
}

/// Scrubs `src` from offset `from` (a line start) to its current end into `out`, as a stream
/// that starts in the state the lines before `from` leave. Returns the stats and the offset
/// where it stopped reading.
fn scrub_tail(
    scrubber: &Scrubber,
    src: &File,
    from: u64,
    out: &mut impl Write,
    line_end: Option<&mut LineEndWait>,
    progress: &Progress,
    io_err: &dyn Fn(&str, io::Error) -> Error,
) -> Result<(Stats, u64), Error> {
    let context = context_before(src, from).map_err(|e| io_err("reading", e))?;
    let mut reader = WholeLines {
        src,
        at: from,
        last: b'\n',
        line_end,
        progress,
    };
    let stats = Filter::new(scrubber, out)
        .primed(&context)
        .run(&mut reader)
        .map_err(|e| match e {
            Error::Io { context, source } => io_err(&context, source),
            other => other,
        })?;
    Ok((stats, reader.at))
}

/// Scrubs `src[..len]` in chunks cut at newlines, `threads` workers at a time. Each worker
/// takes the next chunk in file order, reads and scrubs it, and then, unless another worker
/// is already at it, writes every finished chunk that is next in order. There is no batch
/// barrier and no writer thread competing for the cores, and the writing happens outside the
/// lock, so the other workers take and hand in chunks meanwhile. A worker more than a few
/// chunks ahead of the output waits, which bounds memory. Returns where it stopped: after the
/// last newline it reached (a line longer than a chunk stops it early; the stream takes over
/// from there).
fn scrub_chunks<W: Write + Send>(
    scrubber: &Scrubber,
    src: &File,
    len: u64,
    out: &mut W,
    chunk_size: usize,
    progress: &Progress,
    stats: &mut Stats,
) -> io::Result<u64> {
    let threads = rayon::current_num_threads();
    let ahead = 2 * threads;
    let state = Mutex::new(Chunks {
        next_start: 0,
        taken: 0,
        written: 0,
        ready: BTreeMap::new(),
        spare: Vec::new(),
        writing: false,
        stopped: false,
        error: None,
    });
    // Only the worker that set `Chunks::writing` locks this.
    let output = Mutex::new((out, stats));
    let turn = Condvar::new();
    let worker = || {
        let lock = || {
            state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        // The input buffer, kept from chunk to chunk.
        let mut data = Vec::new();
        loop {
            let (index, start, end, scrubbed) = {
                let mut chunks = lock();
                while !chunks.stopped && chunks.taken >= chunks.written + ahead {
                    chunks = turn.wait(chunks).unwrap_or_else(|p| p.into_inner());
                }
                if chunks.stopped || chunks.next_start >= len {
                    return;
                }
                let start = chunks.next_start;
                let cut = line_end_before(src, start, (start + chunk_size as u64).min(len));
                match cut {
                    Ok(Some(cut)) => {
                        chunks.next_start = cut;
                        chunks.taken += 1;
                        let buffer = chunks.spare.pop().unwrap_or_default();
                        (chunks.taken - 1, start, cut, buffer)
                    }
                    Ok(None) => return chunks.stop(None, &turn),
                    Err(e) => return chunks.stop(Some(e), &turn),
                }
            };
            let scrubbed = scrub_chunk(scrubber, src, start..end, (&mut data, scrubbed), progress);
            let mut chunks = lock();
            match scrubbed {
                Ok(done) => {
                    chunks.ready.insert(index, done);
                }
                Err(e) => return chunks.stop(Some(e), &turn),
            }
            if chunks.writing {
                continue;
            }
            chunks.writing = true;
            loop {
                let next = chunks.written;
                let Some((mut scrubbed, chunk_stats)) = chunks.ready.remove(&next) else {
                    break;
                };
                drop(chunks);
                let written = {
                    let mut output = output.lock().unwrap_or_else(|p| p.into_inner());
                    let (out, stats) = &mut *output;
                    stats.merge(&chunk_stats);
                    out.write_all(&scrubbed)
                };
                chunks = lock();
                if let Err(e) = written {
                    chunks.writing = false;
                    return chunks.stop(Some(e), &turn);
                }
                chunks.written += 1;
                scrubbed.clear();
                chunks.spare.push(scrubbed);
                turn.notify_all();
            }
            chunks.writing = false;
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(worker);
        }
        worker();
    });
    let chunks = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match chunks.error {
        Some(e) => Err(e),
        None => Ok(chunks.next_start),
    }
}

/// The chunk pipeline's shared state: what is taken, and what is scrubbed and waiting for
/// its turn to be written.
struct Chunks {
    /// Where the next chunk starts.
    next_start: u64,
    /// Chunks taken so far (the next one's index).
    taken: usize,
    /// Chunks written so far (the index of the one the output waits for).
    written: usize,
    /// Scrubbed chunks waiting for the ones before them.
    ready: BTreeMap<usize, (Vec<u8>, Stats)>,
    /// Output buffers written and free for the next chunks.
    spare: Vec<Vec<u8>>,
    /// A worker is writing the ready chunks in order; the others leave theirs to it.
    writing: bool,
    /// No more chunks are taken: a line longer than a chunk, or an error.
    stopped: bool,
    error: Option<io::Error>,
}

impl Chunks {
    /// Takes no more chunks (keeping the first error) and wakes the waiting workers. The
    /// chunks already taken are still scrubbed and written, so the output ends exactly where
    /// `next_start` says.
    fn stop(&mut self, error: Option<io::Error>, turn: &Condvar) {
        self.stopped = true;
        if self.error.is_none() {
            self.error = error;
        }
        turn.notify_all();
    }
}

/// Reads and scrubs the lines in `src[range]`, in the state the lines before leave, into
/// `scrubbed`; `data` is the worker's, reused from chunk to chunk.
fn scrub_chunk(
    scrubber: &Scrubber,
    src: &File,
    range: std::ops::Range<u64>,
    (data, mut scrubbed): (&mut Vec<u8>, Vec<u8>),
    progress: &Progress,
) -> io::Result<(Vec<u8>, Stats)> {
    data.resize((range.end - range.start) as usize, 0);
    src.read_exact_at(data, range.start)?;
    let context = context_before(src, range.start)?;
    scrubbed.reserve(data.len() + data.len() / 64);
    let mut filter = Filter::new(scrubber, io::sink())
        .holding(scrubbed)
        .primed(&context);
    let stats = filter.run_in_memory(data).map_err(io::Error::other);
    let scrubbed = filter.into_output();
    progress
        .bytes
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    Ok((scrubbed, stats?))
}

/// Whether `file` has grown past `from` and ends in the middle of a line.
fn grew_and_ends_mid_line(file: &File, from: u64) -> io::Result<bool> {
    let len = file.metadata()?.len();
    Ok(len > from && ends_mid_line(file, len)?)
}

/// Whether the byte of `file` before offset `end` is there and not a newline.
fn ends_mid_line(file: &File, end: u64) -> io::Result<bool> {
    let mut last = [b'\n'];
    if end > 0 {
        file.read_at(&mut last, end - 1)?;
    }
    Ok(last[0] != b'\n')
}

/// The offset just after the last newline in `src[from..to]`, looked for backwards in
/// small reads; none when that range holds no newline.
fn line_end_before(src: &File, from: u64, to: u64) -> io::Result<Option<u64>> {
    const STEP: u64 = 64 * 1024;
    let mut end = to;
    let mut window = Vec::new();
    while end > from {
        let start = end.saturating_sub(STEP).max(from);
        window.resize((end - start) as usize, 0);
        src.read_exact_at(&mut window, start)?;
        if let Some(i) = memchr::memrchr(b'\n', &window) {
            return Ok(Some(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(None)
}

/// The whole lines within [`CONTEXT`] bytes before `at` (which starts a line).
fn context_before(src: &File, at: u64) -> io::Result<Vec<u8>> {
    let from = at.saturating_sub(CONTEXT as u64);
    let mut context = vec![0u8; (at - from) as usize];
    src.read_exact_at(&mut context, from)?;
    if from > 0 {
        let first_line = memchr::memchr(b'\n', &context).map_or(context.len(), |i| i + 1);
        context.drain(..first_line);
    }
    Ok(context)
}

fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("{}: creating", dir.display()), e)),
        _ => Ok(()),
    }
}

/// A reader that counts what it reads into the progress counters.
struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The scrubbed output of a file, compared with the file as it is written: nothing is
/// written until the first byte that differs, when a temporary file is started with the
/// identical head copied in. A mirror copy (`always`) starts its file at once.
struct Divergent {
    original: File,
    /// Output bytes so far, all equal to the original's first bytes until diverged.
    compared: u64,
    dir: PathBuf,
    name: OsString,
    /// Unbuffered: what is written comes in large pieces (the filter's output buffer, a
    /// stretch of unchanged lines, a scrubbed chunk).
    temp: Option<NamedTempFile>,
    scratch: Vec<u8>,
}

impl Divergent {
    fn new(original: File, dir: PathBuf, name: OsString, always: bool) -> io::Result<Divergent> {
        let mut out = Divergent {
            original,
            compared: 0,
            dir,
            name,
            temp: None,
            scratch: Vec::new(),
        };
        if always {
            out.diverge()?;
        }
        Ok(out)
    }

    fn diverged(&self) -> bool {
        self.temp.is_some()
    }

    /// Starts the temporary file with the original's first `compared` bytes.
    fn diverge(&mut self) -> io::Result<()> {
        let mut prefix = OsString::from(".");
        prefix.push(&self.name);
        prefix.push(".clawscrub-");
        let mut temp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        self.original.seek(SeekFrom::Start(0))?;
        let copied = io::copy(
            &mut (&self.original).take(self.compared),
            temp.as_file_mut(),
        )?;
        if copied != self.compared {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was scrubbed",
            ));
        }
        self.temp = Some(temp);
        Ok(())
    }

    fn temp(&mut self) -> Option<&NamedTempFile> {
        self.temp.as_ref()
    }

    fn into_temp(self) -> Option<NamedTempFile> {
        self.temp
    }
}

impl Write for Divergent {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.temp.is_none() {
            self.scratch.resize(buf.len(), 0);
            let mut n = 0;
            while n < buf.len() {
                match self
                    .original
                    .read_at(&mut self.scratch[n..], self.compared + n as u64)?
                {
                    0 => break,
                    k => n += k,
                }
            }
            if n == buf.len() && self.scratch[..] == *buf {
                self.compared += n as u64;
                return Ok(buf.len());
            }
            self.diverge()?;
        }
        match &mut self.temp {
            Some(temp) => temp.write(buf),
            None => Ok(0),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.temp {
            Some(temp) => temp.flush(),
            None => Ok(()),
        }
    }
}

/// Audits every target, read-only, files in parallel on the current rayon pool: each one's
/// findings, in the order of `targets`.
pub fn check_all(
    scrubber: &Scrubber,
    targets: &[Target],
    progress: &Progress,
) -> Vec<Result<Vec<Located>, Error>> {
    targets
        .par_iter()
        .map(|t| {
            let result = check_target(scrubber, t, progress);
            progress.files.fetch_add(1, Ordering::Relaxed);
            if let Ok(found) = &result {
                progress
                    .redactions
                    .fetch_add(found.len() as u64, Ordering::Relaxed);
            }
            result
        })
        .collect()
}

/// The findings in one target.
pub fn check_target(
    scrubber: &Scrubber,
    target: &Target,
    progress: &Progress,
) -> Result<Vec<Located>, Error> {
    let mut found = Vec::new();
    let path = &target.path;
    match target.kind {
        TargetKind::Lines => {
            let file = File::open(path)
                .map_err(|e| Error::io(format!("{}: opening", path.display()), e))?;
            let findings = find_in_file(scrubber, &file, progress).map_err(|e| match e {
                Error::Io { source, .. } => {
                    Error::io(format!("{}: reading", path.display()), source)
                }
                other => other,
            })?;
            found.extend(findings.into_iter().map(|finding| Located {
                path: path.clone(),
                row: None,
                finding,
            }));
        }
        TargetKind::Database => {
            sqlite::find_in_database(scrubber, path, |row, finding| {
                found.push(Located {
                    path: path.clone(),
                    row: Some(row),
                    finding,
                })
            })?;
            progress.bytes.fetch_add(target.len, Ordering::Relaxed);
        }
    }
    Ok(found)
}

/// The findings in a file of lines: a large one in chunks on the rayon pool, each primed
/// with the lines before it as when scrubbing, their line numbers shifted by the lines of the
/// chunks before; the rest (a line longer than a chunk, bytes appended meanwhile) as a stream.
fn find_in_file(
    scrubber: &Scrubber,
    file: &File,
    progress: &Progress,
) -> Result<Vec<Finding>, Error> {
    let options = BulkOptions::default();
    let reading = |e| Error::io("reading", e);
    let len = file.metadata().map_err(reading)?.len();
    let mut spans = Vec::new();
    let mut pos = 0;
    if len >= options.parallel_min && rayon::current_num_threads() > 1 {
        while pos < len {
            let end = (pos + options.chunk_size as u64).min(len);
            match line_end_before(file, pos, end).map_err(reading)? {
                Some(cut) => spans.push(pos..cut),
                None => break,
            }
            pos = spans.last().map_or(pos, |s| s.end);
        }
    }
    let chunks: Vec<Result<(Vec<Finding>, u64), Error>> = spans
        .into_par_iter()
        .map(|span| {
            let mut data = vec![0u8; (span.end - span.start) as usize];
            file.read_exact_at(&mut data, span.start).map_err(reading)?;
            let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
            let found = find_after(scrubber, file, span.start, Input::<io::Empty>::Chunk(&data))?;
            progress
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok((found, lines))
        })
        .collect();
    let mut all = Vec::new();
    let mut lines_before = 0;
    for chunk in chunks {
        let (found, lines) = chunk?;
        all.extend(found.into_iter().map(|mut f| {
            f.line += lines_before;
            f
        }));
        lines_before += lines;
    }
    let mut rest = file;
    rest.seek(SeekFrom::Start(pos)).map_err(reading)?;
    let rest = Counted {
        inner: rest,
        progress,
    };
    let found = find_after(scrubber, file, pos, Input::Rest(rest))?;
    all.extend(found.into_iter().map(|mut f| {
        f.line += lines_before;
        f
    }));
    Ok(all)
}

/// The findings in `input`, which starts at offset `at` of `file` (at a line start), in the
/// state the lines before it leave; line numbers count from `input`'s first line.
fn find_after(
    scrubber: &Scrubber,
    file: &File,
    at: u64,
    input: Input<'_, impl Read>,
) -> Result<Vec<Finding>, Error> {
    let context = context_before(file, at).map_err(|e| Error::io("reading", e))?;
    let mut found = Vec::new();
    let mut each = |line: u64, start: usize, end: usize, rule: usize| {
        found.push(scrubber.finding(line, start, end, rule));
    };
    let filter = Filter::auditing(scrubber, io::sink(), &mut each);
    match input {
        Input::Chunk(data) => filter.primed(&context).run_in_memory(data)?,
        Input::Rest(reader) => filter.primed(&context).run(reader)?,
    };
    Ok(found)
}

/// What [`find_after`] reads: a chunk in memory, or the rest of a file.
enum Input<'a, R> {
    Chunk(&'a [u8]),
    Rest(R),
}
