//! Counts for `--stats`: lines, bytes and redactions per rule. Never a secret.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::rules::Rule;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Lines read (a final line without a newline counts).
    pub lines: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Secrets replaced.
    pub redactions: u64,
    /// Secrets replaced, per rule id (rules that found nothing are left out).
    pub by_rule: BTreeMap<String, u64>,
}

impl Stats {
    pub(crate) fn from_counts(
        rules: &[Rule],
        counts: &[u64],
        lines: u64,
        bytes_in: u64,
        bytes_out: u64,
    ) -> Stats {
        let by_rule: BTreeMap<String, u64> = rules
            .iter()
            .zip(counts)
            .filter(|(_, &n)| n > 0)
            .map(|(r, &n)| (r.id.clone(), n))
            .collect();
        Stats {
            lines,
            bytes_in,
            bytes_out,
            redactions: by_rule.values().sum(),
            by_rule,
        }
    }

    /// Adds another run's counts (several files, several threads).
    pub fn merge(&mut self, other: &Stats) {
        self.lines += other.lines;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.redactions += other.redactions;
        for (rule, n) in &other.by_rule {
            *self.by_rule.entry(rule.clone()).or_default() += n;
        }
    }

    /// One JSON object, for `--stats=json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A short human-readable summary, for `--stats`.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "clawscrub: {} lines, {} bytes in, {} bytes out, {} redactions\n",
            self.lines, self.bytes_in, self.bytes_out, self.redactions
        );
        for (rule, n) in &self.by_rule {
            s.push_str(&format!("  {n:>10}  {rule}\n"));
        }
        s
    }
}
