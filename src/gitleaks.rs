//! Import of gitleaks rule files (`[[rules]]` tables), so users keep the rules they have.
//!
//! gitleaks and clawscrub agree on most of a rule: a regex (Go's RE2 syntax, which the
//! `regex` crate reads the same way for everything RE2 supports), a secret group, an entropy
//! floor, allowlists. They differ on triggers: gitleaks' `keywords` only have to appear
//! somewhere in the scanned text, clawscrub's anchors in every match. Keywords become anchors
//! only when the regex proves it (each literal every match must contain holds a keyword);
//! otherwise the anchors are derived from the regex, or the rule looks at every line.
//!
//! What a stream cannot honour is reported, rule by rule: path-only rules and path or commit
//! allowlists (there are no paths in a log stream), and regexes a linear-time engine cannot
//! run (look-around, backreferences), which fail the import unless `lenient`.

use std::collections::HashSet;

use serde::Deserialize;

use crate::error::Error;
use crate::literals;
use crate::rules::{
    parse_regex, AllowCondition, AllowTarget, Allowlist, AnchorCase, Category, RulePack, RuleSpec,
};

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    rules: Vec<GitleaksRule>,
    /// The older single global allowlist.
    allowlist: Option<GitleaksAllowlist>,
    #[serde(default)]
    allowlists: Vec<GitleaksAllowlist>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GitleaksRule {
    id: String,
    description: Option<String>,
    regex: Option<String>,
    #[serde(default)]
    secret_group: usize,
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    allowlist: Option<GitleaksAllowlist>,
    #[serde(default)]
    allowlists: Vec<GitleaksAllowlist>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct GitleaksAllowlist {
    condition: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
    /// For global allowlists: the rules they apply to (all when empty).
    #[serde(default)]
    target_rules: Vec<String>,
}

/// True when `text` looks like a gitleaks config (`[[rules]]`) rather than a clawscrub pack
/// (`[[rule]]`).
pub(crate) fn is_gitleaks(text: &str) -> bool {
    match toml::from_str::<toml::Table>(text) {
        Ok(table) => table.contains_key("rules") && !table.contains_key("rule"),
        Err(_) => false,
    }
}

/// Converts a gitleaks config into a rule pack. Rules that cannot run are errors, all of
/// them listed in one message, or, when `lenient`, warnings and skipped. Rule ids that clash
/// with `taken` (the built-in ids) get a `gitleaks-` prefix.
pub(crate) fn import(
    origin: &str,
    text: &str,
    lenient: bool,
    taken: &HashSet<String>,
) -> Result<(RulePack, Vec<String>), Error> {
    let file: File =
        toml::from_str(text).map_err(|e| crate::rules::toml_error(origin, text, &e))?;
    let global: Vec<GitleaksAllowlist> =
        file.allowlist.into_iter().chain(file.allowlists).collect();
    let (mut rules, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for rule in file.rules {
        let id = if taken.contains(&rule.id) {
            warnings.push(format!(
                "{origin}: rule `{}` is renamed `gitleaks-{}`: a built-in rule has its id",
                rule.id, rule.id
            ));
            format!("gitleaks-{}", rule.id)
        } else {
            rule.id.clone()
        };
        let errors_before = errors.len();
        let Some(regex) = rule.regex.clone() else {
            let what = if rule.path.is_some() {
                "matches file paths only, and a stream has none"
            } else {
                "has no regex"
            };
            warnings.push(format!("{origin}: rule `{id}` {what}; skipped"));
            continue;
        };
        if rule.path.is_some() {
            warnings.push(format!(
                "{origin}: rule `{id}`: its `path` condition is ignored (a stream has no paths)"
            ));
        }
        let hir = match parse_regex(&regex, false) {
            Ok(hir) => hir,
            Err(e) => {
                errors.push(format!("rule `{id}`: {e}{}", linear_time_hint(&regex)));
                continue;
            }
        };
        let groups = hir.properties().explicit_captures_len();
        // gitleaks takes the first non-empty group when `secretGroup` is unset; clawscrub
        // falls back from group 1 to the last group that took part.
        let secret_group = match rule.secret_group {
            0 if groups > 0 => 1,
            n => n,
        };
        let keywords: Vec<String> = rule
            .keywords
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        let anchors = if keywords_cover(&hir, &keywords) {
            keywords
        } else {
            Vec::new()
        };
        let mut allowlist = Vec::new();
        let rule_lists = rule.allowlist.iter().chain(&rule.allowlists);
        let global_lists = global
            .iter()
            .filter(|a| a.target_rules.is_empty() || a.target_rules.contains(&rule.id));
        for list in rule_lists.chain(global_lists) {
            match convert_allowlist(list) {
                Ok(Some(a)) => allowlist.push(a),
                Ok(None) => warnings.push(format!(
                    "{origin}: rule `{id}`: an allowlist of paths or commits only is ignored"
                )),
                Err(e) => errors.push(format!("rule `{id}`: {e}")),
            }
        }
        if errors.len() > errors_before {
            continue;
        }
        rules.push(RuleSpec {
            description: rule
                .description
                .unwrap_or_else(|| format!("gitleaks rule {}", rule.id)),
            category: Category::Custom,
            regex: Some(regex),
            anchors,
            anchor_case: AnchorCase::Insensitive,
            secret_group,
            validators: rule
                .entropy
                .filter(|&e| e > 0.0)
                .map(|e| format!("entropy >= {e}"))
                .into_iter()
                .collect(),
            allowlist,
            ..RuleSpec::custom(id, String::new(), false)
        });
    }
    if !errors.is_empty() {
        let message = format!(
            "{} gitleaks rule(s) cannot run:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
        if !lenient {
            return Err(Error::rule(
                origin,
                format!("{message}\n(--lenient skips them with a warning)"),
            ));
        }
        // The rules with errors were never added.
        warnings.extend(errors.iter().map(|e| format!("{origin}: {e}; skipped")));
    }
    Ok((
        RulePack {
            origin: origin.to_string(),
            rules,
        },
        warnings,
    ))
}

/// True when every match of `hir` contains one of `keywords` (ASCII case ignored): each
/// literal some match must contain holds a keyword.
fn keywords_cover(hir: &regex_syntax::hir::Hir, keywords: &[String]) -> bool {
    if keywords.is_empty() {
        return false;
    }
    literals::required_literals(hir).is_some_and(|lits| {
        lits.iter().all(|lit| {
            let lit = lit.to_ascii_lowercase();
            keywords
                .iter()
                .any(|k| memchr::memmem::find(&lit, k.as_bytes()).is_some())
        })
    })
}

/// Names the construct that keeps a regex out of linear time, when it is one.
fn linear_time_hint(regex: &str) -> &'static str {
    let constructs = [
        ("(?=", "look-ahead"),
        ("(?!", "negative look-ahead"),
        ("(?<=", "look-behind"),
        ("(?<!", "negative look-behind"),
    ];
    if let Some((_, name)) = constructs.iter().find(|(c, _)| regex.contains(c)) {
        return match *name {
            "look-ahead" => " (look-ahead needs backtracking: match the text instead)",
            "negative look-ahead" => {
                " (negative look-ahead needs backtracking: use an allowlist instead)"
            }
            "look-behind" => " (look-behind needs backtracking: match the text instead)",
            _ => " (negative look-behind needs backtracking: use an allowlist instead)",
        };
    }
    let backref = regex
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && w[1].is_ascii_digit() && w[1] != b'0');
    if backref {
        " (backreferences need backtracking)"
    } else {
        ""
    }
}

fn convert_allowlist(list: &GitleaksAllowlist) -> Result<Option<Allowlist>, String> {
    let condition = match list
        .condition
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("OR") => AllowCondition::Or,
        Some("AND") => AllowCondition::And,
        Some(other) => return Err(format!("allowlist condition `{other}` (OR or AND)")),
    };
    let target = match list.regex_target.as_deref() {
        None | Some("secret") => AllowTarget::Secret,
        Some("match") => AllowTarget::Match,
        Some("line") => AllowTarget::Line,
        Some(other) => return Err(format!("allowlist regexTarget `{other}`")),
    };
    let only_unseen = list.regexes.is_empty() && list.stopwords.is_empty();
    // With AND, a path or commit condition can never hold in a stream.
    let needs_unseen =
        condition == AllowCondition::And && !(list.paths.is_empty() && list.commits.is_empty());
    if only_unseen || needs_unseen {
        return Ok(None);
    }
    for (i, re) in list.regexes.iter().enumerate() {
        parse_regex(re, false)
            .map_err(|e| format!("allowlist regex {}: {e}{}", i + 1, linear_time_hint(re)))?;
    }
    Ok(Some(Allowlist {
        regexes: list.regexes.clone(),
        target,
        stopwords: list.stopwords.clone(),
        condition,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
title = "team rules"

[allowlist]
regexes = ['''EXAMPLE''']

[[rules]]
id = "acme-token"
description = "ACME API token"
regex = '''\b(acme_[a-z0-9]{24})\b'''
keywords = ["acme_"]
entropy = 3.0

[[rules]]
id = "generic-pass"
regex = '''(?i)pass(?:word)?\s*[:=]\s*["']?([^\s"']{6,64})'''
secretGroup = 1
keywords = ["pass"]
[rules.allowlist]
stopwords = ["changeme"]

[[rules]]
id = "ssh-config"
path = '''\.ssh/config$'''

[[rules]]
id = "jwt"
regex = '''eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}'''
"#;

    #[test]
    fn detects_the_format() {
        assert!(is_gitleaks(CONFIG));
        assert!(!is_gitleaks("[[rule]]\nid = \"x\"\n"));
        assert!(!is_gitleaks("not toml ["));
    }

    #[test]
    fn converts_rules_and_reports_what_a_stream_cannot_use() {
        let taken = HashSet::from(["jwt".to_string()]);
        let (pack, warnings) = import("gl.toml", CONFIG, false, &taken).unwrap();
        let ids: Vec<&str> = pack.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["acme-token", "generic-pass", "gitleaks-jwt"]);
        let acme = &pack.rules[0];
        assert_eq!(acme.anchors, ["acme_"]);
        assert_eq!(
            acme.secret_group, 1,
            "first group when secretGroup is unset"
        );
        assert_eq!(acme.validators, ["entropy >= 3"]);
        assert_eq!(acme.allowlist.len(), 1, "the global allowlist applies");
        let pass = &pack.rules[1];
        assert_eq!(pass.allowlist.len(), 2);
        assert_eq!(pass.allowlist[0].stopwords, ["changeme"]);
        assert!(warnings
            .iter()
            .any(|w| w.contains("`ssh-config` matches file paths")));
        assert!(warnings
            .iter()
            .any(|w| w.contains("renamed `gitleaks-jwt`")));
    }

    #[test]
    fn keywords_become_anchors_only_when_every_match_has_one() {
        let hir = parse_regex(r"(?i)key\s*=\s*[a-z0-9]{16}", false).unwrap();
        assert!(keywords_cover(&hir, &["key".into()]));
        let hir = parse_regex(r"[a-f0-9]{32}", false).unwrap();
        assert!(!keywords_cover(&hir, &["heroku".into()]));
        let hir = parse_regex(r"(?:sk|pk)_live_[a-z0-9]{24}", false).unwrap();
        assert!(keywords_cover(&hir, &["_live_".into()]));
        assert!(!keywords_cover(&hir, &["sk_live".into()]));
    }

    #[test]
    fn non_linear_regexes_fail_per_rule_or_are_skipped_when_lenient() {
        let config = r#"
[[rules]]
id = "ahead"
regex = '''token(?=[A-Z]{8})'''
[[rules]]
id = "backref"
regex = '''(['"])[a-z]{8}\1'''
[[rules]]
id = "fine"
regex = '''fine_[a-z]{8}'''
"#;
        let err = import("gl.toml", config, false, &HashSet::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 gitleaks rule(s) cannot run"), "{err}");
        assert!(
            err.contains("rule `ahead`") && err.contains("look-ahead"),
            "{err}"
        );
        assert!(
            err.contains("rule `backref`") && err.contains("backreferences"),
            "{err}"
        );
        let (pack, warnings) = import("gl.toml", config, true, &HashSet::new()).unwrap();
        assert_eq!(pack.rules.len(), 1);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
