//! Derives anchor literals from a regex, for rules that do not name their own (user patterns).
//!
//! An anchor set is sound when every match of the regex contains at least one of its literals.
//! Prefix sets of the whole regex or of any mandatory tail of a concatenation have that property,
//! and so does the union over the branches of an alternation when each branch has one.

use regex_syntax::hir::literal::{ExtractKind, Extractor, Literal, Seq};
use regex_syntax::hir::{Capture, Class, Hir, HirKind, Repetition};

use crate::rules::AnchorCase;

/// Anchors shorter than this match too often to be worth a literal search.
pub(crate) const MIN_ANCHOR_LEN: usize = 3;
/// More literals than this slow the SIMD searcher for every rule.
const MAX_ANCHORS_PER_RULE: usize = 64;

/// True when every match of the regex starts with one of `anchors`: a hit can then be
/// confirmed by running the regex anchored at the hit. Anchors that must match in their own
/// case (`AnchorCase::Sensitive`) are compared byte for byte, as a hit is kept only where one
/// is spelled as written: `(?i)apikey` with anchor `apiKey` has matches that start at no hit.
pub(crate) fn starts_with_anchor(hir: &Hir, anchors: &[Vec<u8>], case: AnchorCase) -> bool {
    if anchors.is_empty() {
        return false;
    }
    let starts_with_one = |l: &Literal| {
        let l = l.as_bytes();
        anchors.iter().any(|a| {
            l.get(..a.len()).is_some_and(|p| match case {
                AnchorCase::Insensitive => p.eq_ignore_ascii_case(a),
                AnchorCase::Sensitive => p == &a[..],
            })
        })
    };
    let all_start_with_one = |seq: Seq| {
        seq.literals()
            .is_some_and(|l| !l.is_empty() && l.iter().all(starts_with_one))
    };
    // Compared case-insensitively, the start of the regex with its case folded says it first
    // and cheaply: unfolded, a case-insensitive literal has 2^n spellings (`(?i)authorization`:
    // 2^13), which the extractor lists up to its limit before it cuts them short. A folded
    // prefix has few spellings, so the extractor may give up early on anything else.
    if case == AnchorCase::Insensitive {
        let folded = Extractor::new()
            .kind(ExtractKind::Prefix)
            .limit_class(2)
            .limit_repeat(2)
            .limit_total(64)
            .extract(&folded_prefix(hir));
        if all_start_with_one(folded) {
            return true;
        }
    }
    all_start_with_one(Extractor::new().kind(ExtractKind::Prefix).extract(hir))
}

/// The start of `hir` with every class that is one ASCII letter in both cases (`(?i)a`) made
/// that letter in lower case: prefixes are compared case-insensitively, and the extractor
/// gives up on the 2^n spellings of a case-insensitive literal longer than about 8 letters
/// (`(?i)authorization`).
///
/// A concatenation keeps its first [`FOLDED_PREFIX`] parts: every match of the whole starts
/// with a match of those, so their prefixes are the whole's; and folding all of a large
/// regex would cost more at start-up than this check saves.
fn folded_prefix(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Capture(c) => folded_prefix(&c.sub),
        HirKind::Concat(children) => Hir::concat(
            children
                .iter()
                .take(FOLDED_PREFIX)
                .map(fold_ascii_case)
                .collect(),
        ),
        _ => fold_ascii_case(hir),
    }
}

/// How many parts of a concatenation [`folded_prefix`] keeps: enough for the longest anchor.
const FOLDED_PREFIX: usize = 24;

fn fold_ascii_case(hir: &Hir) -> Hir {
    let folded = |hirs: &[Hir]| hirs.iter().map(fold_ascii_case).collect::<Vec<_>>();
    match hir.kind() {
        HirKind::Class(class) => match ascii_letter_in_both_cases(class) {
            Some(lower) => Hir::literal([lower]),
            None => hir.clone(),
        },
        HirKind::Capture(c) => Hir::capture(Capture {
            sub: Box::new(fold_ascii_case(&c.sub)),
            ..c.clone()
        }),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            sub: Box::new(fold_ascii_case(&r.sub)),
            ..r.clone()
        }),
        HirKind::Concat(children) => Hir::concat(folded(children)),
        HirKind::Alternation(alts) => Hir::alternation(folded(alts)),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Look(_) => hir.clone(),
    }
}

/// The lower-case letter when `class` is exactly one ASCII letter in both cases.
fn ascii_letter_in_both_cases(class: &Class) -> Option<u8> {
    let (lo, hi) = match class {
        Class::Bytes(c) => match c.ranges() {
            [a, b] if a.start() == a.end() && b.start() == b.end() => (a.start(), b.start()),
            _ => return None,
        },
        Class::Unicode(c) => match c.ranges() {
            [a, b] if a.start() == a.end() && b.start() == b.end() => {
                (u8::try_from(a.start()).ok()?, u8::try_from(b.start()).ok()?)
            }
            _ => return None,
        },
    };
    (lo.is_ascii_uppercase() && hi == lo.to_ascii_lowercase()).then_some(hi)
}

