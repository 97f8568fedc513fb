//! clawscrub removes secrets from logs and JSONL agent transcripts.
//!
//! All active rules (vendor keys, tokens, credentials, internal addresses and the user's own
//! patterns) compile into one [`Scrubber`]: a SIMD literal search over whole input blocks
//! finds the few lines worth a closer look; there, rule regexes confirm candidates in small
//! windows (regex-automata, linear time), validators reject look-alikes, and JSON lines are
//! scrubbed inside their string values only, escapes decoded, so the output stays valid JSON
//! that differs from the input only where a secret was.
//!
//! ```
//! let scrubber = clawscrub::Scrubber::builder().build()?;
//! let out = scrubber.scrub_bytes(b"export OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z\n");
//! assert_eq!(out, b"export OPENAI_API_KEY=[REDACTED:openai-api-key]\n");
//! # Ok::<(), clawscrub::Error>(())
//! ```

pub mod bulk;
pub mod checkpoint;
mod engine;
mod error;
pub mod follow;
mod gitleaks;
mod json;
pub mod jsregex;
pub mod lint;
mod literals;
mod mask;
pub mod openclaw;
mod prefilter;
pub mod report;
mod rules;
pub mod sample;
mod scrub;
pub mod sqlite;
#[doc(hidden)]
pub mod stages;
mod stats;
mod stream;
mod validate;
pub mod walk;

use std::io::{Read, Write};

pub use crate::error::Error;
pub use crate::mask::Mask;
pub use crate::rules::{
    AllowCondition, AllowTarget, Allowlist, AnchorCase, Category, Example, RulePack, RuleSpec,
    Scanner,
};
pub use crate::stats::Stats;

use crate::engine::Matcher;
use crate::rules::{HitCheck, Rule};

/// JSON keys whose values are never changed: transcript structure, and `thinkingSignature`,
/// which the model provider verifies when a session is replayed.
pub const DEFAULT_STRUCTURAL_KEYS: [&str; 7] = [
    "id",
    "parentId",
    "toolCallId",
    "type",
    "role",
    "timestamp",
    "thinkingSignature",
];

/// A compiled set of redaction rules and a mask; cheap to share between threads.
#[derive(Debug)]
pub struct Scrubber {
    matcher: Matcher,
    mask: Mask,
    structural_keys: Vec<Vec<u8>>,
}

/// A secret found by [`Scrubber::findings`]. It holds where the secret is, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The line it is on, counting from 1.
    pub line: u64,
    /// Where it starts in the line, in bytes from 0 (raw bytes: JSON escapes included).
    pub start: usize,
    /// Where it ends in the line (exclusive).
    pub end: usize,
    /// The id of the rule that found it.
    pub rule: String,
    /// The rule's category.
    pub category: Category,
}

/// What `rules list` shows of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule id, as in masks.
    pub id: String,
    /// Its category.
    pub category: Category,
    /// One line of description.
    pub description: String,
    /// Anchor literals (lower case), or the scanner's name, or `every line`; then how a hit
    /// is checked before its line gets a close look.
    pub trigger: String,
}

impl Scrubber {
    /// Starts a builder with the built-in rules and the `tag` mask.
    pub fn builder() -> ScrubberBuilder {
        ScrubberBuilder::default()
    }

    /// Scrubs `reader` into `writer` until end of input. Output is flushed whenever the input
    /// has nothing more ready, so this serves `tail -f | clawscrub` as well as bulk files.
    pub fn scrub<R: Read, W: Write>(&self, reader: R, writer: W) -> Result<Stats, Error> {
        stream::Filter::new(self, writer).run(reader)
    }

    /// Scrubs a whole buffer; the same as [`Scrubber::scrub`] over a slice.
    pub fn scrub_bytes(&self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        // Reading a slice and writing a Vec cannot fail.
        let _ = self.scrub(input, &mut out);
        out
    }

    /// Reads `reader` to the end and reports every secret in it, in order, without writing
    /// anything: what [`Scrubber::scrub`] would redact, where, and which rule would. For
    /// audits (`clawscrub check`) and `rules explain`.
    pub fn find_in<R: Read>(
        &self,
        reader: R,
        mut each: impl FnMut(Finding),
    ) -> Result<Stats, Error> {
        let mut on_found = |line: u64, start: usize, end: usize, rule: usize| {
            each(self.finding(line, start, end, rule))
        };
        // Bound first: the filter, whose session hands its cache back when dropped, must go
        // before `on_found`, which it borrows.
        let stats = stream::Filter::auditing(self, std::io::sink(), &mut on_found).run(reader);
        stats
    }

