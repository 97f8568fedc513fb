//! Scrubbing one line: JSON-aware when the line is JSON, plain text otherwise, with the bounded
//! state that carries a multi-line PEM block from line to line.

use crate::engine::{MatchCache, Span};
use crate::json::{self, StringValue};
use crate::rules::{key_matches, normalize_key};
use crate::validate::is_placeholder;
use crate::Scrubber;

/// Strings whose decoded text is JSON are scrubbed as JSON this many levels down.
const MAX_JSON_DEPTH: usize = 4;
/// Keys longer than this are not remembered (see `Session::clean_keys` and
/// `Session::key_kinds`), nor more than this many: a line of generated keys must not grow the
/// sets without bound.
const MAX_CLEAN_KEY: usize = 64;
const MAX_CLEAN_KEYS: usize = 4096;
/// A PEM block in plain text is followed for at most this many lines.
const MAX_BLOCK_LINES: usize = 400;

/// A replacement of `start..end` (in the text being scrubbed) by `text`, made for `rule`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    text: Vec<u8>,
    rule: usize,
}

/// What an object key makes of the string values under it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// A structural transcript field (`id`, `type`, …): never changed.
    Structural,
    /// A sensitive name (`password`, `apiKey`, …): redacted whole by this rule.
    Sensitive(usize),
    Plain,
}

/// A multi-line secret (PEM private key) opened on an earlier plain-text line.
struct OpenBlock {
    rule: usize,
    lines: usize,
}

/// Per-thread scrubbing state: regex caches, scratch buffers, block state and counters.
pub(crate) struct Session<'a> {
    scrubber: &'a Scrubber,
    cache: MatchCache,
    spans: Vec<Span>,
    tokens: Vec<Vec<StringValue>>,
    decoded: Vec<(Vec<u8>, Vec<u32>)>,
    /// Object keys (raw) found to hold nothing: JSONL repeats a few dozen keys on every line,
    /// and looking at each again cost dense transcripts 7 %.
    clean_keys: foldhash::HashSet<Box<[u8]>>,
    /// What each object key (raw) makes of its values, for the same reason: decoding,
    /// normalising and comparing a key with every sensitive name cost dense transcripts 3 %.
    key_kinds: foldhash::HashMap<Box<[u8]>, KeyKind>,
    block: Option<OpenBlock>,
    /// A mask as rendered, before it is escaped into a JSON string.
    masked: Vec<u8>,
    /// Text with JSON escapes left in it, decoded, with its offset map; and what was found
    /// there (see [`Session::find_secrets`]).
    view: (Vec<u8>, Vec<u32>),
    view_spans: Vec<Span>,
    /// Redactions per rule index.
    pub counts: Vec<u64>,
    /// When auditing: each redaction made since the last drain, as its byte range in the
    /// line and rule index.
    pub found: Option<Vec<(usize, usize, usize)>>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let cache = std::mem::take(&mut self.cache);
        self.scrubber.matcher.recycle_cache(cache);
    }
}

impl<'a> Session<'a> {
    pub fn new(scrubber: &'a Scrubber) -> Session<'a> {
        Session {
            cache: scrubber.matcher.take_cache(),
            counts: vec![0; scrubber.matcher.rules.len()],
            scrubber,
            spans: Vec::new(),
            tokens: (0..=MAX_JSON_DEPTH).map(|_| Vec::new()).collect(),
            decoded: (0..=MAX_JSON_DEPTH)
                .map(|_| (Vec::new(), Vec::new()))
                .collect(),
            clean_keys: Default::default(),
            key_kinds: Default::default(),
            block: None,
            masked: Vec::new(),
            view: (Vec::new(), Vec::new()),
            view_spans: Vec::new(),
            found: None,
        }
    }

    /// The regex caches and scratch buffers, which the block-level hit checks share.
    pub fn cache(&mut self) -> &mut MatchCache {
        &mut self.cache
    }

    /// True while a multi-line block is open: the next line must be scrubbed, hit or not.
    pub fn in_block(&self) -> bool {
        self.block.is_some()
    }

    /// Closes an open block: an over-long line is no PEM body.
    pub fn end_block(&mut self) {
        self.block = None;
    }

    /// Appends the scrubbed `line` (with its `\n`, if any) to `out`.
    pub fn scrub_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let mut edits = self.line_edits(content);
        if let Some(found) = &mut self.found {
            found.extend(edits.iter().map(|e| (e.start, e.end, e.rule)));
        }
        apply(content, &mut edits, out);
        out.extend_from_slice(&line[content.len()..]);
    }

