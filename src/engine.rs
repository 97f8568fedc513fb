//! The matcher: one literal search over all rules' anchors, then per-rule confirmation in small
//! windows around hits, validators, and overlap resolution.
//!
//! Both the block-level search and the close look at a line use one [`Prefilter`] over the
//! substring-minimal literals, ASCII case ignored; a longer literal is looked for around the
//! hits of one it contains. Case-sensitive anchors are re-checked on the original bytes.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use aho_corasick::AhoCorasick;
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::Input;

use crate::json;
use crate::mask::{self, Mask};
use crate::prefilter::{occurs_at, Prefilter};
use crate::rules::{
    key_matches, normalize_key, AnchorCase, ByteSet, CheckCache, HitCheck, LazyRegex, Rule,
    Scanner, TrailingCache, MAX_CHECK_REACH,
};

/// The block-level search looks this far ahead at a time: hits past a triggered line's end
/// are kept for the lines after it, and a long triggered line is skipped unsearched.
const STRETCH: usize = 16 * 1024;
/// A literal's follow set (see [`Matcher::may_follow`]) is worked out after this many hits.
const FOLLOW_AFTER: u32 = 64;

/// A text this short is confirmed whole per triggered rule rather than in windows.
const WHOLE_TEXT: usize = 16 * 1024;

/// How many hits a rule whose matches start at an anchor but have no bound on their length is
/// confirmed from, each read as far as its match goes (see [`Matcher::find`]).
const MAX_UNBOUNDED_STARTS: usize = 8;

/// A redaction candidate: `text[start..end]` is a secret found by `rules[rule]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
    pub rule: usize,
}

/// All active rules compiled into one searcher.
#[derive(Debug)]
pub(crate) struct Matcher {
    pub rules: Vec<Rule>,
    /// The substring-minimal literals, searched at block level, and the global id of each.
    prefilter: Prefilter,
    searched: Vec<usize>,
    /// For each literal: the rules whose anchor occurs in the anchor it stands for (itself, or
    /// its unescaped form), with the offset of each occurrence.
    trigger_offsets: Vec<Vec<(usize, usize)>>,
    /// For each literal: how much decoded text its rules' hit checks need.
    check_reach: Vec<usize>,
    ipv6_rules: Vec<usize>,
    digits_colon_rules: Vec<usize>,
    /// The prefilter's index of the colon scanners' class window, when they are active: a hit
    /// at `p` is a `:` at `p + 3`.
    colon_window: Option<usize>,
    unanchored: Vec<usize>,
    /// For each literal: whether it is a JSON-escaped spelling of an anchor (or trigger-only).
    escaped: Vec<bool>,
    /// For each literal: whether a hit always gets the closer look, unchecked.
    always_look: Vec<bool>,
    /// Every literal, searched or not, lower case.
    literals: Vec<Vec<u8>>,
    /// For each searched literal: literals containing it that are not searched themselves,
    /// with its offset in them.
    extensions: Vec<Vec<(usize, usize)>>,
    /// Whether block-level hits are checked (see [`HitCheck`]); off only in tests.
    check_hits: bool,
    /// The rule redacting whole values of sensitive JSON keys, if active.
    pub json_key_rule: Option<usize>,
    /// Where a multi-line block (PEM) can open: the searched spellings of block rules'
    /// anchors, any case; `None` when some block rule has no anchor to look for.
    block_openers: Option<AhoCorasick>,
    /// Caches handed back by sessions that ended, for the next ones to start warm.
    spare_caches: CachePool,
    /// For each literal: its hits so far, up to [`FOLLOW_AFTER`], and then the bytes that may
    /// follow it for a regex hit check of its rules to pass (see [`LazyRegex::bytes_after`];
    /// `None` for any byte).
    follow: Vec<(AtomicU32, OnceLock<Option<ByteSet>>)>,
}

/// Warm caches handed back by finished sessions. Filling a fresh cache's lazy DFAs costs up to
/// half a millisecond of the input it first sees (1 MB session files); a tree of session
/// files, each scrubbed by a session of its own, would pay that for every file.
#[derive(Default)]
struct CachePool(Mutex<Vec<MatchCache>>);

impl std::fmt::Debug for CachePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachePool")
    }
}

/// More caches than this are not kept: sessions alive at once (one per followed file, say)
/// may outnumber the threads that will start new ones.
const MAX_SPARE_CACHES: usize = 16;

/// Where the block-level search stands in one region: the prefilter's hits found ahead
/// (sorted, those before `next` consumed) and how far the text has been searched for them, so
/// that no byte is searched twice.
#[derive(Debug, Default)]
pub(crate) struct TriggerScan {
    hits: Vec<(usize, usize)>,
    next: usize,
    searched_to: usize,
    newlines: NewlineMemo,
}

/// What the hit checks in one region know of its newlines: none in `from..to`, and one at
/// `to` when `newline` is set. Hits on a long line then search for its end once, not once each.
#[derive(Debug, Default)]
struct NewlineMemo {
    from: usize,
    to: usize,
    newline: bool,
}

impl NewlineMemo {
    /// The first newline in `text[at..horizon]`, else `horizon`.
    fn line_end(&mut self, text: &[u8], at: usize, horizon: usize) -> usize {
        if !(self.from..=self.to).contains(&at) {
            *self = NewlineMemo {
                from: at,
                to: at,
                newline: false,
            };
        }
        if self.newline || self.to >= horizon {
            return self.to.min(horizon);
        }
        match memchr::memchr(b'\n', &text[self.to..horizon]) {
            Some(i) => {
                self.to += i;
                self.newline = true;
            }
            None => self.to = horizon,
        }
        self.to
    }
}

/// Per-thread scratch: regex caches and buffers reused across calls. The default is empty, a
/// placeholder only: a cache to use comes from [`Matcher::take_cache`].
#[derive(Default)]
pub(crate) struct MatchCache {
    regex: Vec<Option<(meta::Cache, Captures, TrailingCache)>>,
    /// Literal hits in the text being looked at closely: start and literal.
    literal_hits: Vec<(usize, usize)>,
    /// Where the colon scanners may fire in that text.
    colons: Vec<usize>,
    /// Rule hits: rule, span of the literal (or, when the last field is set, the anchor and
    /// literal end: the rule's regex is run anchored at the start).
    hits: Vec<(usize, usize, usize, bool)>,
    /// One rule's merged confirmation windows, and the hits its regex runs anchored at.
    windows: Vec<(usize, usize)>,
    starts: Vec<usize>,
    candidates: Vec<Span>,
    /// The text after a block-level hit, each after one byte of left context: raw, then
    /// decoded once, twice and three times, as far as decoding changes it (see
    /// [`decoded_levels`]).
    levels: [Vec<u8>; 4],
    /// Scratch for decoding, and for [`first_decoded_byte`]'s short look.
    decoded: Vec<u8>,
    look: Vec<u8>,
    /// Caches of the rules' hit-check regexes, made on first use.
    check: Vec<CheckCache>,
    /// Caches of the lazy DFAs of the rules' own regexes, for hits where every match starts.
    anchored: Vec<CheckCache>,
}

/// The spellings of `lit` inside one more level of JSON string escaping.
fn json_escaped(lit: &[u8]) -> [Vec<u8>; 2] {
    // Emitters differ on `/` (PHP and some loggers escape it, Node does not), so both are
    // spellings; a nesting level may differ from the one around it. A mix within one level
    // (`:\//`) is not searched for: no emitter writes it.
    [false, true].map(|slash| {
        let mut out = Vec::with_capacity(lit.len() + 4);
        for &b in lit {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'/' if slash => out.extend_from_slice(b"\\/"),
                _ => out.push(b),
            }
        }
        out
    })
}

