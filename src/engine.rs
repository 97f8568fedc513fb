//! The matcher: one literal search over all rules' anchors, then per-rule confirmation in small
//! windows around hits, validators, and overlap resolution.
//!
//! Stage 1 runs over an ASCII-lower-cased copy of the text, so a single case-sensitive SIMD
//! searcher (Teddy) serves case-insensitive anchors too; aho-corasick's own case-insensitive
//! mode would give up the SIMD path. Case-sensitive anchors are re-checked on the original bytes.

use aho_corasick::{AhoCorasick, Input as AcInput, MatchKind};
use regex_automata::meta;
use regex_automata::util::captures::Captures;
use regex_automata::Input;

use crate::mask::Mask;
use crate::rules::{AnchorCase, Rule, Scanner};

/// A text this short is confirmed whole per triggered rule rather than in windows.
const WHOLE_TEXT: usize = 16 * 1024;

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
    anchors: Option<AhoCorasick>,
    /// For each anchor literal: the rules it triggers (rules whose anchor is a substring of it,
    /// because leftmost-longest search reports only the longest literal at a position).
    triggers: Vec<Vec<usize>>,
    ipv6_rules: Vec<usize>,
    digits_colon_rules: Vec<usize>,
    unanchored: Vec<usize>,
    /// The rule redacting whole values of sensitive JSON keys, if active.
    pub json_key_rule: Option<usize>,
}

/// Per-thread scratch: regex caches and buffers reused across calls.
pub(crate) struct MatchCache {
    regex: Vec<Option<(meta::Cache, Captures)>>,
    lower: Vec<u8>,
    hits: Vec<(usize, usize, usize)>,
    candidates: Vec<Span>,
}

/// Appends `lit` as it appears inside one more level of JSON string escaping.
fn json_escaped(lit: &[u8], slash: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(lit.len() + 4);
    for &b in lit {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'/' if slash => out.extend_from_slice(b"\\/"),
            _ => out.push(b),
        }
    }
    out
}

