//! Derives anchor literals from a regex, for rules that do not name their own (user patterns).
//!
//! An anchor set is sound when every match of the regex contains at least one of its literals.
//! Prefix sets of the whole regex or of any mandatory tail of a concatenation have that property,
//! and so does the union over the branches of an alternation when each branch has one.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// Anchors shorter than this match too often to be worth a literal search.
pub(crate) const MIN_ANCHOR_LEN: usize = 3;
/// More literals than this slow the SIMD searcher for every rule.
const MAX_ANCHORS_PER_RULE: usize = 64;

/// True when every match of the regex starts with one of `anchors` (lower case): a hit can then
/// be confirmed by running the regex anchored at the hit.
pub(crate) fn starts_with_anchor(hir: &Hir, anchors: &[Vec<u8>]) -> bool {
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let Some(lits) = seq.literals() else {
        return false;
    };
    !lits.is_empty()
        && !anchors.is_empty()
        && lits.iter().all(|l| {
            let l = l.as_bytes().to_ascii_lowercase();
            anchors
                .iter()
                .any(|a| l.starts_with(&a.to_ascii_lowercase()))
        })
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
        let a = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert!(starts_with_anchor(&hir(r"\b(sk-[a-z]{8})\b"), &a(&["sk-"])));
        assert!(starts_with_anchor(
            &hir(r"(?i)\bbearer\s+(\S{16})"),
            &a(&["bearer"])
        ));
        assert!(starts_with_anchor(
            &hir(r"(?:10|172)\.\d"),
            &a(&["10.", "172."])
        ));
        assert!(!starts_with_anchor(
            &hir(r"\w{0,9}token=(\S+)"),
            &a(&["token"])
        ));
        assert!(!starts_with_anchor(&hir(r"x?sk-\d"), &a(&["sk-"])));
    }

    #[test]
    fn no_literal() {
        assert_eq!(lits(r"\d{6,}:[A-Za-z0-9_-]{20,}"), None);
        assert_eq!(lits(r"a\d"), None);
    }
}