/// The literals the matcher looks for, each once, with what each stands for.
#[derive(Default)]
struct Spellings {
    patterns: Vec<Vec<u8>>,
    /// For each pattern: the anchors it spells (itself, or one it is an escaped spelling of).
    bases: Vec<Vec<Vec<u8>>>,
    /// For each pattern: whether it is also a trigger-only literal.
    trigger_only: Vec<bool>,
    index: std::collections::HashMap<Vec<u8>, usize>,
}

impl Spellings {
    /// Adds `spelling` as standing for `base`, or (`None`) as a trigger-only literal.
    fn add(&mut self, spelling: &[u8], base: Option<&[u8]>) {
        let i = *self.index.entry(spelling.to_vec()).or_insert_with(|| {
            self.patterns.push(spelling.to_vec());
            self.bases.push(Vec::new());
            self.trigger_only.push(false);
            self.patterns.len() - 1
        });
        match base {
            Some(base) if !self.bases[i].iter().any(|b| b == base) => {
                self.bases[i].push(base.to_vec())
            }
            Some(_) => {}
            None => self.trigger_only[i] = true,
        }
    }
}

impl Matcher {
    pub fn new(rules: Vec<Rule>, check_hits: bool) -> Result<Matcher, String> {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        for rule in &rules {
            for a in &rule.anchors {
                if !literals.contains(a) {
                    literals.push(a.clone());
                }
            }
        }
        // Each searched pattern with the anchors it stands for. An anchor can be split by JSON
        // escaping in a raw line (`\"password\"`, `:\/\/`, `\\\"`): its escaped spellings
        // trigger the same rules, so that line gets a closer, decoded look. One spelling can
        // stand for several anchors (a user's `:\/\/` is also the escaped `://`): it triggers
        // the rules of all of them.
        let mut spellings = Spellings::default();
        for lit in &literals {
            spellings.add(lit, Some(lit));
        }
        for lit in &literals {
            for once in json_escaped(lit) {
                for v in json_escaped(&once).into_iter().chain([once]) {
                    spellings.add(&v, Some(lit));
                }
            }
        }
        if !literals.is_empty() {
            // `\u0041`-style escapes of printable ASCII can hide any anchor in a raw JSON line;
            // these literals trigger no rule, only a closer (decoded) look at the line.
            for d in b'2'..=b'7' {
                spellings.add(&[b'\\', b'u', b'0', b'0', d], None);
            }
            // Strings nested three levels or more (JSON in a tool result in a transcript line,
            // inside one more string) escape past the spellings above: a `\/` two levels
            // further down is `\\\\/`, a `"` three levels down `\\\\\\\"`. Only such
            // nesting (or a backslash two levels down) writes four backslashes in a row: the
            // line gets the closer look, which decodes it level by level.
            spellings.add(b"\\\\\\\\", None);
        }
        // For each literal: the rules whose anchor occurs in an anchor it stands for, with the
        // offset (of the literals starting at one place, only the longest plain one is kept:
        // see `literal_hits`).
        let rules_with: Vec<Vec<usize>> = literals
            .iter()
            .map(|lit| {
                (0..rules.len())
                    .filter(|&r| rules[r].anchors.contains(lit))
                    .collect()
            })
            .collect();
        let anchors_in = overlapping_searcher(&literals)?;
        let trigger_offsets: Vec<Vec<(usize, usize)>> = spellings
            .bases
            .iter()
            .map(|bases| {
                let mut offsets = Vec::new();
                for base in bases {
                    for m in anchors_in.find_overlapping_iter(base) {
                        let rules = &rules_with[m.pattern().as_usize()];
                        offsets.extend(rules.iter().map(|&r| (r, m.start())));
                    }
                }
                offsets.sort_unstable();
                offsets.dedup();
                offsets
            })
            .collect();
        let escaped: Vec<bool> = spellings
            .patterns
            .iter()
            .zip(&spellings.bases)
            .zip(&spellings.trigger_only)
            .map(|((p, bases), &only)| only || bases.iter().any(|b| b != p))
            .collect();
        // A hit of these is always looked at closely: a trigger-only literal, or one standing for
        // anchors whose offsets are not all in the same (raw or decoded) text.
        let always_look: Vec<bool> = spellings
            .bases
            .iter()
            .zip(&spellings.trigger_only)
            .map(|(bases, &only)| only || bases.len() > 1)
            .collect();
        let patterns = spellings.patterns;
        // A literal containing another is not searched: it is looked for around each hit of
        // the one it contains (its "extension"). Fewer literals, fewer candidates; and no two
        // searched literals can start at the same place. `inner`: for each literal, the others
        // in it and where, in order.
        let patterns_in = overlapping_searcher(&patterns)?;
        let inner: Vec<Vec<(usize, usize)>> = patterns
            .iter()
            .enumerate()
            .map(|(d, long)| {
                let mut found: Vec<(usize, usize)> = patterns_in
                    .find_overlapping_iter(long)
                    .map(|m| (m.pattern().as_usize(), m.start()))
                    .filter(|&(q, _)| q != d)
                    .collect();
                found.sort_unstable();
                found
            })
            .collect();
        let ids: Vec<usize> = (0..patterns.len())
            .filter(|&d| inner[d].is_empty())
            .collect();
        let mut extensions: Vec<Vec<(usize, usize)>> = vec![Vec::new(); patterns.len()];
        for (d, found) in inner.iter().enumerate() {
            // Some searched literal lies inside every dropped one (substring-minimal ones are
            // all searched): the first of them, at its first offset.
            let searched = found.iter().find(|(q, _)| inner[*q].is_empty());
            if let Some(&(q, k)) = searched {
                extensions[q].push((d, k));
            }
        }
        let with = |s: Scanner| -> Vec<usize> {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.scanner == Some(s))
                .map(|(i, _)| i)
                .collect()
        };
        let (ipv6_rules, digits_colon_rules) = (with(Scanner::Ipv6), with(Scanner::DigitsColon));
        // Both scanners look at a `:` after at least four hex digits: the prefilter finds the
        // last three and the colon, in the same pass as the literals.
        let colon = (!ipv6_rules.is_empty() || !digits_colon_rules.is_empty()).then(|| {
            let hex = b"0123456789abcdefABCDEF".to_vec();
            vec![hex.clone(), hex.clone(), hex, b":".to_vec()]
        });
        let prefilter = Prefilter::new(
            &ids.iter().map(|&i| patterns[i].clone()).collect::<Vec<_>>(),
            colon.as_slice(),
        )?;
        let block_rules: Vec<usize> = (0..rules.len())
            .filter(|&r| rules[r].block_end.is_some())
            .collect();
        let block_openers = if block_rules
            .iter()
            .any(|&r| rules[r].is_unanchored() || rules[r].scanner.is_some())
        {
            None
        } else {
            let openers = patterns
                .iter()
                .zip(&trigger_offsets)
                .filter(|(_, t)| t.iter().any(|(r, _)| block_rules.contains(r)))
                .map(|(p, _)| p);
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(openers)
                    .map_err(|e| format!("block openers: {e}"))?,
            )
        };
        Ok(Matcher {
            colon_window: colon.map(|_| ids.len()),
            ipv6_rules,
            digits_colon_rules,
            unanchored: rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_unanchored())
                .map(|(i, _)| i)
                .collect(),
            json_key_rule: rules.iter().position(|r| !r.json_keys.is_empty()),
            block_openers,
            literals: patterns.clone(),
            escaped,
            always_look,
            extensions,
            check_hits,
            spare_caches: CachePool::default(),
            follow: patterns
                .iter()
                .map(|_| (AtomicU32::new(0), OnceLock::new()))
                .collect(),
            prefilter,
            searched: ids,
            check_reach: trigger_offsets
                .iter()
                .map(|offsets| {
                    offsets
                        .iter()
                        .map(|&(r, at)| match &rules[r].hit_check {
                            HitCheck::Regex { reach, .. } => at + reach,
                            _ => 0,
                        })
                        .max()
                        .unwrap_or(0)
                })
                .collect(),
            trigger_offsets,
            rules,
        })
    }

    /// A cache for a new session: one a finished session handed back, else a fresh one.
    pub fn take_cache(&self) -> MatchCache {
        self.spare_caches
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .unwrap_or_else(|| self.new_cache())
    }

    /// Takes back a session's cache for a later session.
    pub fn recycle_cache(&self, cache: MatchCache) {
        let mut spare = self
            .spare_caches
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if spare.len() < MAX_SPARE_CACHES {
            spare.push(cache);
        }
    }

    pub fn new_cache(&self) -> MatchCache {
        MatchCache {
            regex: self.rules.iter().map(|_| None).collect(),
            literal_hits: Vec::new(),
            colons: Vec::new(),
            hits: Vec::new(),
            windows: Vec::new(),
            starts: Vec::new(),
            candidates: Vec::new(),
            levels: Default::default(),
            decoded: Vec::new(),
            look: Vec::new(),
            check: self.rules.iter().map(|_| CheckCache::default()).collect(),
            anchored: self.rules.iter().map(|_| CheckCache::default()).collect(),
        }
    }

    /// False when no multi-line block can open in `text`, so the state after it is known
    /// without scrubbing it.
    pub fn may_open_block(&self, text: &[u8]) -> bool {
        self.block_openers
            .as_ref()
            .is_none_or(|openers| openers.is_match(text))
    }

    /// The block rule (a PEM key) with a match that ends `secret`, where `secret` was found
    /// by, or credited to, another rule.
    pub fn block_opened_by(&self, secret: &[u8]) -> Option<usize> {
        if !self.may_open_block(secret) {
            return None;
        }
        self.rules.iter().position(|rule| {
            rule.block_end.is_some()
                && rule.regex.as_ref().is_some_and(|re| {
                    re.get()
                        .find_iter(secret)
                        .last()
                        .is_some_and(|m| m.end() == secret.len())
                })
        })
    }

    /// True when every line must be looked at closely (a rule has no anchor).
    pub fn needs_every_line(&self) -> bool {
        !self.unanchored.is_empty()
    }

    /// A position at or after `from`, on the first line where an anchor or a scanner could
    /// fire. This is the block-level fast path: anchor hits are checked in place (see
    /// [`HitCheck`]) and only those that may lead to a secret are reported.
    pub fn next_trigger(
        &self,
        text: &[u8],
        from: usize,
        scan: &mut TriggerScan,
        cache: &mut MatchCache,
    ) -> Option<usize> {
        loop {
            while scan.hits.get(scan.next).is_some_and(|&(s, _)| s < from) {
                scan.next += 1;
            }
            let Some(&(start, p)) = scan.hits.get(scan.next) else {
                // Nothing found ahead: search the next stretch.
                let at = scan.searched_to.max(from);
                if at >= text.len() {
                    return None;
                }
                scan.searched_to = (at + STRETCH).min(text.len());
                scan.next = 0;
                self.prefilter
                    .find_starting_in(text, at..scan.searched_to, &mut scan.hits);
                continue;
            };
            let fires = if Some(p) == self.colon_window {
                self.colon_fires(text, start + 3)
            } else {
                self.hit_may_fire(text, start, self.searched[p], &mut scan.newlines, cache)
            };
            if fires {
                return Some(start);
            }
            scan.next += 1;
        }
    }

    /// The hit check of rule `r` at `text[at..]`, on text as it is (a plain line or decoded
    /// JSON string content).
    fn check_in_text(&self, text: &[u8], at: usize, r: usize, cache: &mut MatchCache) -> bool {
        match &self.rules[r].hit_check {
            HitCheck::Regex { regex, reach } if self.check_hits => {
                check_matches(regex, *reach, text, at, &mut cache.check[r])
            }
            _ => true,
        }
    }

    /// Whether the searched literal `pattern` found at `text[at..]`, or a longer literal that
    /// contains it there, may lead to a secret.
    fn hit_may_fire(
        &self,
        text: &[u8],
        at: usize,
        pattern: usize,
        newlines: &mut NewlineMemo,
        cache: &mut MatchCache,
    ) -> bool {
        self.literal_may_fire(text, at, pattern, newlines, cache)
            || self
                .extensions_at(text, at, pattern)
                .any(|(start, long)| self.literal_may_fire(text, start, long, newlines, cache))
    }

    /// The longer literals containing the searched literal `pattern` that occur around its hit
    /// at `at`: their starts and ids.
    fn extensions_at<'a>(
        &'a self,
        text: &'a [u8],
        at: usize,
        pattern: usize,
    ) -> impl Iterator<Item = (usize, usize)> + 'a {
        self.extensions[pattern]
            .iter()
            .filter_map(move |&(long, k)| {
                let start = at.checked_sub(k)?;
                occurs_at(text, start, &self.literals[long]).then_some((start, long))
            })
    }

    /// Whether the literal `pattern` found at `text[at..]` may lead to a secret.
    fn literal_may_fire(
        &self,
        text: &[u8],
        at: usize,
        pattern: usize,
        newlines: &mut NewlineMemo,
        cache: &mut MatchCache,
    ) -> bool {
        let offsets = &self.trigger_offsets[pattern];
        if self.always_look[pattern] || !self.check_hits {
            // A `\u00XX` escape, which can hide any anchor, or a spelling of several anchors.
            return true;
        }
        // The checks look a few KiB past the hit at most: the line end is searched for that
        // far, not through a long line once per hit. Past it, a check that runs out of text
        // lets the hit through.
        let horizon = text.len().min(at + CHECK_HORIZON);
        let line_end = newlines.line_end(text, at, horizon);
        let cut = line_end < text.len() && text[line_end] != b'\n';
        // The byte after the literal, decoded, may rule out every regex check at once.
        let next = at + self.literals[pattern].len();
        // A backslash is asked about as it is too: the close look reads plain text undecoded.
        let regex_may_pass = next >= line_end
            || match text[next] {
                b'\\' => {
                    self.may_follow(pattern, b'\\')
                        || first_decoded_byte(text, next, line_end, cache)
                            .is_none_or(|b| self.may_follow(pattern, b))
                }
                b => self.may_follow(pattern, b),
            };
        // How many levels of the text after the hit are decoded (see `decoded_levels`), once
        // a regex check asks for them.
        let mut decoded: Option<usize> = None;
        for &(r, offset) in offsets {
            let rule = &self.rules[r];
            match &rule.hit_check {
                HitCheck::None => return true,
                HitCheck::JsonKey => {
                    if json_key_hit(text, at, line_end, &rule.json_keys) != Some(false) {
                        return true;
                    }
                }
                HitCheck::Regex { .. } if !regex_may_pass => {}
                HitCheck::Regex { regex, reach } => {
                    let levels = match decoded {
                        Some(levels) => levels,
                        None => {
                            // One byte of left context, then the text from the hit on.
                            let want = self.check_reach[pattern] + 1;
                            let levels = decoded_levels(text, at, line_end, want, cache);
                            if cut && cache.levels[levels - 1].len() <= want {
                                return true;
                            }
                            *decoded.insert(levels)
                        }
                    };
                    let start = 1 + offset;
                    // The text decoded the most first: a JSON string's content, however deep.
                    // The close look decodes a JSON string once, a nested one again, and a
                    // plain line not at all: a check that fails there (`notion\n =
                    // Client(auth="…")`, where `[^\n]` met a decoded newline) is asked again
                    // of each level less decoded.
                    for level in cache.levels[..levels].iter().rev() {
                        if start > level.len() {
                            continue;
                        }
                        if rule.anchor_case == AnchorCase::Sensitive
                            && !rule
                                .exact_anchors
                                .iter()
                                .any(|a| level[start..].starts_with(a))
                        {
                            continue;
                        }
                        if check_matches(regex, *reach, level, start, &mut cache.check[r]) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    /// False when `next`, the byte right after literal `pattern`, rules out every regex hit
    /// check of its rules. Always true for an escaped spelling (its bytes are not those of the
    /// decoded text the checks run on), and until the literal has had enough hits to be worth
    /// the lazy DFA walk that works out its follow set (some 100 µs; most literals never hit
    /// that often).
    fn may_follow(&self, pattern: usize, next: u8) -> bool {
        let (hits, follow) = &self.follow[pattern];
        let after = match follow.get() {
            Some(&after) => after,
            None if hits.fetch_add(1, Ordering::Relaxed) < FOLLOW_AFTER => None,
            None => *follow.get_or_init(|| self.follow_set(pattern)),
        };
        after.is_none_or(|after| after.contains(next))
    }

    /// The bytes that may follow literal `pattern` for a regex hit check of one of its rules
    /// to pass (see [`LazyRegex::bytes_after`]); `None` when any may.
    fn follow_set(&self, pattern: usize) -> Option<ByteSet> {
        if self.escaped[pattern] {
            return None;
        }
        let literal = &self.literals[pattern];
        let mut after = ByteSet::default();
        for &(r, offset) in &self.trigger_offsets[pattern] {
            if let HitCheck::Regex { regex, .. } = &self.rules[r].hit_check {
                after = after.union(regex.bytes_after(literal.get(offset..)?)?);
            }
        }
        Some(after)
    }

    fn colon_fires(&self, text: &[u8], q: usize) -> bool {
        (!self.ipv6_rules.is_empty() && ipv6_colon(text, q).is_some())
            || (!self.digits_colon_rules.is_empty() && digits_colon(text, q))
    }

    /// Every literal occurring in `text`, the longest plain one at each start and every escaped
    /// spelling, sorted by start: the searched ones from the prefilter, and around each of their
    /// hits the longer literals that contain them. The colon scanners' hits (where the `:` is) go to `colons`.
    fn literal_hits(&self, text: &[u8], out: &mut Vec<(usize, usize)>, colons: &mut Vec<usize>) {
        self.prefilter.find_starting_in(text, 0..text.len(), out);
        colons.clear();
        out.retain(|&(at, p)| {
            let colon = Some(p) == self.colon_window;
            if colon {
                colons.push(at + 3);
            }
            !colon
        });
        for i in 0..out.len() {
            let q = self.searched[out[i].1];
            out[i].1 = q;
            let at = out[i].0;
            out.extend(self.extensions_at(text, at, q));
        }
        out.sort_unstable_by_key(|&(start, p)| (start, std::cmp::Reverse(self.literals[p].len())));
        // A shorter literal at the same start is a prefix of the longer one, whose triggers
        // include its rules, unless either is an escaped spelling: those trigger the rules of
        // the anchor they spell, not of what they contain (a user's `\"auth` inside the
        // escaped `\"auth\"` of a built-in `"auth"`), so both are kept.
        let mut plain_at = None;
        out.retain(|&(start, p)| self.escaped[p] || plain_at.replace(start) != Some(start));
    }

    /// Finds the secrets in `text` (a plain line or decoded JSON string content), resolved to
    /// non-overlapping spans sorted by start. Secrets `mask` already produced are skipped, so a
    /// second pass changes nothing.
    pub fn find(&self, text: &[u8], cache: &mut MatchCache, mask: &Mask, out: &mut Vec<Span>) {
        out.clear();
        cache.hits.clear();
        self.literal_hits(text, &mut cache.literal_hits, &mut cache.colons);
        let literal_hits = std::mem::take(&mut cache.literal_hits);
        for &(start, p) in &literal_hits {
            let end = start + self.literals[p].len();
            // The byte after the literal may rule out every regex hit check at once.
            let regex_may_pass =
                !self.check_hits || text.get(end).is_none_or(|&b| self.may_follow(p, b));
            for &(r, offset) in &self.trigger_offsets[p] {
                let rule = &self.rules[r];
                let exact = rule.anchor_case == AnchorCase::Insensitive
                    || rule
                        .exact_anchors
                        .iter()
                        .any(|a| occurrences(&text[start..end], a).next().is_some());
                if !exact {
                    continue;
                }
                // Escaped spellings are confirmed in a window around them, as their offsets
                // are those of the unescaped anchor. Where every match starts at an anchor, the
                // regex is run anchored there: that is the hit check and the confirmation in
                // one. Other hits are checked (pruning random hits, in base64 blobs, say)
                // before their rule's regex is run around them.
                if self.escaped[p] {
                    cache.hits.push((r, start, end, false));
                } else if rule.starts_at_anchor && self.check_hits {
                    // Until the rule's regex is compiled, its lazy DFA tells whether a match
                    // starts here at all. Most such hits are chance ones (decoys: `sk-` in a
                    // slug), and the full regex costs several times the DFA to build.
                    // A rule whose match may run on without bound reads as far as the match
                    // goes: its DFA would read a decoy's rest of the text (`eyJ-eyJ-…`).
                    let at = start + offset;
                    let may_match = rule.regex.as_ref().is_none_or(|re| {
                        re.is_compiled()
                            || rule.reach > MAX_CHECK_REACH
                            || check_matches(re, rule.reach, text, at, &mut cache.anchored[r])
                    });
                    if may_match {
                        cache.hits.push((r, at, end, true));
                    }
                } else if (regex_may_pass || !matches!(rule.hit_check, HitCheck::Regex { .. }))
                    && self.check_in_text(text, start + offset, r, cache)
                {
                    cache.hits.push((r, start, end, false));
                }
            }
        }
        cache.literal_hits = literal_hits;
        for &q in &cache.colons {
            if let Some(start) = ipv6_colon(text, q) {
                let hits = self.ipv6_rules.iter().map(|&r| (r, start, q + 1, false));
                cache.hits.extend(hits);
            }
            if digits_colon(text, q) {
                let hits = self
                    .digits_colon_rules
                    .iter()
                    .map(|&r| (r, q, q + 1, false));
                cache.hits.extend(hits);
            }
        }
        cache
            .hits
            .extend(self.unanchored.iter().map(|&r| (r, 0, text.len(), false)));
        if cache.hits.is_empty() {
            return;
        }
        cache.hits.sort_unstable();
        cache.candidates.clear();
        let mut windows = std::mem::take(&mut cache.windows);
        let mut starts = std::mem::take(&mut cache.starts);
        let mut i = 0;
        while i < cache.hits.len() {
            let rule_idx = cache.hits[i].0;
            let first_hit = i;
            let rule = &self.rules[rule_idx];
            let reach = rule.reach;
            // Merge this rule's hit windows, then confirm each merged window once; a hit where
            // every match must start is confirmed there alone. A match that may run on without
            // bound is searched for from at most `MAX_UNBOUNDED_STARTS` hits, each reading as
            // far as the match goes; more such hits are windows, so that a text full of decoys
            // costs time linear in its length.
            windows.clear();
            starts.clear();
            let this_rule = cache.hits[i..].iter().take_while(|h| h.0 == rule_idx);
            let from_starts = reach <= MAX_CHECK_REACH
                || this_rule.filter(|h| h.3).count() <= MAX_UNBOUNDED_STARTS;
            while i < cache.hits.len() && cache.hits[i].0 == rule_idx {
                let (_, s, e, at_start) = cache.hits[i];
                i += 1;
                if at_start && from_starts {
                    starts.push(s);
                    continue;
                }
                let (ws, we) = if text.len() <= WHOLE_TEXT {
                    (0, text.len())
                } else {
                    (s.saturating_sub(reach), (e + reach).min(text.len()))
                };
                match windows.last_mut() {
                    Some(last) if ws <= last.1 => last.1 = last.1.max(we),
                    _ => windows.push((ws, we)),
                }
            }
            let Some(regex) = rule.regex.as_ref().map(|r| r.get()) else {
                continue;
            };
            let (re_cache, caps, trailing) = cache.regex[rule_idx]
                .get_or_insert_with(|| (regex.create_cache(), regex.create_captures(), Vec::new()));
            let inside = Inside {
                hits: &cache.hits[first_hit..i],
            };
            let mut confirm = |input: &Input| {
                self.confirm(
                    rule_idx,
                    text,
                    input,
                    (re_cache, caps, trailing),
                    mask,
                    &mut cache.candidates,
                )
            };
            for &(ws, we) in &windows {
                inside.follow(ws, |at| {
                    (at <= we)
                        .then(|| confirm(&Input::new(text).span(at..we)))
                        .flatten()
                });
            }
            // Anchored at each start, skipping those inside the last match as the window
            // search above would: the same matches, without the reverse scan for their starts.
            starts.dedup();
            inside.follow(0, |at| {
                let first = starts.partition_point(|&start| start < at);
                starts[first..].iter().find_map(|&start| {
                    // A match is at most `reach` long (look-around sees past the span).
                    let input = Input::new(text)
                        .span(start..(start + reach).min(text.len()))
                        .anchored(regex_automata::Anchored::Yes);
                    confirm(&input)
                })
            });
        }
        (cache.windows, cache.starts) = (windows, starts);
        resolve_overlaps(&mut cache.candidates, out);
    }
}

impl Matcher {
    /// Searches `input` with rule `rule_idx`'s regex and makes its secret a candidate unless a
    /// validator, an allowlist or an earlier mask says otherwise. Returns the match, or `None`
    /// when nothing matched.
    #[allow(clippy::too_many_arguments)]
    fn confirm(
        &self,
        rule_idx: usize,
        text: &[u8],
        input: &Input,
        (re_cache, caps, trailing): (&mut meta::Cache, &mut Captures, &mut TrailingCache),
        mask: &Mask,
        candidates: &mut Vec<Span>,
    ) -> Option<Found> {
        let rule = &self.rules[rule_idx];
        let regex = rule.regex.as_ref()?.get();
        // The DFAs alone find the match, and the secret when it is the whole match or ends it
        // (see `TrailingGroup`); the capture engine finds the rest.
        let trailing_group = rule.trailing_group.as_ref().filter(|g| g.may_be_usable());
        let by_dfas = if rule.group_is_match || trailing_group.is_some() {
            let m = regex.search_with(re_cache, input)?;
            match trailing_group {
                None => Some((m, m.span())),
                Some(group) => group.secret(text, m.span(), trailing).map(|g| (m, g)),
            }
        } else {
            None
        };
        let (m, g) = match by_dfas {
            Some(found) => found,
            None => {
                regex.search_captures_with(re_cache, input, caps);
                secret_of(rule, caps)?
            }
        };
        let is_rule_id = |id: &[u8]| self.is_rule_id(id);
        let next = g.end.max(m.start() + 1);
        let g = match mask.run_past(text, g.start, g.end, is_rule_id) {
            None => Some(g),
            Some(tag) => match self.found_without_masks(
                rule_idx,
                text,
                m.start(),
                &tag,
                mask,
                (re_cache, caps),
            ) {
                Recheck::MadeUp => None,
                // The same secret, not one further on.
                Recheck::Real(found) => Some(found).filter(|found| {
                    (tag.end..g.end).contains(&found.start)
                        && mask
                            .run_past(text, found.start, found.end, is_rule_id)
                            .is_none()
                }),
                Recheck::Unknown => Some(g),
            },
        };
        let found = |value: Option<regex_automata::Span>| Found {
            start: m.start(),
            next,
            value: value.filter(|g| g.start > m.start()).map(|g| g.range()),
        };
        let Some(g) = g else {
            return Some(found(None));
        };
        let accepted = !g.is_empty()
            && rule
                .validators
                .iter()
                .all(|v| v.check(text, g.start, g.end))
            && !rule
                .allowlists
                .iter()
                .any(|a| a.allows(text, m.range(), g.range()))
            && !mask.is_masked_in(text, g.start, g.end, is_rule_id);
        if accepted {
            candidates.push(Span {
                start: g.start,
                end: g.end,
                rule: rule_idx,
            });
        }
        Some(found(Some(g)))
    }

    /// Whether `id` names one of the rules: a tag naming one is a mask this scrubber made.
    fn is_rule_id(&self, id: &[u8]) -> bool {
        self.rules.iter().any(|r| r.id.as_bytes() == id)
    }

    /// Rule `rule_idx` matched at `from` a secret that starts inside `mask_at` (a rule's tag,
    /// or the fixed mask) and runs past it. The mask's own `:` may be what let it match: the
    /// rule is run again from `from` on a copy of at most [`RECHECK_REACH`] bytes with the `:`
    /// of every mask in it blanked out. A secret it still finds there was in the input (a
    /// password after a tag another scrubber left); none was made up by the mask, and a second
    /// pass over this scrubber's output leaves it alone.
    fn found_without_masks(
        &self,
        rule_idx: usize,
        text: &[u8],
        from: usize,
        mask_at: &std::ops::Range<usize>,
        mask: &Mask,
        (re_cache, caps): (&mut meta::Cache, &mut Captures),
    ) -> Recheck {
        let rule = &self.rules[rule_idx];
        let Some(regex) = rule.regex.as_ref().map(|r| r.get()) else {
            return Recheck::Unknown;
        };
        // One byte either side of the copy, as the text has it, for look-around (`\b`, `^`).
        let ws = from.saturating_sub(1);
        let end = (from + rule.reach.min(RECHECK_REACH)).min(text.len());
        let we = (end + 1).min(text.len());
        if mask_at.start >= we {
            return Recheck::Unknown;
        }
        // A mask the copy's end cuts is copied whole, so that its `:` is blanked too.
        let copy_end = (we + mask::LONGEST_MASK).min(text.len());
        let mut copy = text[ws..copy_end].to_vec();
        mask.blank_colons(&mut copy, |id| self.is_rule_id(id));
        // The mask the secret starts in may begin before the copy does.
        mask::blank_colons_in(
            &mut copy,
            mask_at.start.max(ws) - ws..mask_at.end.min(we) - ws,
        );
        let input = Input::new(&copy).span(from - ws..end - ws);
        regex.search_captures_with(re_cache, &input, caps);
        match secret_of(rule, caps) {
            None => Recheck::MadeUp,
            // It may go on past the copy.
            Some((m, _)) if m.end() + ws >= end && end < text.len() => Recheck::Unknown,
            Some((_, g)) => Recheck::Real(regex_automata::Span::from(g.start + ws..g.end + ws)),
        }
    }
}

/// One match of a rule, as [`Matcher::confirm`] saw it.
struct Found {
    start: usize,
    /// Where the next match may start: past the secret, not the match, as a boundary the
    /// match used after the secret (`fe80::1[fe80::1`) may start the next match.
    next: usize,
    /// The secret, taken or turned down, when a key came before it in the match; `None` also
    /// when a mask made it up (see [`Matcher::found_without_masks`]).
    value: Option<std::ops::Range<usize>>,
}

/// One rule's search over a text, and a second look inside the values it finds.
///
/// The search goes on past each secret, as a rule's matches do not overlap. A value may hold
/// the key of another match, though, whose secret then goes unseen: in `token: token: hunter2`
/// the first value is `token:`; `--token <x<--token --token` turns its value down and hides
/// a flag. So a value that holds one of the rule's hits is searched again for the matches that
/// start inside it, and so are their values, [`INSIDE_DEPTH`] levels down. That search only
/// adds candidates: the search proper goes on as before, so nothing it finds is lost.
///
/// Each level is one search through its value, so the cost is linear: at most
/// `INSIDE_DEPTH + 1` times the old one, on values nested in values (`token:token:…`, each
/// running to the line's end). A cap on bytes instead would depend on how long the values are,
/// which masking changes: a second pass would look further than the first.
struct Inside<'a> {
    /// The rule's hits in the text, sorted by start.
    hits: &'a [(usize, usize, usize, bool)],
}

/// How many levels of values in values [`Inside`] searches: three finds the secret in
/// `token: password=x--password=xtoken: hunter2`.
const INSIDE_DEPTH: usize = 3;

impl Inside<'_> {
    /// Runs the search from `at`: `next_match(at)` finds the first match starting at or after
    /// `at` and makes it a candidate if it holds a secret.
    fn follow(&self, mut at: usize, mut next_match: impl FnMut(usize) -> Option<Found>) {
        while let Some(found) = next_match(at) {
            self.search(&found, 1, &mut next_match);
            at = found.next;
        }
    }

    /// When the value of `found` holds a hit, finds the matches starting inside it, and
    /// inside theirs, `depth` levels down.
    fn search(
        &self,
        found: &Found,
        depth: usize,
        next_match: &mut impl FnMut(usize) -> Option<Found>,
    ) {
        let Some(value) = (found.value.clone()).filter(|v| depth <= INSIDE_DEPTH && self.hit_in(v))
        else {
            return;
        };
        let mut at = value.start;
        while at < value.end {
            let Some(inner) = next_match(at) else {
                return;
            };
            if inner.start >= value.end {
                // The search proper finds it.
                return;
            }
            self.search(&inner, depth + 1, next_match);
            at = inner.next;
        }
    }

    fn hit_in(&self, range: &std::ops::Range<usize>) -> bool {
        let first = self
            .hits
            .partition_point(|&(_, start, ..)| start < range.start);
        self.hits
            .get(first)
            .is_some_and(|&(_, start, ..)| start < range.end)
    }
}

/// What [`Matcher::found_without_masks`] makes of a secret that runs out of a mask.
enum Recheck {
    /// The rule finds nothing with the masks' `:` blanked out: the mask made the secret up.
    MadeUp,
    /// The rule still finds this secret.
    Real(regex_automata::Span),
    /// The copy cannot tell (the match reaches its end): the secret is taken as found.
    Unknown,
}

/// How far [`Matcher::found_without_masks`] looks: it copies the text it searches.
const RECHECK_REACH: usize = 4096;

/// The match in `caps` and its secret: the rule's secret group, else (it did not take part)
/// the last group that did, as OpenClaw masks, else the whole match.
pub(crate) fn secret_of(
    rule: &Rule,
    caps: &Captures,
) -> Option<(regex_automata::Match, regex_automata::Span)> {
    let m = caps.get_match()?;
    let g = caps
        .get_group(rule.secret_group)
        .or_else(|| (1..caps.group_len()).rev().find_map(|i| caps.get_group(i)))
        .unwrap_or_else(|| m.span());
    Some((m, g))
}

/// A searcher for every occurrence of each of `needles` (distinct, non-empty), overlaps
/// included: the matcher's start-up asks which literals occur in which some hundred thousand
/// times.
fn overlapping_searcher(needles: &[Vec<u8>]) -> Result<AhoCorasick, String> {
    // Searched once per literal: the cheapest automaton to build wins.
    AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::NoncontiguousNFA))
        .build(needles)
        .map_err(|e| format!("literal index: {e}"))
}