impl Matcher {
    pub fn new(rules: Vec<Rule>) -> Result<Matcher, String> {
        let mut literals: Vec<Vec<u8>> = Vec::new();
        for rule in &rules {
            for a in &rule.anchors {
                if !literals.contains(a) {
                    literals.push(a.clone());
                }
            }
        }
        // Each searched pattern with the anchor it stands for. An anchor can be split by JSON
        // escaping in a raw line (`\"password\"`, `:\/\/`, `\\\"`): its escaped spellings
        // trigger the same rules, so that line gets a closer, decoded look.
        let mut patterns: Vec<(Vec<u8>, Vec<u8>)> =
            literals.iter().map(|l| (l.clone(), l.clone())).collect();
        for lit in &literals {
            for slash in [false, true] {
                let once = json_escaped(lit, slash);
                let twice = json_escaped(&once, slash);
                for v in [once, twice] {
                    if !patterns.iter().any(|(p, _)| *p == v) {
                        patterns.push((v, lit.clone()));
                    }
                }
            }
        }
        let mut triggers: Vec<Vec<usize>> = patterns
            .iter()
            .map(|(_, base)| {
                rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r.anchors
                            .iter()
                            .any(|a| memchr::memmem::find(base, a).is_some())
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let mut patterns: Vec<Vec<u8>> = patterns.into_iter().map(|(p, _)| p).collect();
        if !patterns.is_empty() {
            // `\u0041`-style escapes of printable ASCII can hide any anchor in a raw JSON line;
            // these literals trigger no rule, only a closer (decoded) look at the line.
            for d in b'2'..=b'7' {
                patterns.push(vec![b'\\', b'u', b'0', b'0', d]);
                triggers.push(Vec::new());
            }
        }
        let anchors = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| format!("anchor automaton: {e}"))?,
            )
        };
        let with = |s: Scanner| -> Vec<usize> {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.scanner == Some(s))
                .map(|(i, _)| i)
                .collect()
        };
        Ok(Matcher {
            ipv6_rules: with(Scanner::Ipv6),
            digits_colon_rules: with(Scanner::DigitsColon),
            unanchored: rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_unanchored())
                .map(|(i, _)| i)
                .collect(),
            json_key_rule: rules.iter().position(|r| !r.json_keys.is_empty()),
            anchors,
            triggers,
            rules,
        })
    }

    pub fn new_cache(&self) -> MatchCache {
        MatchCache {
            regex: self
                .rules
                .iter()
                .map(|r| {
                    r.regex
                        .as_ref()
                        .map(|re| (re.create_cache(), re.create_captures()))
                })
                .collect(),
            lower: Vec::new(),
            hits: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// True when every line must be looked at closely (a rule has no anchor).
    pub fn needs_every_line(&self) -> bool {
        !self.unanchored.is_empty()
    }

    fn has_colon_scanners(&self) -> bool {
        !self.ipv6_rules.is_empty() || !self.digits_colon_rules.is_empty()
    }

    /// Fills `lower` with the ASCII-lower-cased `text`.
    pub fn lowercase_into(text: &[u8], lower: &mut Vec<u8>) {
        lower.clear();
        lower.extend_from_slice(text);
        lower.make_ascii_lowercase();
    }

    /// The first position at or after `from` where an anchor or a scanner could fire.
    /// `lower` is `text` lower-cased. This is the block-level fast path: no regex runs here.
    pub fn next_trigger(
        &self,
        text: &[u8],
        lower: &[u8],
        from: usize,
        colon_hint: &mut Option<usize>,
    ) -> Option<usize> {
        let anchor = self.anchors.as_ref().and_then(|ac| {
            ac.find(AcInput::new(lower).span(from..lower.len()))
                .map(|m| m.start())
        });
        let colon = if self.has_colon_scanners() {
            match *colon_hint {
                Some(usize::MAX) => None,
                Some(c) if c >= from => Some(c),
                _ => {
                    let found = memchr::memchr_iter(b':', &text[from..])
                        .map(|i| from + i)
                        .find(|&q| self.colon_fires(text, q));
                    *colon_hint = Some(found.unwrap_or(usize::MAX));
                    found
                }
            }
        } else {
            None
        };
        match (anchor, colon) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        }
    }

    fn colon_fires(&self, text: &[u8], q: usize) -> bool {
        (!self.ipv6_rules.is_empty() && ipv6_colon(text, q).is_some())
            || (!self.digits_colon_rules.is_empty() && digits_colon(text, q))
    }

    /// Finds the secrets in `text` (a plain line or decoded JSON string content), resolved to
    /// non-overlapping spans sorted by start. Secrets `mask` already produced are skipped, so a
    /// second pass changes nothing.
    pub fn find(&self, text: &[u8], cache: &mut MatchCache, mask: &Mask, out: &mut Vec<Span>) {
        out.clear();
        cache.hits.clear();
        if let Some(ac) = &self.anchors {
            Matcher::lowercase_into(text, &mut cache.lower);
            let lower = &cache.lower;
            let mut at = 0;
            while let Some(m) = ac.find(AcInput::new(lower).span(at..lower.len())) {
                for &r in &self.triggers[m.pattern().as_usize()] {
                    let rule = &self.rules[r];
                    let exact = rule.anchor_case == AnchorCase::Insensitive
                        || rule
                            .exact_anchors
                            .iter()
                            .any(|a| memchr::memmem::find(&text[m.start()..m.end()], a).is_some());
                    if exact {
                        cache.hits.push((r, m.start(), m.end()));
                    }
                }
                at = m.start() + 1;
            }
        }
        if self.has_colon_scanners() {
            for q in memchr::memchr_iter(b':', text) {
                if let Some(start) = ipv6_colon(text, q) {
                    cache
                        .hits
                        .extend(self.ipv6_rules.iter().map(|&r| (r, start, q + 1)));
                }
                if digits_colon(text, q) {
                    cache
                        .hits
                        .extend(self.digits_colon_rules.iter().map(|&r| (r, q, q + 1)));
                }
            }
        }
        cache
            .hits
            .extend(self.unanchored.iter().map(|&r| (r, 0, text.len())));
        if cache.hits.is_empty() {
            return;
        }
        cache.hits.sort_unstable();
        cache.candidates.clear();
        let mut i = 0;
        while i < cache.hits.len() {
            let rule_idx = cache.hits[i].0;
            let rule = &self.rules[rule_idx];
            let reach = rule.reach;
            // Merge this rule's hit windows, then confirm each merged window once.
            let mut windows: Vec<(usize, usize)> = Vec::new();
            while i < cache.hits.len() && cache.hits[i].0 == rule_idx {
                let (_, s, e) = cache.hits[i];
                let (ws, we) = if text.len() <= WHOLE_TEXT {
                    (0, text.len())
                } else {
                    (s.saturating_sub(reach), (e + reach).min(text.len()))
                };
                match windows.last_mut() {
                    Some(last) if ws <= last.1 => last.1 = last.1.max(we),
                    _ => windows.push((ws, we)),
                }
                i += 1;
            }
            let Some((re_cache, caps)) = cache.regex[rule_idx].as_mut() else {
                continue;
            };
            let Some(regex) = rule.regex.as_ref() else {
                continue;
            };
            for (ws, we) in windows {
                let mut at = ws;
                while at <= we {
                    regex.search_captures_with(re_cache, &Input::new(text).span(at..we), caps);
                    let Some(m) = caps.get_match() else { break };
                    at = if m.end() > m.start() {
                        m.end()
                    } else {
                        m.end() + 1
                    };
                    let Some(g) = caps.get_group(rule.secret_group) else {
                        continue;
                    };
                    if g.is_empty()
                        || !rule
                            .validators
                            .iter()
                            .all(|v| v.check(text, g.start, g.end))
                        || mask.is_masked(&text[g.start..g.end])
                    {
                        continue;
                    }
                    cache.candidates.push(Span {
                        start: g.start,
                        end: g.end,
                        rule: rule_idx,
                    });
                }
            }
        }
        resolve_overlaps(&mut cache.candidates, out);
    }
}

/// Keeps the longest candidates, ties going to the earlier (higher priority) rule, so that
/// the result does not overlap; sorted by start.
pub(crate) fn resolve_overlaps(candidates: &mut Vec<Span>, out: &mut Vec<Span>) {
    candidates.sort_unstable_by_key(|s| (std::cmp::Reverse(s.end - s.start), s.rule, s.start));
    candidates.dedup_by_key(|s| (s.start, s.end));
    out.clear();
    for &c in candidates.iter() {
        let i = out.partition_point(|s| s.start < c.start);
        let clear_before = i == 0 || out[i - 1].end <= c.start;
        let clear_after = i == out.len() || c.end <= out[i].start;
        if clear_before && clear_after {
            out.insert(i, c);
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
    let boundary =
        start == 0 || !(text[start - 1].is_ascii_alphanumeric() || text[start - 1] == b':');
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

    #[test]
    fn overlaps_prefer_longest_then_priority() {
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
                    start: 2,
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
