//! The stages of the scrubbing pipeline run one at a time over a buffer of lines, so that the
//! benches can say where the time goes. Hidden from the docs and not a stable API: the
//! pipeline fuses these stages, and the way it does so changes with the engine.

use crate::engine::TriggerScan;
use crate::json;
use crate::Scrubber;

/// The block-level search alone: literal search, colon scanners and the hit checks that
/// prune their hits. Returns how many lines of `text` it sends to the close look.
pub fn block_search(scrubber: &Scrubber, text: &[u8]) -> usize {
    let matcher = &scrubber.matcher;
    let mut cache = matcher.new_cache();
    let mut scan = TriggerScan::default();
    let (mut pos, mut lines) = (0, 0);
    while let Some(t) = matcher.next_trigger(text, pos, &mut scan, &mut cache) {
        lines += 1;
        pos = memchr::memchr(b'\n', &text[t..]).map_or(text.len(), |i| t + i + 1);
    }
    lines
}

/// Confirmation alone: every line of `text` looked at closely as plain text (the literal
/// automaton, hit checks, rule regexes in windows, validators, overlaps), with no JSON
/// decoding. Returns the secrets found.
pub fn confirm(scrubber: &Scrubber, text: &[u8]) -> usize {
    let matcher = &scrubber.matcher;
    let mut cache = matcher.new_cache();
    let mut spans = Vec::new();
    text.split(|&b| b == b'\n')
        .map(|line| {
            matcher.find(line, &mut cache, &scrubber.mask, &mut spans);
            spans.len()
        })
        .sum()
}

/// JSON string scanning alone: each line of `text` tokenized, and every string value with
/// an escape in it decoded (the offset map is made only for a string with a finding, so not
/// here). Returns the string values (0 for a line that is not JSON).
pub fn json_strings(text: &[u8]) -> usize {
    let (mut values, mut decoded) = (Vec::new(), Vec::new());
    let mut count = 0;
    for line in text.split(|&b| b == b'\n') {
        if json::tokenize(line, &mut values, false).is_err() {
            continue;
        }
        for v in &values {
            let raw = &line[v.start..v.end];
            if memchr::memchr(b'\\', raw).is_some() {
                json::decode(raw, &mut decoded, None);
            }
        }
        count += values.len();
    }
    count
}

/// Masking alone: the scrubber's mask rendered for each `(rule id, secret)`. Returns the
/// bytes rendered.
pub fn mask(scrubber: &Scrubber, secrets: &[(String, Vec<u8>)]) -> usize {
    let mut out = Vec::new();
    for (rule, secret) in secrets {
        scrubber.mask.render(rule, secret, &mut out);
    }
    out.len()
}