/// Where `needle` occurs in `haystack`, overlaps included. Both are a few bytes long (an
/// anchor and a literal hit): a plain scan beats building a `memmem` searcher.
fn occurrences<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    haystack
        .windows(needle.len().max(1))
        .enumerate()
        .filter(move |(_, w)| w.first() == needle.first() && *w == needle)
        .map(|(i, _)| i)
}

/// Whether a hit-check regex matches anchored at `haystack[at..]`, looking at most `reach`
/// bytes (and one more, for a trailing look-around) ahead.
fn check_matches(
    regex: &LazyRegex,
    reach: usize,
    haystack: &[u8],
    at: usize,
    cache: &mut CheckCache,
) -> bool {
    let input = Input::new(haystack)
        .span(at..(at + reach + 1).min(haystack.len()))
        .anchored(regex_automata::Anchored::Yes)
        .earliest(true);
    regex.matches_at(&input, cache)
}

/// Fills `cache.levels` with the text from `at` on, at least `want` bytes of its most decoded
/// level when the line is that long, and returns how many levels it filled. Each level starts
/// with one byte of left context for `text[at]`: `levels[0]` is the text raw after the byte
/// before it; each next one is the one before JSON-decoded, after that byte decoded (see
/// [`decoded_context`]), as long as decoding changes it, up to three decodings.
/// When nothing decodes but the context byte does, the last level is the raw text after its
/// decoded context (`\nsk-…`: a word boundary before `sk-` once decoded).
fn decoded_levels(
    text: &[u8],
    at: usize,
    line_end: usize,
    want: usize,
    cache: &mut MatchCache,
) -> usize {
    let raw_context = if at == 0 { b' ' } else { text[at - 1] };
    let context = decoded_context(text, at);
    let mut take = 2 * want + 16;
    loop {
        let end = (at + take).min(line_end);
        let raw = &mut cache.levels[0];
        raw.clear();
        raw.push(raw_context);
        raw.extend_from_slice(&text[at..end]);
        let mut filled = 1;
        while filled < cache.levels.len() {
            let (done, rest) = cache.levels.split_at_mut(filled);
            let from = &done[filled - 1][1..];
            let next = &mut rest[0];
            // An escape JSON does not know (`\\x`) is kept as it is: such a level would only
            // repeat the one before.
            let decodes = memchr::memchr(b'\\', from).is_some() && {
                json::decode(from, &mut cache.decoded, None);
                cache.decoded != from
            };
            if decodes {
                next.clear();
                next.push(context);
                next.extend_from_slice(&cache.decoded);
            } else if filled == 1 && context != raw_context {
                next.clear();
                next.push(context);
                next.extend_from_slice(from);
            } else {
                break;
            }
            filled += 1;
        }
        if cache.levels[filled - 1].len() > want || end == line_end {
            return filled;
        }
        take *= 4;
    }
}