    fn line_edits(&mut self, content: &[u8]) -> Vec<Edit> {
        let mut edits = Vec::new();
        if self.block.is_some() && self.continue_block(content, &mut edits) {
            return edits;
        }
        let json =
            json::looks_like_json(content) && self.scrub_json(content, 0, &mut edits).is_ok();
        if !json {
            edits.clear();
            self.scrub_plain(content, &mut edits);
        }
        edits
    }

    /// Scrubs raw text with no JSON awareness (used for windows of over-long lines).
    /// Spans are kept clear of JSON string boundaries when `json_safe` is set.
    pub fn scrub_window(
        &mut self,
        text: &[u8],
        accept: std::ops::Range<usize>,
        json_safe: bool,
    ) -> Vec<(usize, usize, Vec<u8>, usize)> {
        let matcher = &self.scrubber.matcher;
        matcher.find(text, &mut self.cache, &self.scrubber.mask, &mut self.spans);
        let mut edits = Vec::new();
        for &span in &self.spans {
            let (mut start, mut end) = (span.start, span.end);
            if !accept.contains(&start) {
                continue;
            }
            if json_safe {
                (start, end) = widen_to_escapes(text, start, end);
                if text[start..end].contains(&b'"')
                    && !all_quotes_escaped(&text[start..end], text, start)
                {
                    continue;
                }
            }
            let mut masked = Vec::new();
            self.scrubber
                .mask
                .render(&matcher.rules[span.rule].id, &text[start..end], &mut masked);
            let text = if json_safe {
                escaped_text(masked)
            } else {
                one_line(masked)
            };
            self.counts[span.rule] += 1;
            edits.push((start, end, text, span.rule));
        }
        edits
    }

    fn scrub_plain(&mut self, content: &[u8], edits: &mut Vec<Edit>) {
        let matcher = &self.scrubber.matcher;
        self.find_secrets(content);
        for &span in &self.spans {
            let rule = &matcher.rules[span.rule];
            let secret = &content[span.start..span.end];
            let mut text = Vec::new();
            self.scrubber.mask.render(&rule.id, secret, &mut text);
            let text = one_line(text);
            self.counts[span.rule] += 1;
            let at_line_end = content[span.end..].iter().all(u8::is_ascii_whitespace);
            // A secret credited to another rule may end in a block's opening line: a value
            // that runs into a key's header (`token: x-----BEGIN … PRIVATE KEY-----`).
            let block_rule = match &rule.block_end {
                Some(_) => Some(span.rule),
                None if at_line_end => matcher.block_opened_by(secret),
                None => None,
            };
            if let Some(block_rule) = block_rule {
                let closed = matcher.rules[block_rule]
                    .block_end
                    .as_ref()
                    .is_some_and(|end_re| end_re.is_match(secret));
                if !closed && at_line_end {
                    self.block = Some(OpenBlock {
                        rule: block_rule,
                        lines: 0,
                    });
                }
            }
            edits.push(Edit {
                start: span.start,
                end: span.end,
                text,
                rule: span.rule,
            });
        }
    }

    /// Handles a line inside an open block; false when the block ended without this line.
    fn continue_block(&mut self, content: &[u8], edits: &mut Vec<Edit>) -> bool {
        let Some(block) = self.block.as_mut() else {
            return false;
        };
        block.lines += 1;
        let rule_idx = block.rule;
        let rule = &self.scrubber.matcher.rules[rule_idx];
        // The end line closes the block only when what precedes the end marker is block body:
        // a line that merely holds a whole one-line key is not the end of an earlier block.
        let end = rule
            .block_end
            .as_ref()
            .and_then(|re| re.find(content))
            .filter(|m| looks_like_block_body(&content[..m.start()]));
        if let Some(m) = end {
            self.block = None;
            edits.push(Edit {
                start: 0,
                end: m.end(),
                text: Vec::new(),
                rule: rule_idx,
            });
            return true;
        }
        if block.lines > MAX_BLOCK_LINES || !looks_like_block_body(content) {
            self.block = None;
            return false;
        }
        edits.push(Edit {
            start: 0,
            end: content.len(),
            text: Vec::new(),
            rule: rule_idx,
        });
        true
    }