    /// The finding of rule index `rule` at `start..end` of line `line`.
    pub(crate) fn finding(&self, line: u64, start: usize, end: usize, rule: usize) -> Finding {
        let rule = &self.matcher.rules[rule];
        Finding {
            line,
            start,
            end,
            rule: rule.id.clone(),
            category: rule.category,
        }
    }

    /// The secrets in `text` (one or more lines), in order: [`Scrubber::find_in`] over a buffer.
    pub fn findings(&self, text: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        // Reading a slice and writing to a sink cannot fail.
        let _ = self.find_in(text, |f| found.push(f));
        found
    }

    /// A scrubber with `spec` as its only rule (turned on even if opt-in) and the `tag` mask:
    /// what `rules test` checks examples with and `rules lint` times.
    pub(crate) fn for_rule_alone(origin: &str, spec: &RuleSpec) -> Result<Scrubber, Error> {
        Scrubber::rule_alone(origin, spec, true)
    }

    fn rule_alone(origin: &str, spec: &RuleSpec, check_hits: bool) -> Result<Scrubber, Error> {
        let mut alone = spec.clone();
        alone.enabled = true;
        Scrubber::builder()
            .builtin(false)
            .check_hits(check_hits)
            .pack(RulePack {
                origin: origin.to_string(),
                rules: vec![alone],
            })
            .build()
    }

    /// The active rules, in priority order.
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.matcher
            .rules
            .iter()
            .map(|r| RuleInfo {
                id: r.id.clone(),
                category: r.category,
                description: r.description.clone(),
                trigger: {
                    let what = if let Some(s) = r.scanner {
                        format!("scanner {s:?}").to_lowercase()
                    } else if r.anchors.is_empty() {
                        "every line".to_string()
                    } else {
                        r.anchors
                            .iter()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    let check = match r.hit_check {
                        HitCheck::None => "",
                        HitCheck::Regex { .. } => "; checked at hit",
                        HitCheck::JsonKey => "; JSON keys",
                    };
                    format!("{what}{check}")
                },
            })
            .collect()
    }
}

/// Configures a [`Scrubber`]: which rules, which mask, which JSON keys are special.
#[derive(Debug, Clone)]
pub struct ScrubberBuilder {
    builtin: bool,
    packs: Vec<RulePack>,
    enabled: Vec<String>,
    disabled: Vec<String>,
    only: Vec<Category>,
    mask: Mask,
    structural_keys: Vec<String>,
    sensitive_keys: Vec<String>,
    check_hits: bool,
}

impl Default for ScrubberBuilder {
    fn default() -> Self {
        ScrubberBuilder {
            builtin: true,
            packs: Vec::new(),
            enabled: Vec::new(),
            disabled: Vec::new(),
            only: Vec::new(),
            mask: Mask::Tag,
            structural_keys: DEFAULT_STRUCTURAL_KEYS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sensitive_keys: Vec::new(),
            check_hits: true,
        }
    }
}

impl ScrubberBuilder {
    /// Whether anchor hits are checked in place before their line is scrubbed closely (default
    /// yes). Off, every line with a hit is scrubbed closely: slower, and the same output, which
    /// is what the tests that turn it off check.
    #[doc(hidden)]
    pub fn check_hits(mut self, yes: bool) -> Self {
        self.check_hits = yes;
        self
    }

    /// Whether the built-in packs are used (default yes).
    pub fn builtin(mut self, yes: bool) -> Self {
        self.builtin = yes;
        self
    }

    /// Adds a rule pack after the built-in ones (user rules lose ties to built-in ones).
    pub fn pack(mut self, pack: RulePack) -> Self {
        self.packs.push(pack);
        self
    }

    /// Turns on an opt-in rule (one shipped with `enabled = false`).
    pub fn enable(mut self, id: &str) -> Self {
        self.enabled.push(id.to_string());
        self
    }

    /// Turns a rule off by id.
    pub fn disable(mut self, id: &str) -> Self {
        self.disabled.push(id.to_string());
        self
    }