/// The first byte of `text[at..line_end]` as [`decoded_levels`] decodes it the most, found
/// from a short look: none when it is a backslash still (an escape the look cut, or no escape
/// at all). A window decoded for each of a line of hits such as `ya29.\\n` (a backslash after
/// every literal, so no first byte to rule them out) made 60 KB of them take 80 ms.
fn first_decoded_byte(
    text: &[u8],
    at: usize,
    line_end: usize,
    cache: &mut MatchCache,
) -> Option<u8> {
    // Longer than any escape of one character, escaped twice more.
    const LOOK: usize = 48;
    let look = &mut cache.look;
    look.clear();
    look.extend_from_slice(&text[at..line_end.min(at + LOOK)]);
    // Decoding changes nothing before the first backslash.
    for _ in 0..3 {
        if look.first() != Some(&b'\\') {
            break;
        }
        json::decode(look, &mut cache.decoded, None);
        std::mem::swap(look, &mut cache.decoded);
    }
    look.first().copied().filter(|&b| b != b'\\')
}

/// The byte before `text[at]`, decoded: itself, unless it ends an escape: `\n` decodes to a
/// control character or punctuation, never a word character; `\u000A` to what it says.
fn decoded_context(text: &[u8], at: usize) -> u8 {
    match at {
        0 => b' ',
        1 => text[0],
        _ if text[at - 2] == b'\\' => b' ',
        _ => unicode_escape_before(text, at).unwrap_or(text[at - 1]),
    }
}