    fn scrub_json(
        &mut self,
        text: &[u8],
        depth: usize,
        edits: &mut Vec<Edit>,
    ) -> Result<(), json::NotJson> {
        let mut tokens = std::mem::take(&mut self.tokens[depth]);
        let result = json::tokenize(text, &mut tokens, depth > 0);
        if result.is_ok() {
            for value in &tokens {
                self.scrub_value(text, value, depth, edits);
            }
        }
        self.tokens[depth] = tokens;
        result
    }

    /// What the object key `raw_key` (as the text has it) makes of its values, remembered
    /// for short keys.
    fn key_kind(&mut self, raw_key: &[u8]) -> KeyKind {
        if let Some(&kind) = self.key_kinds.get(raw_key) {
            return kind;
        }
        let scrubber = self.scrubber;
        // Keys are compared decoded: `"pass\u0077ord"` is `password`.
        let mut decoded = Vec::new();
        let key = if memchr::memchr(b'\\', raw_key).is_some() {
            json::decode(raw_key, &mut decoded, None);
            &decoded[..]
        } else {
            raw_key
        };
        let kind = if scrubber.structural_keys.iter().any(|s| s.as_slice() == key) {
            KeyKind::Structural
        } else {
            match scrubber.matcher.json_key_rule {
                Some(rule)
                    if key_matches(
                        &scrubber.matcher.rules[rule].json_keys,
                        &normalize_key(key),
                    ) =>
                {
                    KeyKind::Sensitive(rule)
                }
                _ => KeyKind::Plain,
            }
        };
        if raw_key.len() <= MAX_CLEAN_KEY && self.key_kinds.len() < MAX_CLEAN_KEYS {
            self.key_kinds.insert(raw_key.into(), kind);
        }
        kind
    }

    fn scrub_value(
        &mut self,
        text: &[u8],
        value: &StringValue,
        depth: usize,
        edits: &mut Vec<Edit>,
    ) {
        let scrubber = self.scrubber;
        let kind = value
            .key
            .map_or(KeyKind::Plain, |(s, e)| self.key_kind(&text[s..e]));
        if kind == KeyKind::Structural {
            return;
        }
        let raw = &text[value.start..value.end];
        if raw.is_empty() || (value.is_key && self.clean_keys.contains(raw)) {
            return;
        }
        let (mut decoded, mut map) = std::mem::take(&mut self.decoded[depth]);
        let escaped = memchr::memchr(b'\\', raw).is_some();
        if escaped {
            json::decode(raw, &mut decoded, Some(&mut map));
        }
        let plain: &[u8] = if escaped { &decoded } else { raw };
        let to_raw = |s: usize, e: usize| -> (usize, usize) {
            let (s, e) = if escaped {
                json::raw_range(&map, raw.len(), s, e)
            } else {
                (s, e)
            };
            (value.start + s, value.start + e)
        };
        let sensitive = match kind {
            KeyKind::Sensitive(rule) => Some(rule),
            _ => None,
        };
        // A placeholder or an earlier mask under a sensitive key is not redacted whole, but
        // the other rules still look at it: `"token": "<b> sk-proj-…"` holds a key.
        let whole = sensitive.filter(|_| !is_placeholder(plain) && !scrubber.mask.is_masked(plain));
        if let Some(rule) = whole {
            self.masked.clear();
            scrubber
                .mask
                .render(&scrubber.matcher.rules[rule].id, plain, &mut self.masked);
            self.counts[rule] += 1;
            edits.push(Edit {
                start: value.start,
                end: value.end,
                text: escaped_text(std::mem::take(&mut self.masked)),
                rule,
            });
        } else {
            // Edits in `plain`, their text not yet escaped into this string.
            let mut found = Vec::new();
            let nested = depth < MAX_JSON_DEPTH
                && json::looks_like_json(plain)
                && self.scrub_json(plain, depth + 1, &mut found).is_ok();
            if !nested {
                // Tool output often holds JSON lines (a `tail` of a log or a transcript)
                // rather than one document: each is scrubbed as JSON, so that a secret after an
                // escape in it (`\\nAKIA…`) is seen decoded.
                let json_lines = depth < MAX_JSON_DEPTH
                    && !value.is_key
                    && memchr::memchr(b'\n', plain).is_some()
                    && self.scrub_json_lines(plain, depth + 1, &mut found);
                if !json_lines {
                    self.scrub_text(plain, 0..plain.len(), &mut found);
                    // A key that looks like JSON is scanned flat only this deep: higher up,
                    // the same bytes are parsed, so its cleanliness is not the bytes' alone.
                    if value.is_key
                        && found.is_empty()
                        && !json::looks_like_json(plain)
                        && raw.len() <= MAX_CLEAN_KEY
                        && self.clean_keys.len() < MAX_CLEAN_KEYS
                    {
                        self.clean_keys.insert(raw.into());
                    }
                }
            }
            edits.extend(found.into_iter().map(|e| {
                let (start, end) = to_raw(e.start, e.end);
                Edit {
                    start,
                    end,
                    text: escaped_text(e.text),
                    rule: e.rule,
                }
            }));
        }
        self.decoded[depth] = (decoded, map);
    }

