//! The streaming filter: block reads, a literal search over each whole block, and close looks
//! only at the lines where an anchor fired. Lines too long to hold are scrubbed in overlapping
//! windows so memory stays bounded whatever the input.

use std::io::{self, Read, Write};

use crate::engine::{Matcher, TriggerScan};
use crate::error::Error;
use crate::json;
use crate::rules::MAX_REACH;
use crate::scrub::Session;
use crate::stats::Stats;
use crate::Scrubber;

/// Bytes asked for per read.
const BLOCK: usize = 256 * 1024;
/// A line this long (without its newline) or longer is scrubbed in windows, not whole.
pub(crate) const MAX_LINE: usize = 4 * 1024 * 1024;
/// Window spacing for over-long lines; each window also sees `WINDOW_OVERLAP` bytes either side.
const WINDOW_STEP: usize = 1024 * 1024;
/// No secret is longer than this, so one found in a window's overlap is whole.
const WINDOW_OVERLAP: usize = MAX_REACH;
/// Output is handed to the writer once this much is pending.
const OUT_FLUSH: usize = 256 * 1024;
/// A stretch of lines this long that passes unchanged is handed to the writer straight from
/// the read buffer, after what is pending, instead of being copied into the output buffer.
const DIRECT_WRITE: usize = 32 * 1024;

/// Receives each redaction made when auditing: line number (from 1), byte range in the line,
/// rule index.
pub(crate) type OnFound<'a> = &'a mut dyn FnMut(u64, usize, usize, usize);

/// One run of the filter over one input.
pub(crate) struct Filter<'a, W: Write> {
    matcher: &'a Matcher,
    session: Session<'a>,
    writer: W,
    out: Vec<u8>,
    long: Option<LongLine>,
    lines: u64,
    bytes_in: u64,
    bytes_out: u64,
    on_found: Option<OnFound<'a>>,
    /// All output stays in `out` for the caller to take ([`Filter::holding`]).
    holding: bool,
}

impl<'a, W: Write> Filter<'a, W> {
    pub fn new(scrubber: &'a Scrubber, writer: W) -> Filter<'a, W> {
        Filter {
            matcher: &scrubber.matcher,
            session: Session::new(scrubber),
            writer,
            out: Vec::with_capacity(OUT_FLUSH + BLOCK),
            long: None,
            lines: 0,
            bytes_in: 0,
            bytes_out: 0,
            on_found: None,
            holding: false,
        }
    }

    /// A filter that keeps all its output in `out` (cleared first) instead of handing it to
    /// the writer, for [`Filter::into_output`] to give back: a chunk scrubbed in memory is
    /// then copied once, not once into the filter's buffer and again into the caller's.
    pub fn holding(mut self, mut out: Vec<u8>) -> Filter<'a, W> {
        out.clear();
        self.out = out;
        self.holding = true;
        self
    }

    /// The output a [`Filter::holding`] filter kept.
    pub fn into_output(self) -> Vec<u8> {
        self.out
    }