/// The character a `\uXXXX` escape ending at `at` decodes to, as one byte of context: itself
/// when ASCII, else a space (no byte of a non-ASCII character is a word character to the
/// rules' ASCII boundaries). Whether the backslash is itself escaped is not asked: taking an
/// escape that is not one can only let a hit through to the closer look.
fn unicode_escape_before(text: &[u8], at: usize) -> Option<u8> {
    let start = at.checked_sub(6)?;
    if !text[start..].starts_with(b"\\u") {
        return None;
    }
    let unit = json::hex4(text, start + 2)?;
    Some(u8::try_from(unit).ok().filter(u8::is_ascii).unwrap_or(b' '))
}

/// True when `text[at..]` may lie inside a JSON object key (`"name":`, possibly escaped as
/// `\"name\":`) whose normalised name is one of `keys`. The key is taken from the quote
/// before the hit to the quote after it, whatever lies between (`"10.api_key"` ends like
/// `apikey`); a key longer than [`MAX_KEY_SCAN`] is given the closer look. `None`: the text
/// up to `line_end` (which may cut the line short) does not tell.
fn json_key_hit(text: &[u8], at: usize, line_end: usize, keys: &[Vec<u8>]) -> Option<bool> {
    let from = at.saturating_sub(MAX_KEY_SCAN);
    let start = match memchr::memrchr2(b'"', b'\n', &text[from..at]) {
        Some(i) if text[from + i] == b'"' => from + i + 1,
        Some(_) => return Some(false),
        None => return Some(from > 0),
    };
    let to = line_end.min(at + MAX_KEY_SCAN);
    let Some(end) = memchr::memchr2(b'"', b'\\', &text[at..to]).map(|i| at + i) else {
        return Some(to < line_end);
    };
    let mut i = end;
    while i < line_end && text[i] == b'\\' {
        i += 1;
    }
    // Out of text: the line ended (no key), or was cut short by the caller (cannot tell).
    let cut = line_end < text.len() && text[line_end] != b'\n';
    if i == line_end {
        return (!cut).then_some(false);
    }
    if text[i] != b'"' {
        return Some(false);
    }
    i += 1;
    while i < line_end && matches!(text[i], b' ' | b'\t') {
        i += 1;
    }
    if i == line_end {
        return (!cut).then_some(false);
    }
    Some(text[i] == b':' && key_matches(keys, &normalize_key(&text[start..end])))
}