    /// Scrubs `text`, lines of which are JSON documents, at JSON depth `depth`: each such
    /// line as JSON, and each run of the other lines as plain text. Returns false, having
    /// done nothing, when no line is JSON.
    fn scrub_json_lines(&mut self, text: &[u8], depth: usize, edits: &mut Vec<Edit>) -> bool {
        let mut any_json = false;
        // The plain text not yet scrubbed starts here.
        let mut plain_from = 0;
        let mut line_start = 0;
        for line in text.split_inclusive(|&b| b == b'\n') {
            let range = line_start..line_start + line.len();
            line_start = range.end;
            if !json::looks_like_json(line) {
                continue;
            }
            let mut inner = Vec::new();
            if self.scrub_json(line, depth, &mut inner).is_err() {
                continue;
            }
            any_json = true;
            self.scrub_text(text, plain_from..range.start, edits);
            plain_from = range.end;
            edits.extend(inner.into_iter().map(|e| Edit {
                start: e.start + range.start,
                end: e.end + range.start,
                ..e
            }));
        }
        if any_json {
            self.scrub_text(text, plain_from..text.len(), edits);
        }
        any_json
    }

    /// Finds the secrets in `text` (a plain line, or a JSON string's decoded content) into
    /// `self.spans`. Text that still holds JSON escapes (a JSON fragment in a log line, a
    /// string escaped twice) is searched decoded too: in the raw bytes a secret right after a
    /// `\n` has no word boundary before it, and a value after `=\"` is not seen as one. What
    /// the decoded text adds is mapped back to the raw bytes, its escapes included, where it
    /// overlaps nothing found in them.
    fn find_secrets(&mut self, text: &[u8]) {
        let scrubber = self.scrubber;
        let matcher = &scrubber.matcher;
        matcher.find(text, &mut self.cache, &scrubber.mask, &mut self.spans);
        if memchr::memchr(b'\\', text).is_none() {
            return;
        }
        let (mut decoded, mut map) = std::mem::take(&mut self.view);
        json::decode(text, &mut decoded, Some(&mut map));
        if decoded != text {
            let mut found = std::mem::take(&mut self.view_spans);
            matcher.find(&decoded, &mut self.cache, &scrubber.mask, &mut found);
            let before = self.spans.len();
            for span in &found {
                let (start, end) = json::raw_range(&map, text.len(), span.start, span.end);
                let raw = &self.spans[..before];
                if !raw.iter().any(|r| r.start < end && start < r.end) {
                    self.spans.push(Span {
                        start,
                        end,
                        ..*span
                    });
                }
            }
            if self.spans.len() > before {
                self.spans.sort_unstable_by_key(|s| s.start);
            }
            self.view_spans = found;
        }
        self.view = (decoded, map);
    }