    /// Keeps only rules of these categories (repeatable; default all).
    pub fn only(mut self, category: Category) -> Self {
        self.only.push(category);
        self
    }

    /// The replacement style (default [`Mask::Tag`]).
    pub fn mask(mut self, mask: Mask) -> Self {
        self.mask = mask;
        self
    }

    /// Adds a JSON key whose string values are never changed.
    pub fn structural_key(mut self, key: &str) -> Self {
        self.structural_keys.push(key.to_string());
        self
    }

    /// Adds a JSON key whose whole string value is redacted (case, `_` and `-` ignored).
    pub fn sensitive_key(mut self, key: &str) -> Self {
        self.sensitive_keys.push(key.to_string());
        self
    }

    /// Compiles the rules. Fails on a malformed rule, a duplicate id, an unknown `--disable`
    /// or a fixed mask text a secret could hold (see [`Mask::Fixed`]).
    pub fn build(self) -> Result<Scrubber, Error> {
        self.mask.check()?;
        let mut packs = if self.builtin {
            RulePack::builtin()
        } else {
            Vec::new()
        };
        packs.extend(self.packs);
        let mut seen = std::collections::HashSet::new();
        for pack in &packs {
            for spec in &pack.rules {
                if !seen.insert(spec.id.as_str()) {
                    return Err(Error::rule(
                        &pack.origin,
                        format!("duplicate rule id `{}`", spec.id),
                    ));
                }
            }
        }
        for id in self.disabled.iter().chain(&self.enabled) {
            if !seen.contains(id.as_str()) {
                return Err(Error::rule(
                    "command line",
                    format!("no rule with id `{id}` (see `clawscrub rules list`)"),
                ));
            }
        }
        let mut rules: Vec<Rule> = Vec::new();
        for pack in &packs {
            for spec in &pack.rules {
                let wanted = (spec.enabled || self.enabled.contains(&spec.id))
                    && !self.disabled.contains(&spec.id)
                    && (self.only.is_empty() || self.only.contains(&spec.category));
                if wanted {
                    rules.push(Rule::compile(spec, &pack.origin)?);
                }
            }
        }
        if !self.sensitive_keys.is_empty() {
            let extra = self
                .sensitive_keys
                .iter()
                .map(|k| rules::normalize_key(k.as_bytes()));
            match rules.iter_mut().find(|r| !r.json_keys.is_empty()) {
                Some(rule) => rule.json_keys.extend(extra),
                None => {
                    let mut spec =
                        RuleSpec::custom("json-sensitive-key".into(), String::new(), false);
                    spec.regex = None;
                    spec.category = Category::Credential;
                    spec.description = "whole value of a JSON key with a sensitive name".into();
                    spec.json_keys = self.sensitive_keys.clone();
                    rules.push(Rule::compile(&spec, "command line")?);
                }
            }
        }
        let matcher = Matcher::new(rules, self.check_hits).map_err(|m| Error::rule("rules", m))?;
        Ok(Scrubber {
            matcher,
            mask: self.mask,
            structural_keys: self
                .structural_keys
                .iter()
                .map(|k| k.as_bytes().to_vec())
                .collect(),
        })
    }
}

/// One example in a rule pack that did not come out as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExampleFailure {
    /// The pack's origin.
    pub origin: String,
    /// The rule id.
    pub rule: String,
    /// `example N` or `negative example N` (1-based).
    pub which: String,
    /// The example's input.
    pub input: String,
    /// What was expected.
    pub expected: String,
    /// What the scrubber produced.
    pub actual: String,
}

/// Runs every example and negative example of `pack`, each with only its own rule active and
/// the `tag` mask. A rule stating a `hit_check` also has each example stretched (see
/// [`stretched_examples`]) and scrubbed with and without its check: a check that allows less
/// than the regex holds back secrets the regex finds. Returns the failures (empty when all
/// pass) and the number of checks run.
pub fn check_examples(pack: &RulePack) -> Result<(Vec<ExampleFailure>, usize), Error> {
    use rayon::prelude::*;
    let per_rule = pack
        .rules
        .par_iter()
        .map(|spec| check_rule_examples(&pack.origin, spec))
        .collect::<Result<Vec<_>, Error>>()?;
    let checked = per_rule.iter().map(|(_, n)| n).sum();
    Ok((per_rule.into_iter().flat_map(|(f, _)| f).collect(), checked))
}