/// How far past a hit its checks may read, decoding included (checks are capped at 2 KiB of
/// decoded text).
const CHECK_HORIZON: usize = 64 * 1024;

/// How far around a hit the JSON key check looks for the quotes of its key.
const MAX_KEY_SCAN: usize = 256;

/// Merges overlapping candidates into one redaction each, covering all of them, so that no
/// piece of a candidate is left for a second pass to find (`Bearer key=abc:def`: the bearer
/// rule's `key=abc` and the assignment's `abc:def`). Each redaction is credited to its
/// longest candidate, ties going to the earlier (higher priority) rule; sorted by start.
pub(crate) fn resolve_overlaps(candidates: &mut [Span], out: &mut Vec<Span>) {
    candidates.sort_unstable_by_key(|s| (s.start, s.end));
    out.clear();
    let mut credited = 0;
    for &c in candidates.iter() {
        let len = c.end - c.start;
        match out.last_mut() {
            Some(last) if c.start < last.end => {
                if len > credited || (len == credited && c.rule < last.rule) {
                    last.rule = c.rule;
                    credited = len;
                }
                last.end = last.end.max(c.end);
            }
            _ => {
                out.push(c);
                credited = len;
            }
        }
    }
}

/// When `text[q]` is the `:` after a 4-hex first group of fc00::/7 or fe80::/10, its start.
fn ipv6_colon(text: &[u8], q: usize) -> Option<usize> {
    let start = q.checked_sub(4)?;
    let g = &text[start..q];
    let first_ok = g[0] | 0x20 == b'f'
        && (matches!(g[1] | 0x20, b'c' | b'd')
            || (g[1] | 0x20 == b'e' && matches!(g[2] | 0x20, b'8' | b'9' | b'a' | b'b')));
    // The byte before the address as decoded: a letter or digit there may end a JSON escape
    // (`\nfd7a:…`, `\u000afd7a:…` in a raw line).
    let before = decoded_context(text, start);
    let boundary = !(before.is_ascii_alphanumeric() || before == b':');
    (first_ok && g.iter().all(u8::is_ascii_hexdigit) && boundary).then_some(start)
}

