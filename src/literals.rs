//! Derives anchor literals from a regex, for rules that do not name their own (user patterns).
//!
//! An anchor set is sound when every match of the regex contains at least one of its literals.
//! Prefix sets of the whole regex or of any mandatory tail of a concatenation have that property,
//! and so does the union over the branches of an alternation when each branch has one.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Class, Hir, HirKind};

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

/// Where a regex's matches hold a rule's anchors. It lets a confirmation search start close to
/// the first hit rather than at the start of the text, and stop once no hit is left: both skip
/// only text that no match can start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnchorLead {
    /// A match may hold no anchor (a rule can name anchors its regex does not require).
    Unknown,
    /// Every match holds an anchor.
    Somewhere,
    /// Every match holds an anchor that ends at most this many bytes after the match starts.
    Within(usize),
}

impl AnchorLead {
    fn rank(self) -> (u8, usize) {
        match self {
            AnchorLead::Unknown => (0, 0),
            AnchorLead::Somewhere => (1, 0),
            AnchorLead::Within(n) => (2, usize::MAX - n),
        }
    }

    /// The stronger of two facts about the same matches.
    fn or(self, other: AnchorLead) -> AnchorLead {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The fact for a match that starts with up to `before` bytes (`None`: unbounded) ahead
    /// of the part this fact is about.
    fn after(self, before: Option<usize>) -> AnchorLead {
        match (self, before) {
            (AnchorLead::Within(n), Some(b)) => AnchorLead::Within(b + n),
            (AnchorLead::Unknown, _) => AnchorLead::Unknown,
            _ => AnchorLead::Somewhere,
        }
    }

    /// The fact for a match of either of two branches.
    fn either(self, other: AnchorLead) -> AnchorLead {
        match (self, other) {
            (AnchorLead::Within(a), AnchorLead::Within(b)) => AnchorLead::Within(a.max(b)),
            (AnchorLead::Unknown, _) | (_, AnchorLead::Unknown) => AnchorLead::Unknown,
            _ => AnchorLead::Somewhere,
        }
    }
}

/// Where the matches of `hir` hold one of `anchors`. With `fold`, anchors are lower case and
/// are found in any ASCII case (`(?i)key` holds `key`); without, byte for byte.
pub(crate) fn anchor_lead(hir: &Hir, anchors: &[Vec<u8>], fold: bool) -> AnchorLead {
    let first_end = |text: &[u8]| {
        anchors
            .iter()
            .filter_map(|a| {
                let at = text.windows(a.len().max(1)).position(|w| w == &a[..])?;
                Some(at + a.len())
            })
            .min()
    };
    match hir.kind() {
        HirKind::Capture(c) => anchor_lead(&c.sub, anchors, fold),
        HirKind::Repetition(r) if r.min >= 1 => anchor_lead(&r.sub, anchors, fold),
        HirKind::Alternation(alts) => alts
            .iter()
            .map(|alt| anchor_lead(alt, anchors, fold))
            .reduce(AnchorLead::either)
            .unwrap_or(AnchorLead::Unknown),
        HirKind::Concat(children) => {
            let mut best = AnchorLead::Unknown;
            // The most bytes the children before the current one can match.
            let mut before = Some(0usize);
            for (i, child) in children.iter().enumerate() {
                best = best.or(anchor_lead(child, anchors, fold).after(before));
                // An anchor may also be spelled across the literal children from here on.
                let mut run = Vec::new();
                for next in &children[i..] {
                    let Some(bytes) = literal_bytes(next, fold) else {
                        break;
                    };
                    run.extend(bytes);
                    if let Some(end) = first_end(&run) {
                        best = best.or(AnchorLead::Within(end).after(before));
                        break;
                    }
                }
                before = before
                    .zip(child.properties().maximum_len())
                    .map(|(b, n)| b + n);
            }
            best
        }
        _ => match literal_bytes(hir, fold).as_deref().and_then(first_end) {
            Some(end) => AnchorLead::Within(end),
            None => AnchorLead::Unknown,
        },
    }
}

/// The bytes `hir` matches when it matches exactly one string; with `fold`, lower-cased, and a
/// class of one ASCII letter in both cases counts as that letter.
fn literal_bytes(hir: &Hir, fold: bool) -> Option<Vec<u8>> {
    match hir.kind() {
        HirKind::Literal(lit) if fold => Some(lit.0.to_ascii_lowercase()),
        HirKind::Literal(lit) => Some(lit.0.to_vec()),
        HirKind::Class(class) if fold => {
            let members: Vec<u32> = match class {
                Class::Bytes(c) => c
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(u32::from)
                    .take(3)
                    .collect(),
                Class::Unicode(c) => c
                    .iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(u32::from)
                    .take(3)
                    .collect(),
            };
            match members[..] {
                [upper, lower]
                    if (u32::from(b'A')..=u32::from(b'Z')).contains(&upper)
                        && lower == upper + 32 =>
                {
                    Some(vec![lower as u8])
                }
                _ => None,
            }
        }
        _ => None,
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

    #[test]
    fn anchor_leads() {
        let lead = |p: &str, anchors: &[&str], fold: bool| {
            let a: Vec<Vec<u8>> = anchors.iter().map(|s| s.as_bytes().to_vec()).collect();
            anchor_lead(&hir(p), &a, fold)
        };
        use AnchorLead::*;
        assert_eq!(lead(r"\b(sk-[a-z]{8})\b", &["sk-"], false), Within(3));
        assert_eq!(
            lead(r"(?i)\bbearer\s+(\S{16})", &["bearer"], true),
            Within(6)
        );
        // Case-insensitive text holds no byte-for-byte anchor.
        assert_eq!(lead(r"(?i)bearer\s+(\S{16})", &["bearer"], false), Unknown);
        assert_eq!(
            lead(r"x?[a-z_]{0,9}token=(\S+)", &["token"], false),
            Within(15)
        );
        assert_eq!(lead(r"[a-z_]*token=(\S+)", &["token"], false), Somewhere);
        // Every branch must hold an anchor; the bound is the worst branch's.
        assert_eq!(
            lead(
                r"(?i)(?:ab|xyz)?passw(?:or)?d|secret",
                &["passw", "secret"],
                true
            ),
            Within(8)
        );
        assert_eq!(
            lead(r"(?:api|client)[_-]?key|pwd", &["key", "pwd"], false),
            Within(10)
        );
        assert_eq!(lead(r"token|[0-9]{8}", &["token"], false), Unknown);
        // An optional anchor is no anchor.
        assert_eq!(lead(r"(?:token)?[0-9]{8}", &["token"], false), Unknown);
        assert_eq!(lead(r"(?:token)+[0-9]{8}", &["token"], false), Within(5));
        assert_eq!(lead(r"[0-9]{8}", &[], false), Unknown);
    }
}