    /// Scrubs `text[range]` as plain text (in a JSON string, decoded), adding an edit with
    /// the rendered mask for each secret.
    fn scrub_text(&mut self, text: &[u8], range: std::ops::Range<usize>, edits: &mut Vec<Edit>) {
        if range.is_empty() {
            return;
        }
        let scrubber = self.scrubber;
        let matcher = &scrubber.matcher;
        let part = &text[range.clone()];
        self.find_secrets(part);
        for &span in &self.spans {
            self.masked.clear();
            let id = &matcher.rules[span.rule].id;
            let secret = &part[span.start..span.end];
            scrubber.mask.render(id, secret, &mut self.masked);
            self.counts[span.rule] += 1;
            edits.push(Edit {
                start: range.start + span.start,
                end: range.start + span.end,
                text: self.masked.clone(),
                rule: span.rule,
            });
        }
    }
}

/// `text` escaped for a JSON string: itself, when nothing in it needs an escape (a tag mask).
fn escaped_text(text: Vec<u8>) -> Vec<u8> {
    if !text.iter().copied().any(json::needs_escape) {
        return text;
    }
    let mut out = Vec::with_capacity(text.len() + 8);
    json::escape_into(&text, &mut out);
    out
}

/// A plain line stays one line, whatever the mask renders (OpenClaw's PEM style has newlines).
fn one_line(mut text: Vec<u8>) -> Vec<u8> {
    for b in text.iter_mut().filter(|b| **b == b'\n' || **b == b'\r') {
        *b = b' ';
    }
    text
}

fn apply(content: &[u8], edits: &mut [Edit], out: &mut Vec<u8>) {
    edits.sort_by_key(|e| e.start);
    let mut pos = 0;
    for e in edits.iter() {
        if e.start < pos {
            continue; // Cannot happen with resolved spans; never write a byte twice.
        }
        out.extend_from_slice(&content[pos..e.start]);
        out.extend_from_slice(&e.text);
        pos = e.end;
    }
    out.extend_from_slice(&content[pos..]);
}

/// Base64 lines, PEM headers (`Proc-Type: 4,ENCRYPTED`), OpenPGP armor headers (`Version:
/// GnuPG v2`, RFC 4880 6.2) and blank lines continue a block. Only these header names: any
/// `Name: value` would take the log lines after a key cut before its END line.
fn looks_like_block_body(line: &[u8]) -> bool {
    const HEADERS: [&[u8]; 7] = [
        b"Proc-Type:",
        b"DEK-Info:",
        b"Comment:",
        b"Version:",
        b"Hash:",
        b"Charset:",
        b"MessageID:",
    ];
    let line = line.trim_ascii();
    let base64 = line
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    (base64 && line.len() <= 128) || HEADERS.iter().any(|h| line.starts_with(h))
}

/// Widens `start..end` so neither end falls inside a `\x` or `\uXXXX` escape.
fn widen_to_escapes(text: &[u8], start: usize, end: usize) -> (usize, usize) {
    let escape_start = |pos: usize| -> Option<usize> {
        // Look back up to 5 bytes for a backslash that begins an escape covering `pos`.
        (pos.saturating_sub(5)..pos).find(|&i| {
            text[i] == b'\\' && backslashes_before(text, i).is_multiple_of(2) && {
                let len = if text.get(i + 1) == Some(&b'u') { 6 } else { 2 };
                i + len > pos
            }
        })
    };
    let start = escape_start(start).unwrap_or(start);
    let end = match escape_start(end) {
        Some(i) => (i + if text.get(i + 1) == Some(&b'u') { 6 } else { 2 }).min(text.len()),
        None => end,
    };
    (start, end)
}

fn backslashes_before(text: &[u8], i: usize) -> usize {
    text[..i].iter().rev().take_while(|&&b| b == b'\\').count()
}

/// True when every `"` in `span` (starting at `offset` in `text`) is escaped.
fn all_quotes_escaped(span: &[u8], text: &[u8], offset: usize) -> bool {
    span.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'"')
        .all(|(i, _)| backslashes_before(text, offset + i) % 2 == 1)
}
