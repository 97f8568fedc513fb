//! The examples written into the built-in rule packs, checked three ways: each rule alone (what
//! `clawscrub rules test` runs), every positive example against the full default rule set, and
//! every negative example against the full default rule set.

use clawscrub::{check_examples, RulePack, Scrubber};

fn full_set() -> Scrubber {
    Scrubber::builder().build().expect("built-in rules compile")
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_builtin_pack_passes_its_own_examples() {
    let packs = RulePack::builtin();
    assert_eq!(
        packs.len(),
        10,
        "ai, keys, chat, code, cloud, tokens, credentials, network, openclaw, pii"
    );
    for pack in &packs {
        let (failures, checked) = check_examples(pack).expect("pack compiles");
        let expected: usize = pack
            .rules
            .iter()
            .map(|r| {
                // A rule with a hit check also has its examples stretched past the check.
                let stretched = if r.hit_check.is_some() {
                    r.examples.len()
                } else {
                    0
                };
                r.examples.len() + r.negative_examples.len() + stretched
            })
            .sum();
        assert_eq!(
            checked, expected,
            "{}: every example is checked",
            pack.origin
        );
        assert!(checked > 0, "{}: no examples at all", pack.origin);
        assert!(
            failures.is_empty(),
            "{}: {} example(s) failed:\n{:#?}",
            pack.origin,
            failures.len(),
            failures
        );
    }
}

/// `clawscrub rules lint`'s static checks: every built-in rule has an anchor (or a scanner or
/// JSON keys), no anchor under 3 bytes, no Unicode class where ASCII would do.
#[test]
fn builtin_rules_pass_lint() {
    let lints = clawscrub::lint::lint(&RulePack::builtin()).expect("packs compile");
    assert!(lints.is_empty(), "{lints:#?}");
}

#[test]
fn every_builtin_rule_has_positive_and_negative_examples() {
    let mut missing = Vec::new();
    for pack in RulePack::builtin() {
        for rule in &pack.rules {
            if rule.examples.is_empty() {
                missing.push(format!("{} {}: no example", pack.origin, rule.id));
            }
            if rule.negative_examples.is_empty() {
                missing.push(format!("{} {}: no negative example", pack.origin, rule.id));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

#[test]
fn builtin_rule_ids_are_unique_and_compile_together() {
    let mut ids = std::collections::HashSet::new();
    for pack in RulePack::builtin() {
        for rule in &pack.rules {
            assert!(ids.insert(rule.id.clone()), "duplicate id {}", rule.id);
        }
    }
    let listed: Vec<String> = full_set().rules().into_iter().map(|r| r.id).collect();
    for id in &listed {
        assert!(ids.contains(id), "listed rule {id} is not in a pack");
    }
}

/// Every positive example of every rule is redacted (by some rule) when all built-in rules run,
/// and the rule's own output is no less redacted: whatever the example says is masked is
/// masked by the full set too (another rule may win the span, or take a longer one).
#[test]
fn positive_examples_are_redacted_by_the_full_set() {
    let scrubber = full_set();
    let mut failures = Vec::new();
    for pack in RulePack::builtin() {
        // Opt-in rules are not in the default set; `corpus_precision.rs` runs them.
        for rule in pack.rules.iter().filter(|r| r.enabled) {
            for (i, example) in rule.examples.iter().enumerate() {
                let out = lossy(&scrubber.scrub_bytes(example.input.as_bytes()));
                if out == example.input {
                    failures.push(format!(
                        "{} example {}: unchanged: {:?}",
                        rule.id,
                        i + 1,
                        out
                    ));
                    continue;
                }
                if !out.contains("[REDACTED:") {
                    failures.push(format!("{} example {}: no tag: {:?}", rule.id, i + 1, out));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Negative examples that another built-in rule catches on purpose, with the rules that may
/// catch them. Most are the OpenClaw compatibility pack doing what OpenClaw's own default
/// regexes do (they are looser than the vendor rules: `sk-` plus 8 characters, `pplx-` plus
/// 10, `\d{6,}:` plus 20, …); the others hold a real credential shape in a sensitive context.
const CAUGHT_BY_OTHER_RULES: &[(&str, &str, &[&str])] = &[
    (
        "anthropic-api-key",
        "Anthropic keys start with sk-ant-api03- followed by the secret part",
        &["openclaw-sk"],
    ),
    (
        "anthropic-api-key",
        "see docs: sk-ant-api03-... must be kept out of git",
        &["openclaw-sk"],
    ),
    (
        "openrouter-api-key",
        "sk-or-v1-6faa34ea78d71292 is too short to be a key",
        &["openclaw-sk"],
    ),
    ("openai-api-key", "sk-proj-short", &["openclaw-sk"]),
    (
        "aws-secret-access-key",
        "secret_access_key: DNtn/HxyULJIm/3/G8FybthH/+X39YXo4a+xwfXMextra",
        &["sensitive-assignment", "openclaw-env-assignment"],
    ),
    (
        "github-token",
        "ghp_rSrCWtlAfoWIMXp5sot3 truncated",
        &["openclaw-ghp"],
    ),
    (
        "github-fine-grained-pat",
        "github_pat_ui5rR6pMDq1WfsrcYQttTs",
        &["openclaw-github-pat"],
    ),
    (
        "google-api-key",
        "AIzaSyUVEQtTo1zQKpgDK-oD8Kop2mFtkgfBha5Xtra",
        &["openclaw-google"],
    ),
    (
        "groq-api-key",
        "gsk_H3diS1ksjPBlTSvX3AClLf",
        &["openclaw-groq"],
    ),
    (
        "perplexity-api-key",
        "model pplx-70b-online is deprecated",
        &["openclaw-perplexity"],
    ),
    (
        "perplexity-api-key",
        "pplx-DD6z949sigIiKpRzTl99",
        &["openclaw-perplexity"],
    ),
    (
        "npm-token",
        "npm_bdEInzYY1PXnBFI3XI9n0CFMc4Np8woeY0iYextra",
        &["openclaw-npm"],
    ),
    (
        "telegram-bot-token",
        "4503541499:AAzHSDHpvOFHfpGk5w1Ef",
        &["openclaw-telegram"],
    ),
    (
        "telegram-bot-token",
        "id 45035414991:AAzHSDHpvOFHfpGk5w1EfB3ej0e93llJEpl",
        &["openclaw-telegram"],
    ),
    (
        "openclaw-authorization-bearer",
        "Authorization: Basic dXNlcjpwdw==",
        &["authorization-basic"],
    ),
];

/// Placeholders with a space that the full set once cut at the space (kept as a regression).
const PLACEHOLDERS_WITH_SPACES: &[(&str, &str)] =
    &[("openclaw-json-field", r#"{"apiKey": "<your key>""#)];

fn allowed_catchers(rule: &str, input: &str) -> Option<&'static [&'static str]> {
    CAUGHT_BY_OTHER_RULES
        .iter()
        .find(|(r, i, _)| *r == rule && *i == input)
        .map(|(_, _, c)| *c)
}

/// Every `[REDACTED:<id>]` tag in `text`.
fn tags(text: &str) -> Vec<&str> {
    text.split("[REDACTED:")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .collect()
}

#[test]
fn negative_examples_survive_the_full_set() {
    let scrubber = full_set();
    let mut failures = Vec::new();
    let mut seen_allowed = 0;
    for pack in RulePack::builtin() {
        for rule in &pack.rules {
            for (i, negative) in rule.negative_examples.iter().enumerate() {
                let out = lossy(&scrubber.scrub_bytes(negative.as_bytes()));
                match allowed_catchers(&rule.id, negative) {
                    Some(catchers) => {
                        seen_allowed += 1;
                        let bad: Vec<&str> = tags(&out)
                            .into_iter()
                            .filter(|t| !catchers.contains(t))
                            .collect();
                        if !bad.is_empty() {
                            failures.push(format!(
                                "{} negative {}: caught by unexpected rule(s) {bad:?}: {out:?}",
                                rule.id,
                                i + 1
                            ));
                        }
                    }
                    None if out != *negative => failures.push(format!(
                        "{} negative {}: {negative:?} became {out:?}",
                        rule.id,
                        i + 1
                    )),
                    None => {}
                }
            }
        }
    }
    assert_eq!(
        seen_allowed,
        CAUGHT_BY_OTHER_RULES.len(),
        "every listed exception names an existing negative example"
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The exceptions above are still caught; when one stops being caught, it belongs back among
/// the plain negative examples and should leave this list.
#[test]
fn listed_exceptions_are_still_caught() {
    let scrubber = full_set();
    let mut stale = Vec::new();
    for (rule, input, _) in CAUGHT_BY_OTHER_RULES {
        if scrubber.scrub_bytes(input.as_bytes()) == input.as_bytes() {
            stale.push(format!("{rule}: {input:?} is no longer caught"));
        }
    }
    assert!(stale.is_empty(), "{stale:#?}");
}

#[test]

fn placeholder_with_space_is_not_redacted_by_the_full_set() {
    let scrubber = full_set();
    for (_, input) in PLACEHOLDERS_WITH_SPACES {
        assert_eq!(lossy(&scrubber.scrub_bytes(input.as_bytes())), *input);
    }
    for input in [
        "api_key: <your key>",
        "TOKEN=<your token here>",
        "password: <your password>",
    ] {
        assert_eq!(lossy(&scrubber.scrub_bytes(input.as_bytes())), input);
    }
}