fn prefix_set(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let mut lits: Vec<Vec<u8>> = seq
        .literals()?
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    lits.sort();
    lits.dedup();
    usable(lits)
}

fn usable(lits: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    let ok = !lits.is_empty()
        && lits.len() <= MAX_ANCHORS_PER_RULE
        && lits.iter().all(|l| l.len() >= MIN_ANCHOR_LEN);
    ok.then_some(lits)
}

/// Prefers longer shortest literals, then fewer literals.
fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    let score = |s: &Vec<Vec<u8>>| {
        let min = s.iter().map(Vec::len).min().unwrap_or(0);
        (min.min(8), usize::MAX - s.len())
    };
    match (a, b) {
        (Some(a), Some(b)) => Some(if score(&b) > score(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Lower-cased literals at least one of which occurs in every match, or `None` when no set of
/// at least [`MIN_ANCHOR_LEN`]-byte literals is required.
pub(crate) fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Capture(c) => required_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub),
        HirKind::Alternation(alts) => {
            let mut all = Vec::new();
            for alt in alts {
                all.extend(required_literals(alt)?);
            }
            all.sort();
            all.dedup();
            usable(all)
        }
        HirKind::Concat(children) => {
            let mut best = prefix_set(hir);
            for i in 0..children.len() {
                if i > 0 {
                    best = better(best, prefix_set(&Hir::concat(children[i..].to_vec())));
                }
                best = better(best, required_literals(&children[i]));
            }
            best
        }
        _ => prefix_set(hir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hir(p: &str) -> Hir {
        crate::rules::parse_regex(p, false).unwrap()
    }

    fn lits(p: &str) -> Option<Vec<String>> {
        required_literals(&hir(p)).map(|v| {
            v.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn prefix_literal() {
        assert_eq!(lits(r"\bsk-[a-z]{8}"), Some(vec!["sk-".into()]));
    }

    #[test]
    fn inner_literal_after_optional_prefix() {
        let l = lits(r"(?i)\b[A-Z0-9_]*(?:KEY|TOKEN)\b\s*[=:]\s*(\S+)").unwrap();
        assert!(l.iter().any(|s| s.starts_with("key")), "{l:?}");
        assert!(l.iter().any(|s| s.starts_with("token")), "{l:?}");
    }

    #[test]
    fn alternation_needs_every_branch() {
        assert_eq!(lits(r"foo\d+|[a-z]+"), None);
        // The shared tail is required by both branches and is the cheaper single anchor.
        assert_eq!(
            lits(r"(?:internal|corp)\.example"),
            Some(vec![".example".into()])
        );
        assert_eq!(
            lits(r"(?:internal|corp)\S"),
            Some(vec!["corp".into(), "internal".into()])
        );
    }

    #[test]
    fn anchored_prefixes() {
        let starts = |pattern: &str, anchors: &[&str], case: AnchorCase| {
            let anchors: Vec<Vec<u8>> = anchors.iter().map(|s| s.as_bytes().to_vec()).collect();
            starts_with_anchor(&hir(pattern), &anchors, case)
        };
        let caseless =
            |pattern: &str, anchors: &[&str]| starts(pattern, anchors, AnchorCase::Insensitive);
        assert!(caseless(r"\b(sk-[a-z]{8})\b", &["sk-"]));
        assert!(caseless(r"(?i)\bbearer\s+(\S{16})", &["bearer"]));
        assert!(caseless(r"(?:10|172)\.\d", &["10.", "172."]));
        assert!(!caseless(r"\w{0,9}token=(\S+)", &["token"]));
        assert!(!caseless(r"x?sk-\d", &["sk-"]));
        // Too many case spellings for the extractor to list: folded first.
        assert!(caseless(
            r"(?i)\bauthorization\s*[:=]\s*(\S+)",
            &["authorization"]
        ));
        let flags = r"(?i)--(?:api[-_]?key|token|password)\s+(\S+)";
        assert!(caseless(flags, &["--api", "--token", "--passw"]));
        assert!(!caseless(flags, &["--api", "--token"]));
        // An anchor that must match in its own case: byte for byte, never folded.
        assert!(starts(
            r"\b(sk-[a-z]{8})\b",
            &["sk-"],
            AnchorCase::Sensitive
        ));
        assert!(!starts(
            r"(?i)authz_key=(\S+)",
            &["Authz_key"],
            AnchorCase::Sensitive
        ));
        assert!(!starts(
            r"(?i)authorization=(\S+)",
            &["authorization"],
            AnchorCase::Sensitive
        ));
    }

    #[test]
    fn no_literal() {
        assert_eq!(lits(r"\d{6,}:[A-Za-z0-9_-]{20,}"), None);
        assert_eq!(lits(r"a\d"), None);
    }
}