/// [`check_examples`] for one rule.
fn check_rule_examples(
    origin: &str,
    spec: &RuleSpec,
) -> Result<(Vec<ExampleFailure>, usize), Error> {
    let mut failures = Vec::new();
    let mut checked = 0;
    let failure = |which: String, input: String, expected: String, actual: String| ExampleFailure {
        origin: origin.to_string(),
        rule: spec.id.clone(),
        which,
        input,
        expected,
        actual,
    };
    let scrubber = Scrubber::for_rule_alone(origin, spec)?;
    let cases = spec
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("example {}", i + 1), &e.input, &e.output))
        .chain(
            spec.negative_examples
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("negative example {}", i + 1), n, n)),
        );
    for (which, input, expected) in cases {
        checked += 1;
        let actual = String::from_utf8_lossy(&scrubber.scrub_bytes(input.as_bytes())).into_owned();
        if actual != *expected {
            failures.push(failure(which, input.clone(), expected.clone(), actual));
        }
    }
    if spec.hit_check.is_some() {
        let unchecked = Scrubber::rule_alone(origin, spec, false)?;
        for (i, example) in spec.examples.iter().enumerate() {
            checked += 1;
            let stretched = stretched_examples(spec, &example.input);
            if let Some((input, expected, actual)) = held_back(&scrubber, &unchecked, stretched) {
                failures.push(failure(
                    format!(
                        "example {} stretched: the hit_check holds back what the regex finds",
                        i + 1
                    ),
                    input,
                    String::from_utf8_lossy(&expected).into_owned(),
                    String::from_utf8_lossy(&actual).into_owned(),
                ));
            }
        }
    }
    Ok((failures, checked))
}

/// The first of `inputs` that `checked` scrubs differently from `unchecked`, with what each
/// made of it. The inputs are lines, scrubbed as one text first: most often none differs, and
/// one call costs less than thousands.
fn held_back(
    checked: &Scrubber,
    unchecked: &Scrubber,
    inputs: impl Iterator<Item = String>,
) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let inputs: Vec<String> = inputs.collect();
    let all = inputs.concat();
    let (expected, actual) = (
        unchecked.scrub_bytes(all.as_bytes()),
        checked.scrub_bytes(all.as_bytes()),
    );
    if actual == expected {
        return None;
    }
    let one_by_one = inputs.into_iter().find_map(|input| {
        let expected = unchecked.scrub_bytes(input.as_bytes());
        let actual = checked.scrub_bytes(input.as_bytes());
        (actual != expected).then_some((input, expected, actual))
    });
    // A difference only in sequence (a block one line opens): the whole text is the case.
    Some(one_by_one.unwrap_or((all, expected, actual)))
}

/// `example` with one character repeated, for each character in turn, one more time than each
/// bound in `spec`'s `hit_check` allows (`{0,4}` → 5; the five checks found holding back
/// secrets each failed at one of these), and 40 and 48 times, past the usual `{0,32}` and
/// before `{0,64}`. Each comes alone and
/// followed by the example unchanged (a line with two secrets), and ends with a newline: the
/// filter gives a last line without one the closer look whatever the checks say.
pub fn stretched_examples<'a>(
    spec: &RuleSpec,
    example: &'a str,
) -> impl Iterator<Item = String> + 'a {
    let mut times: Vec<usize> = vec![40, 48];
    if let Some(check) = &spec.hit_check {
        let bounds = rules::repetition_bounds(check, spec.unicode);
        times.extend(
            bounds
                .iter()
                .map(|&m| m as usize + 1)
                .filter(|&t| t <= 4096),
        );
    }
    times.sort_unstable();
    times.dedup();
    let chars: Vec<char> = example.chars().collect();
    (0..chars.len()).flat_map(move |at| {
        let chars = chars.clone();
        times.clone().into_iter().flat_map(move |times| {
            let mut stretched: String = chars[..at].iter().collect();
            stretched.extend(std::iter::repeat_n(chars[at], times));
            stretched.extend(&chars[at + 1..]);
            [format!("{stretched}\n"), format!("{stretched} {example}\n")]
        })
    })
}

/// `default` cases for a property test, or `PROPTEST_CASES` when it is set (a count given in
/// a `ProptestConfig` overrides the variable, so the tests read it here).
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
