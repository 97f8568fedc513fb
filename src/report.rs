//! Audit reports for `clawscrub check`: findings as text, JSON lines or SARIF 2.1.0, and a
//! summary per file of which kinds of secret it holds. Locations and rule ids only: a report
//! never holds a secret.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::{Finding, RuleInfo};

/// A finding and the file (and database row) it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file.
    pub path: PathBuf,
    /// The rowid, for a finding in a SQLite transcript store.
    pub row: Option<i64>,
    /// What was found where in the line.
    pub finding: Finding,
}

impl Located {
    /// `path:line:column` (1-based, columns in bytes), with `[rowid=N]` after the path for a
    /// database row.
    pub fn location(&self) -> String {
        let row = self.row.map(|r| format!("[rowid={r}]")).unwrap_or_default();
        format!(
            "{}{row}:{}:{}",
            self.path.display(),
            self.finding.line,
            self.finding.start + 1
        )
    }
}

/// One line per finding: `path:line:column rule-id`.
pub fn write_text(out: &mut impl Write, found: &[Located]) -> io::Result<()> {
    for f in found {
        writeln!(out, "{} {}", f.location(), f.finding.rule)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<i64>,
    line: u64,
    column: usize,
    end_column: usize,
    rule: &'a str,
    category: &'static str,
}

/// One JSON object per line and finding.
pub fn write_json(out: &mut impl Write, found: &[Located]) -> io::Result<()> {
    for f in found {
        let record = JsonFinding {
            path: f.path.display().to_string(),
            row: f.row,
            line: f.finding.line,
            column: f.finding.start + 1,
            end_column: f.finding.end + 1,
            rule: &f.finding.rule,
            category: f.finding.category.name(),
        };
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The findings as a SARIF 2.1.0 log, for code-scanning UIs and CI. Columns count bytes
/// (SARIF has no byte unit; for ASCII lines, all units agree).
pub fn sarif(found: &[Located], rules: &[RuleInfo]) -> serde_json::Value {
    let index: BTreeMap<&str, usize> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let results: Vec<serde_json::Value> = found
        .iter()
        .map(|f| {
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": uri(&f.path) },
                    "region": {
                        "startLine": f.finding.line,
                        "startColumn": f.finding.start + 1,
                        "endColumn": f.finding.end + 1,
                    }
                }
            });
            if let Some(row) = f.row {
                location["logicalLocations"] = json!([{
                    "name": format!("transcript_events rowid {row}"),
                    "kind": "object",
                }]);
            }
            let mut result = json!({
                "ruleId": f.finding.rule,
                "level": "error",
                "message": {
                    "text": format!(
                        "A {} secret (rule {}) is in this file; it is not shown here.",
                        f.finding.category.name(),
                        f.finding.rule
                    )
                },
                "locations": [location],
            });
            if let Some(&i) = index.get(f.finding.rule.as_str()) {
                result["ruleIndex"] = json!(i);
            }
            result
        })
        .collect();
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.description },
                "defaultConfiguration": { "level": "error" },
                "properties": { "category": r.category.name(), "tags": ["security", "secret"] },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "clawscrub",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": "https://github.com/clawscrub/clawscrub",
                    "rules": rules,
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    })
}

/// A file reference as a URI: relative paths stay relative (to the directory `check` ran
/// in); characters outside the unreserved set and `/` are percent-encoded.
fn uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 7);
    if path.is_absolute() {
        out.push_str("file://");
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Which kinds of secret one file holds, and when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The file.
    pub path: String,
    /// Findings in it.
    pub findings: u64,
    /// Findings per category.
    pub categories: BTreeMap<&'static str, u64>,
    /// Findings per rule.
    pub rules: BTreeMap<String, u64>,
    /// The first timestamp in the file (`"timestamp"` or tslog's `"time"`), if any.
    pub first: Option<String>,
    /// The last one.
    pub last: Option<String>,
}

/// Sums up the findings of one file; `found` is that file's findings.
pub fn summarize(path: &Path, found: &[Located]) -> Summary {
    let mut categories = BTreeMap::new();
    let mut rules = BTreeMap::new();
    for f in found {
        *categories.entry(f.finding.category.name()).or_default() += 1;
        *rules.entry(f.finding.rule.clone()).or_default() += 1;
    }
    let (first, last) = time_span(path).unzip();
    Summary {
        path: path.display().to_string(),
        findings: found.len() as u64,
        categories,
        rules,
        first,
        last,
    }
}

/// The first and last ISO timestamps in a JSONL file, from its first and last 64 KiB.
fn time_span(path: &Path) -> Option<(String, String)> {
    const EDGE: u64 = 64 * 1024;
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let read = |at: u64, n: u64| -> Option<Vec<u8>> {
        let mut buf = vec![0u8; n as usize];
        file.read_exact_at(&mut buf, at).ok()?;
        Some(buf)
    };
    let head = read(0, len.min(EDGE))?;
    let tail = read(len.saturating_sub(EDGE), len.min(EDGE))?;
    let first = timestamps(&head).next()?;
    let last = timestamps(&tail).last()?;
    Some((first, last))
}

/// The string values of `"timestamp"` and `"time"` keys in `text`, in order.
fn timestamps(text: &[u8]) -> impl Iterator<Item = String> + '_ {
    let finder = memchr::memmem::find_iter(text, b"\"tim");
    finder.filter_map(move |at| {
        let rest = &text[at..];
        let value = rest
            .strip_prefix(b"\"timestamp\":\"")
            .or_else(|| rest.strip_prefix(b"\"time\":\""))?;
        let end = memchr::memchr(b'"', value)?;
        let stamp = &value[..end];
        let plausible = stamp.len() <= 40
            && stamp.first().is_some_and(u8::is_ascii_digit)
            && stamp
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b":.-+".contains(b));
        plausible.then(|| String::from_utf8_lossy(stamp).into_owned())
    })
}

/// The summary as one text line.
pub fn summary_line(s: &Summary) -> String {
    let span = match (&s.first, &s.last) {
        (Some(a), Some(b)) => format!("{a} .. {b}"),
        _ => "no timestamps".into(),
    };
    let kinds: Vec<String> = s
        .categories
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    let rules: Vec<String> = s.rules.iter().map(|(r, n)| format!("{r}:{n}")).collect();
    format!(
        "{}  {}  {}  [{}]",
        s.path,
        span,
        kinds.join(" "),
        rules.join(" ")
    )
}
