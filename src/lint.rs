//! `rules lint`: what makes a rule slow or blind, found before the rule meets real logs.
//!
//! Every anchor of every rule is searched in every input byte, and every anchor hit costs a
//! regex run; a rule with no anchor runs its regex on every line. So the static checks are
//! about triggers: a missing anchor, an anchor so short it hits everywhere, and Unicode
//! classes that blow up the automata where ASCII would match the same secrets. The cost
//! measurement then runs each rule alone over a sample and reports its throughput.

use std::time::Instant;

use regex_syntax::hir::{Class, Hir, HirKind, Look};

use crate::error::Error;
use crate::rules::{parse_regex, Rule, RulePack};
use crate::Scrubber;

/// Anchors shorter than this hit too often to be worth searching for.
pub const MIN_ANCHOR_LEN: usize = 3;

/// One problem with one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    /// The pack's origin.
    pub origin: String,
    /// The rule id.
    pub rule: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Checks every rule of `packs` (enabled or not). A rule that does not compile is an error,
/// not a lint.
pub fn lint(packs: &[RulePack]) -> Result<Vec<Lint>, Error> {
    let mut lints = Vec::new();
    for pack in packs {
        for spec in &pack.rules {
            let rule = Rule::compile(spec, &pack.origin)?;
            let mut flag = |message: String| {
                lints.push(Lint {
                    origin: pack.origin.clone(),
                    rule: spec.id.clone(),
                    message,
                })
            };
            let keyed_only = spec.regex.is_none() && !rule.json_keys.is_empty();
            if rule.anchors.is_empty() && rule.scanner.is_none() && !keyed_only {
                flag(
                    "no anchor literal: its regex runs on every line; add `anchors` (a literal \
                     every match contains)"
                        .into(),
                );
            }
            for anchor in rule.anchors.iter().filter(|a| a.len() < MIN_ANCHOR_LEN) {
                flag(format!(
                    "anchor `{}` is shorter than {MIN_ANCHOR_LEN} bytes: it hits almost \
                     everywhere and each hit costs a regex run",
                    String::from_utf8_lossy(anchor).escape_debug()
                ));
            }
            if let (Some(re), true) = (&spec.regex, spec.unicode) {
                // The same pattern with ASCII semantics: if it parses and its Unicode twin
                // has Unicode-only constructs, ASCII would do.
                let unicode = parse_regex(re, true).map_err(|e| Error::rule(&pack.origin, e))?;
                if has_unicode_classes(&unicode) && parse_regex(re, false).is_ok() {
                    flag(
                        "Unicode classes or `\\b` (`\\w`, `\\d`, `\\s`, `.`): secrets are ASCII, \
                         and ASCII classes make automata many times smaller; set \
                         `unicode = false` or write `[A-Za-z0-9_]`"
                            .into(),
                    );
                }
            }
        }
    }
    Ok(lints)
}

/// True when `hir` has a class reaching beyond ASCII or a Unicode word boundary.
fn has_unicode_classes(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| r.end() > '\x7f'),
        HirKind::Class(Class::Bytes(c)) => c.ranges().iter().any(|r| r.end() > 0x7f),
        HirKind::Look(look) => matches!(
            look,
            Look::WordUnicode
                | Look::WordUnicodeNegate
                | Look::WordStartUnicode
                | Look::WordEndUnicode
                | Look::WordStartHalfUnicode
                | Look::WordEndHalfUnicode
        ),
        HirKind::Repetition(r) => has_unicode_classes(&r.sub),
        HirKind::Capture(c) => has_unicode_classes(&c.sub),
        HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().any(has_unicode_classes),
        HirKind::Empty | HirKind::Literal(_) => false,
    }
}

/// What one rule costs on a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleCost {
    /// The rule id.
    pub rule: String,
    /// Throughput of a scrubber with this rule alone, in MB/s (best of the runs).
    pub mb_per_s: f64,
    /// Redactions it made in the sample.
    pub redactions: u64,
}

/// Runs each rule of `packs` alone over `sample`, best of `runs` timings, slowest first.
/// Opt-in rules are measured too: the point is to know a rule's price before turning it on.
pub fn measure_costs(
    packs: &[RulePack],
    sample: &[u8],
    runs: usize,
) -> Result<Vec<RuleCost>, Error> {
    let mut costs = Vec::new();
    for pack in packs {
        for spec in &pack.rules {
            let scrubber = Scrubber::for_rule_alone(&pack.origin, spec)?;
            let mut best = f64::INFINITY;
            let mut redactions = 0;
            for _ in 0..runs.max(1) {
                let start = Instant::now();
                let stats = scrubber.scrub(sample, std::io::sink())?;
                best = best.min(start.elapsed().as_secs_f64());
                redactions = stats.redactions;
            }
            costs.push(RuleCost {
                rule: spec.id.clone(),
                mb_per_s: sample.len() as f64 / 1e6 / best.max(1e-9),
                redactions,
            });
        }
    }
    costs.sort_by(|a, b| a.mb_per_s.total_cmp(&b.mb_per_s));
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSpec;

    fn pack(rules: Vec<RuleSpec>) -> Vec<RulePack> {
        vec![RulePack {
            origin: "test.toml".into(),
            rules,
        }]
    }

    fn rule(id: &str, regex: &str, unicode: bool) -> RuleSpec {
        RuleSpec::custom(id.into(), regex.into(), unicode)
    }

    #[test]
    fn flags_missing_and_short_anchors_and_unicode_classes() {
        let lints = lint(&pack(vec![
            rule("no-anchor", r"[a-f0-9]{32}", false),
            rule("short", r"ab[0-9]{8}", false),
            rule("unicode", r"\btok_\w{20}", true),
            rule("fine", r"tok_[A-Za-z0-9]{20}", false),
            rule("fine-unicode", r"tok_[A-Za-z0-9]{20}", true),
        ]))
        .unwrap();
        let flagged: Vec<&str> = lints.iter().map(|l| l.rule.as_str()).collect();
        assert_eq!(flagged, ["no-anchor", "short", "unicode"], "{lints:#?}");
    }
}
