//! Reading OpenClaw's `openclaw.json` (JSON5) for `logging.redactPatterns`, with OpenClaw's
//! semantics, so the patterns users already wrote keep working here.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::jsregex;
use crate::rules::{RulePack, RuleSpec};

/// `$OPENCLAW_STATE_DIR/openclaw.json`, else `~/.openclaw/openclaw.json`, when it exists.
pub fn default_config_path() -> Option<PathBuf> {
    let dir = match std::env::var_os("OPENCLAW_STATE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".openclaw"),
    };
    Some(dir.join("openclaw.json")).filter(|p| p.is_file())
}

/// The `logging.redactPatterns` strings of a config file (empty when the key is absent).
pub fn read_redact_patterns(path: &Path) -> Result<Vec<String>, Error> {
    let err = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    parse_redact_patterns(&text).map_err(err)
}

/// Parses config text; the error never quotes the file, which holds tokens of its own.
pub fn parse_redact_patterns(text: &str) -> Result<Vec<String>, String> {
    let value: serde_json::Value = json5::from_str(text).map_err(|e| match e {
        json5::Error::Message {
            location: Some(l), ..
        } => {
            format!("not valid JSON5 (line {}, column {})", l.line, l.column)
        }
        json5::Error::Message { location: None, .. } => "not valid JSON5".to_string(),
    })?;
    let Some(patterns) = value.get("logging").and_then(|l| l.get("redactPatterns")) else {
        return Ok(Vec::new());
    };
    let list = patterns
        .as_array()
        .ok_or("logging.redactPatterns must be an array of strings")?;
    list.iter()
        .enumerate()
        .map(|(i, p)| {
            p.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("logging.redactPatterns[{i}] is not a string"))
        })
        .collect()
}

/// Turns OpenClaw-style pattern strings into a rule pack. A pattern the linear-time engine
/// cannot run is an error naming its index and the construct, or with `lenient` a warning
/// (returned, for the caller to print) and the pattern is skipped.
pub fn patterns_to_pack(
    origin: &str,
    id_prefix: &str,
    patterns: &[String],
    lenient: bool,
) -> Result<(RulePack, Vec<String>), Error> {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let translated = jsregex::translate_redact_pattern(pattern).map(|re| {
            // OpenClaw masks the last non-empty capture group; the whole match without groups.
            let groups = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(&re)
                .map(|hir| hir.properties().explicit_captures_len())
                .unwrap_or(0);
            (re, groups)
        });
        match translated {
            Ok((re, groups)) => {
                let mut spec = RuleSpec::custom(format!("{id_prefix}{i}"), re, true);
                spec.secret_group = groups;
                spec.description = format!("{origin} pattern #{i}");
                rules.push(spec);
            }
            Err(e) if lenient => warnings.push(format!("{origin}[{i}]: {e}; pattern skipped")),
            Err(e) => return Err(Error::rule(format!("{origin}[{i}]"), e.to_string())),
        }
    }
    Ok((
        RulePack {
            origin: origin.to_string(),
            rules,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json5() {
        let text = r#"{
            // comments, unquoted keys, trailing commas
            logging: { level: 'info', redactPatterns: ['internal\\.corp', '/tok_[a-z]+/',], },
        }"#;
        assert_eq!(
            parse_redact_patterns(text).unwrap(),
            vec!["internal\\.corp", "/tok_[a-z]+/"]
        );
        assert_eq!(parse_redact_patterns("{}").unwrap(), Vec::<String>::new());
        let bad =
            parse_redact_patterns("{ gateway: { auth: { token: 'SECRETVALUE' } }").unwrap_err();
        assert!(!bad.contains("SECRETVALUE"), "{bad}");
    }

    #[test]
    fn unsupported_pattern_names_index_and_construct() {
        let patterns = vec!["ok_[a-z]+".to_string(), "foo(?=bar)SECRETVALUE".to_string()];
        let err = patterns_to_pack("logging.redactPatterns", "p", &patterns, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[1]") && err.contains("lookahead"), "{err}");
        assert!(!err.contains("SECRETVALUE"), "{err}");
        let (pack, warnings) =
            patterns_to_pack("logging.redactPatterns", "p", &patterns, true).unwrap();
        assert_eq!(pack.rules.len(), 1);
        assert_eq!(warnings.len(), 1);
    }
}