    /// Runs `context` (whole lines, at most a few hundred KB) through the filter with its
    /// output and counts thrown away, so that the input that follows is scrubbed in the
    /// state those lines leave (an open PEM block): how a chunk in the middle of a file is
    /// scrubbed exactly as a stream from the start would.
    pub fn primed(mut self, context: &[u8]) -> Filter<'a, W> {
        if !self.matcher.may_open_block(context) {
            return self;
        }
        // Held, the output stays in `out` (no stretch goes straight to the writer) to be
        // thrown away; nor is anything reported: the context is the previous chunk's.
        let holding = std::mem::replace(&mut self.holding, true);
        let on_found = self.on_found.take();
        let pending = self.out.len();
        // Held, the filter never writes, so it cannot fail.
        let _ = self.consume(context, false);
        self.out.truncate(pending);
        self.session.counts.fill(0);
        if let Some(found) = &mut self.session.found {
            found.clear();
        }
        self.lines = 0;
        self.on_found = on_found;
        self.holding = holding;
        self
    }

    /// Scrubs `data` into the writer and flushes it: whole lines, or with `last` a final
    /// piece without a newline taken as a line. For callers that read on their own (`follow`).
    pub fn feed(&mut self, data: &[u8], last: bool) -> Result<(), Error> {
        self.bytes_in += data.len() as u64;
        let used = self.consume(data, last)?;
        debug_assert!(used == data.len(), "fed whole lines only");
        self.flush()
    }

    /// Runs the filter over `data` as [`Filter::run`] would over a reader of it, without
    /// copying it into a read buffer: the filter is shown the same windows of `data` that
    /// reading would fill its buffer with, so the output is the same, long lines included.
    pub fn run_in_memory(&mut self, data: &[u8]) -> Result<Stats, Error> {
        // `data[base..filled]` is what the buffer would hold, in a buffer of `capacity`.
        let (mut base, mut filled, mut capacity) = (0, 0, BLOCK);
        loop {
            if filled - base == capacity {
                capacity *= 2;
            }
            let want = capacity - (filled - base);
            let n = want.min(data.len() - filled);
            filled += n;
            self.bytes_in += n as u64;
            let eof = n == 0;
            base += self.consume(&data[base..filled], eof)?;
            if eof {
                self.flush()?;
                return Ok(self.stats());
            }
            if n < want || self.out.len() >= OUT_FLUSH {
                self.flush()?;
            }
        }
    }

    /// The writer, to take what [`Filter::feed`] wrote.
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// A filter that also reports every redaction it makes to `on_found`.
    pub fn auditing(scrubber: &'a Scrubber, writer: W, on_found: OnFound<'a>) -> Filter<'a, W> {
        let mut filter = Filter::new(scrubber, writer);
        filter.session.found = Some(Vec::new());
        filter.on_found = Some(on_found);
        filter
    }

    /// Hands the redactions recorded on line `line_no` to the audit callback, in line order.
    fn report_found(&mut self, line_no: u64) {
        let (Some(on_found), Some(found)) = (&mut self.on_found, &mut self.session.found) else {
            return;
        };
        found.sort_unstable();
        for (start, end, rule) in found.drain(..) {
            on_found(line_no, start, end, rule);
        }
    }

    /// Scrubs `reader` to the end. Output is flushed whenever the input has nothing more
    /// ready (a short read), so a line written into an idle pipe comes out at once.
    pub fn run<R: Read>(&mut self, mut reader: R) -> Result<Stats, Error> {
        let mut buf = vec![0u8; BLOCK];
        let mut len = 0;
        loop {
            if len == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let want = buf.len() - len;
            let n = match reader.read(&mut buf[len..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading input", e)),
            };
            self.bytes_in += n as u64;
            len += n;
            let eof = n == 0;
            let consumed = self.consume(&buf[..len], eof)?;
            buf.copy_within(consumed..len, 0);
            len -= consumed;
            if eof {
                self.flush()?;
                self.writer
                    .flush()
                    .map_err(|e| Error::io("writing output", e))?;
                return Ok(self.stats());
            }
            if n < want || self.out.len() >= OUT_FLUSH {
                self.flush()?;
            }
        }
    }

    /// Processes what `data` holds and returns how many bytes were used up.
    fn consume(&mut self, data: &[u8], eof: bool) -> Result<usize, Error> {
        let mut used = 0;
        if let Some(long) = self.long.as_mut() {
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    long.feed(&data[..nl], &mut self.session, &mut self.out);
                    self.report_found(self.lines + 1);
                    self.finish_long(b"\n");
                    used = nl + 1;
                }
                None => {
                    long.feed(data, &mut self.session, &mut self.out);
                    self.report_found(self.lines + 1);
                    used = data.len();
                    if eof {
                        self.finish_long(b"");
                    }
                    return Ok(used);
                }
            }
        }
        let rest = &data[used..];
        if let Some(last) = memchr::memrchr(b'\n', rest) {
            self.region(&rest[..=last])?;
            used += last + 1;
        }
        let partial = &data[used..];
        if eof && !partial.is_empty() {
            self.line(partial);
            used = data.len();
        } else if partial.len() >= MAX_LINE {
            self.session.end_block();
            let mut long = LongLine::new(partial);
            long.feed(partial, &mut self.session, &mut self.out);
            self.report_found(self.lines + 1);
            self.long = Some(long);
            used = data.len();
        }
        Ok(used)
    }

    fn finish_long(&mut self, terminator: &[u8]) {
        if let Some(mut long) = self.long.take() {
            long.finish(&mut self.session, &mut self.out);
            self.out.extend_from_slice(terminator);
            self.lines += 1;
            self.report_found(self.lines);
        }
    }

    /// Scrubs complete lines: copies those where nothing fires, looks closely at the rest.
    fn region(&mut self, region: &[u8]) -> Result<(), Error> {
        let lines_before = self.lines;
        self.lines += memchr::memchr_iter(b'\n', region).count() as u64;
        if self.matcher.needs_every_line() {
            for (n, line) in region.split_inclusive(|&b| b == b'\n').enumerate() {
                self.scrub_line(line, lines_before + n as u64 + 1);
            }
            return Ok(());
        }
        // Line numbers are counted up to each scrubbed line only when auditing.
        let (mut counted_to, mut line_no) = (0, lines_before);
        let mut pos = 0;
        let mut scan = TriggerScan::default();
        while pos < region.len() {
            let line_start = if self.session.in_block() {
                pos
            } else {
                match self
                    .matcher
                    .next_trigger(region, pos, &mut scan, self.session.cache())
                {
                    Some(t) => memchr::memrchr(b'\n', &region[pos..t]).map_or(pos, |i| pos + i + 1),
                    None => region.len(),
                }
            };
            self.verbatim(&region[pos..line_start])?;
            if line_start == region.len() {
                break;
            }
            let line_end = memchr::memchr(b'\n', &region[line_start..])
                .map_or(region.len(), |i| line_start + i + 1);
            if self.on_found.is_some() {
                line_no +=
                    memchr::memchr_iter(b'\n', &region[counted_to..line_start]).count() as u64;
                counted_to = line_start;
            }
            self.scrub_line(&region[line_start..line_end], line_no + 1);
            pos = line_end;
        }
        Ok(())
    }

    /// The final line when it has no newline.
    fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        self.scrub_line(line, self.lines);
    }

    /// Scrubs line number `line_no` (from 1), whole or in windows.
    fn scrub_line(&mut self, line: &[u8], line_no: u64) {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        if content.len() >= MAX_LINE {
            self.session.end_block();
            let mut long = LongLine::new(content);
            long.feed(content, &mut self.session, &mut self.out);
            long.finish(&mut self.session, &mut self.out);
            self.out.extend_from_slice(&line[content.len()..]);
        } else {
            self.session.scrub_line(line, &mut self.out);
        }
        self.report_found(line_no);
    }

    fn verbatim(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() >= DIRECT_WRITE && !self.holding {
            self.flush()?;
            self.write(bytes)
        } else {
            self.out.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.holding {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let result = self.write(&out).and_then(|()| {
            self.writer
                .flush()
                .map_err(|e| Error::io("writing output", e))
        });
        self.out = out;
        self.out.clear();
        result
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.bytes_out += bytes.len() as u64;
        self.writer
            .write_all(bytes)
            .map_err(|e| Error::io("writing output", e))
    }

    pub fn stats(&self) -> Stats {
        Stats::from_counts(
            &self.matcher.rules,
            &self.session.counts,
            self.lines,
            self.bytes_in,
            self.bytes_out
                + if self.holding {
                    self.out.len() as u64
                } else {
                    0
                },
        )
    }
}

/// An over-long line scrubbed in windows at fixed offsets from its start, so the result does
/// not depend on how the input arrived. Window `k` scrubs spans starting in
/// `[k·STEP, (k+1)·STEP)` and sees `WINDOW_OVERLAP` bytes of context either side.
struct LongLine {
    /// Line bytes from line offset `base` on.
    buf: Vec<u8>,
    base: usize,
    /// Output has been written for line bytes before this offset.
    emitted: usize,
    /// Start of the next window.
    next: usize,
    /// The line looks like JSON: keep edits inside strings and escape masks.
    json_safe: bool,
}

impl LongLine {
    fn new(start: &[u8]) -> LongLine {
        LongLine {
            buf: Vec::new(),
            base: 0,
            emitted: 0,
            next: 0,
            json_safe: json::looks_like_json(start),
        }
    }

    fn feed(&mut self, data: &[u8], session: &mut Session<'_>, out: &mut Vec<u8>) {
        self.buf.extend_from_slice(data);
        while self.base + self.buf.len() >= self.next + WINDOW_STEP + WINDOW_OVERLAP {
            self.window(false, session, out);
        }
    }

    fn finish(&mut self, session: &mut Session<'_>, out: &mut Vec<u8>) {
        self.window(true, session, out);
    }

    fn window(&mut self, last: bool, session: &mut Session<'_>, out: &mut Vec<u8>) {
        let ctx = self.next.saturating_sub(WINDOW_OVERLAP);
        let end = if last {
            self.base + self.buf.len()
        } else {
            self.next + WINDOW_STEP + WINDOW_OVERLAP
        };
        let text = &self.buf[ctx - self.base..end - self.base];
        let accept_hi = if last { end } else { self.next + WINDOW_STEP } - ctx;
        let accept_lo = (self.next.max(self.emitted) - ctx).min(accept_hi);
        let mut edits = session.scrub_window(text, accept_lo..accept_hi, self.json_safe);
        edits.sort_by_key(|e| e.0);
        let mut pos = self.emitted - ctx;
        for (start, end, replacement, rule) in edits {
            if start < pos {
                continue;
            }
            if let Some(found) = &mut session.found {
                found.push((ctx + start, ctx + end, rule));
            }
            out.extend_from_slice(&text[pos..start]);
            out.extend_from_slice(&replacement);
            pos = end;
        }
        let stop = if last { text.len() } else { pos.max(accept_hi) };
        out.extend_from_slice(&text[pos..stop]);
        self.emitted = ctx + stop;
        if last {
            // The whole line is out; the buffer may hold less than the next window's context.
            self.buf.clear();
            return;
        }
        self.next += WINDOW_STEP;
        let keep_from = self.next.saturating_sub(WINDOW_OVERLAP).max(self.base);
        self.buf.drain(..keep_from - self.base);
        self.base = keep_from;
    }
}