/// True when `text[q]` is a `:` after six or more digits and before a token character.
fn digits_colon(text: &[u8], q: usize) -> bool {
    q >= 6
        && text[q - 6..q].iter().all(u8::is_ascii_digit)
        && text
            .get(q + 1)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scrubber of `pack`'s rules alone, with or without hit checks.
    fn scrubber_of(pack: &crate::rules::RulePack, check_hits: bool) -> crate::Scrubber {
        crate::Scrubber::builder()
            .builtin(false)
            .pack(pack.clone())
            .check_hits(check_hits)
            .build()
            .unwrap()
    }

    #[test]
    fn overlaps_merge_credited_to_longest_then_priority() {
        let mut c = vec![
            Span {
                start: 0,
                end: 5,
                rule: 1,
            },
            Span {
                start: 2,
                end: 10,
                rule: 2,
            },
            Span {
                start: 2,
                end: 10,
                rule: 0,
            },
            Span {
                start: 12,
                end: 14,
                rule: 3,
            },
        ];
        let mut out = Vec::new();
        resolve_overlaps(&mut c, &mut out);
        assert_eq!(
            out,
            vec![
                Span {
                    start: 0,
                    end: 10,
                    rule: 0
                },
                Span {
                    start: 12,
                    end: 14,
                    rule: 3
                }
            ]
        );
    }

    /// The longest plain literal and every escaped spelling at each start, by brute force over
    /// every literal.
    fn naive_literal_hits(m: &Matcher, text: &[u8]) -> Vec<(usize, usize)> {
        let mut hits = Vec::new();
        for start in 0..text.len() {
            let found = (0..m.literals.len()).filter(|&p| {
                let lit = &m.literals[p];
                text.get(start..start + lit.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(lit))
            });
            let (escaped, plain): (Vec<usize>, Vec<usize>) = found.partition(|&p| m.escaped[p]);
            let longest_plain = plain.into_iter().max_by_key(|&p| m.literals[p].len());
            let mut lens: Vec<usize> = escaped
                .into_iter()
                .chain(longest_plain)
                .map(|p| m.literals[p].len())
                .collect();
            lens.sort_unstable_by(|a, b| b.cmp(a));
            hits.extend(lens.into_iter().map(|len| (start, len)));
        }
        hits
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::proptest_cases(200)))]
        /// The prefilter and the extensions around its hits find what a search for every
        /// literal of the built-in rules finds: text made of pieces of those literals, in any
        /// case, with noise between them.
        #[test]
        fn literal_hits_match_a_search_for_every_literal(
            pieces in proptest::collection::vec(
                (0usize..10_000, 0usize..12, 0usize..12, proptest::bits::u16::ANY, 0u8..4),
                0..40,
            ),
        ) {
            let scrubber = crate::Scrubber::builder().build().unwrap();
            let m = &scrubber.matcher;
            let mut text = Vec::new();
            for (lit, from, len, case, noise) in pieces {
                let lit = &m.literals[lit % m.literals.len()];
                let from = from.min(lit.len());
                let piece = &lit[from..(from + len.max(1)).min(lit.len())];
                text.extend(piece.iter().enumerate().map(|(i, &b)| {
                    if case >> (i % 16) & 1 == 1 { b.to_ascii_uppercase() } else { b }
                }));
                text.extend(std::iter::repeat_n(b" \\\"x"[usize::from(noise)], usize::from(noise)));
            }
            let mut hits = Vec::new();
            m.literal_hits(&text, &mut hits, &mut Vec::new());
            // Literals of equal length at a start are equal, case aside: compare lengths.
            let hits: Vec<(usize, usize)> =
                hits.iter().map(|&(s, p)| (s, m.literals[p].len())).collect();
            proptest::prop_assert_eq!(hits, naive_literal_hits(m, &text));
        }
    }

    /// A rule whose anchor lies inside another rule's literal (`abc` in `xyzabc`) is run
    /// anchored at its own anchor, not at the literal's start; and matches inside an earlier
    /// match are skipped as the window search skips them.
    #[test]
    fn anchored_confirmation_starts_at_the_anchor() {
        let pack = crate::rules::RulePack::parse(
            "test",
            r#"
            [[rule]]
            id = "long"
            description = "x"
            category = "credential"
            regex = 'xyzabc\d{3}'
            [[rule]]
            id = "short"
            description = "x"
            category = "credential"
            regex = 'abc\d{2}'
            [[rule]]
            id = "chain"
            description = "x"
            category = "credential"
            regex = 'qrs\d{2}(?:qrs)?'
            "#,
        )
        .unwrap();
        let out = |check_hits: bool, text: &str| {
            let s = scrubber_of(&pack, check_hits);
            assert!(s.matcher.rules.iter().all(|r| r.starts_at_anchor));
            String::from_utf8(s.scrub_bytes(text.as_bytes())).unwrap()
        };
        for text in [
            "xyzabc12 and xyzabc123",
            "abc12abc34 xyzabc1234 abcabc99",
            "qrs12qrs34",
        ] {
            assert_eq!(out(true, text), out(false, text), "{text}");
        }
        assert_eq!(
            out(true, "xyzabc12 and xyzabc123"),
            "xyz[REDACTED:short] and [REDACTED:long]"
        );
        // The second anchor lies inside the first match: not a start of its own.
        assert_eq!(out(true, "qrs12qrs34"), "[REDACTED:chain]34");
    }

    /// Rules whose matches start at an anchor but have no bound on their length are confirmed
    /// from their hits too (reading as far as the match goes), up to `MAX_UNBOUNDED_STARTS`
    /// hits; past that, by a window search. Either way, as the window search alone finds.
    #[test]
    fn unbounded_matches_are_confirmed_from_their_anchors() {
        let pack = crate::rules::RulePack::parse(
            "test",
            r#"
            [[rule]]
            id = "tok"
            description = "x"
            category = "credential"
            regex = '\b(tok_[A-Za-z0-9]{8,})\b'
            [[rule]]
            id = "auth"
            description = "x"
            category = "credential"
            regex = '(?i)Authorization\s*[:=]\s*(\S+)'
            secret_group = 1
            "#,
        )
        .unwrap();
        let out = |check_hits: bool, text: &str| {
            let s = scrubber_of(&pack, check_hits);
            // The second has 2^13 case spellings: found with its case folded.
            assert!(s.matcher.rules.iter().all(|r| r.starts_at_anchor));
            assert!(s.matcher.rules.iter().all(|r| r.reach > MAX_CHECK_REACH));
            String::from_utf8(s.scrub_bytes(text.as_bytes())).unwrap()
        };
        let many = "tok_abc ".repeat(3 * MAX_UNBOUNDED_STARTS) + "tok_abcdefghij AUTHORIZATION: x";
        for text in [
            "tok_abcdefghij tok_short xtok_abcdefghij tok_abcdefghijklmnop",
            "authorization: tok_abcdefghij and AuThOrIzAtIoN = y",
            &many,
        ] {
            assert_eq!(out(true, text), out(false, text), "{text}");
        }
        assert_eq!(
            out(true, &many),
            "tok_abc ".repeat(3 * MAX_UNBOUNDED_STARTS)
                + "[REDACTED:tok] AUTHORIZATION: [REDACTED:auth]"
        );
        assert_eq!(
            out(true, "authorization: tok_abcdefghij and AuThOrIzAtIoN = y"),
            "authorization: [REDACTED:tok] and AuThOrIzAtIoN = [REDACTED:auth]"
        );
    }

    /// A rule whose anchor must match in its own case but whose regex ignores case has matches
    /// that start at no hit (`authz_key` with anchor `Authz_key`): it is not confirmed from its
    /// hits alone, and the search of the text around a hit finds the other spellings.
    #[test]
    fn a_case_sensitive_anchor_of_a_caseless_regex_is_not_where_matches_start() {
        for regex in [
            r"(?i)authz_key\s*[:=]\s*(\S+)",
            r"(?i)ab_key ?[:=] ?(\S{1,50})",
        ] {
            let anchor = if regex.contains("authz") {
                "Authz_key"
            } else {
                "Ab_key"
            };
            let toml = format!(
                "[[rule]]\nid = \"authx\"\ndescription = \"x\"\ncategory = \"credential\"\n\
                 regex = '{regex}'\nsecret_group = 1\nanchors = [\"{anchor}\"]\n"
            );
            let pack = crate::rules::RulePack::parse("test", &toml).unwrap();
            let s = scrubber_of(&pack, true);
            assert!(!s.matcher.rules[0].starts_at_anchor, "{regex}");
            let lower = anchor.to_ascii_lowercase();
            let upper = anchor.to_ascii_uppercase();
            let text = format!("{anchor}: aaa {lower}: hunter2secret {upper}=zzzsecret");
            let out = String::from_utf8(s.scrub_bytes(text.as_bytes())).unwrap();
            assert_eq!(
                out,
                format!(
                    "{anchor}: [REDACTED:authx] {lower}: [REDACTED:authx] {upper}=[REDACTED:authx]"
                ),
                "{regex}"
            );
        }
    }

    proptest::proptest! {
        /// The memo answers as a fresh search would, for hits in any order.
        #[test]
        fn newline_memo_answers_as_a_search(
            text in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..200),
            queries in proptest::collection::vec((0usize..200, 0usize..50), 0..30),
        ) {
            let mut memo = NewlineMemo::default();
            for (at, reach) in queries {
                let at = at.min(text.len());
                let horizon = (at + reach).min(text.len());
                let want = memchr::memchr(b'\n', &text[at..horizon]).map_or(horizon, |i| at + i);
                proptest::prop_assert_eq!(memo.line_end(&text, at, horizon), want);
            }
        }
    }

    proptest::proptest! {
        /// The short look agrees with the whole window on its first byte, whenever it answers.
        #[test]
        fn first_decoded_byte_is_the_windows(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "\\", "\\\\", "n", "\"", "u", "0041", "00e9", "d83d", "\\ude00", "/", "x", " ",
            ]), 0..24),
        ) {
            let text = pieces.concat().into_bytes();
            let mut cache = MatchCache::default();
            if let Some(b) = first_decoded_byte(&text, 0, text.len(), &mut cache) {
                let levels = decoded_levels(&text, 0, text.len(), text.len(), &mut cache);
                proptest::prop_assert_eq!(cache.levels[levels - 1].get(1), Some(&b));
            }
        }
    }

    #[test]
    fn first_decoded_byte_looks_through_escapes() {
        let mut cache = MatchCache::default();
        let mut first = |text: &[u8]| first_decoded_byte(text, 0, text.len(), &mut cache);
        assert_eq!(first(br"\nya29"), Some(b'\n'));
        assert_eq!(first(br"\\nya29"), Some(b'\n'));
        assert_eq!(first(br"\u0041b"), Some(b'A'));
        assert_eq!(first(br"\\u0041b"), Some(b'A'));
        assert_eq!(first(br#"\\\\\\\"x"#), Some(b'"'));
        assert_eq!(first(br"\u00"), None, "an escape cut short");
        assert_eq!(first(br"\\\\"), None, "a backslash, escaped");
    }

    #[test]
    fn scanners() {
        assert_eq!(ipv6_colon(b"[fd7a:115c::1]", 5), Some(1));
        assert_eq!(ipv6_colon(b"xfd7a:115c::1", 5), None);
        assert_eq!(ipv6_colon(b"2001:db8::1", 4), None);
        assert_eq!(ipv6_colon(b"fe80::1", 4), Some(0));
        assert!(digits_colon(b"123456:AAx", 6));
        assert!(!digits_colon(b"12345:AAx", 5));
    }
}
