//! Recall and precision over a generated OpenClaw-like corpus that plants the secrets of every
//! rule's examples in every context the generator knows (raw text, JSON values, escaped JSON in
//! tool results, tslog records, env assignments, URLs, CLI flags, headers), and every negative
//! example plus the usual look-alikes as decoys. Every rule is on, opt-in ones included.
//!
//! Checked: no planted secret is left in any spelling, no decoy loses an occurrence, the line
//! count is kept, and every line that was JSON is still JSON.

use clawscrub::sample::{self, Plants, Shape};
use clawscrub::{RulePack, Scrubber};

/// The secrets an example's output hides: the stretches of its input that its output replaces
/// with `[REDACTED:…]` markers.
fn secrets_of(input: &str, output: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = output;
    while let Some(at) = rest.find("[REDACTED:") {
        pieces.push(&rest[..at]);
        let Some(close) = rest[at..].find(']') else {
            break;
        };
        rest = &rest[at + close + 1..];
    }
    pieces.push(rest);
    let mut secrets = Vec::new();
    let mut pos = 0;
    for (i, piece) in pieces.iter().enumerate() {
        let found = if i + 1 == pieces.len() {
            input.len() - piece.len()
        } else {
            pos + input[pos..]
                .find(piece)
                .expect("output pieces come from the input")
        };
        if i > 0 && found > pos {
            secrets.push(input[pos..found].to_string());
        }
        pos = found + piece.len();
    }
    secrets
}

/// A string as it appears inside a JSON string, once and twice escaped, slashes escaped or not
/// (the generator escapes `/` in some inner strings, which the outer level escapes again).
fn spellings(s: &str) -> Vec<String> {
    let escape = |t: &str| {
        let quoted = serde_json::to_string(t).unwrap();
        quoted[1..quoted.len() - 1].to_string()
    };
    let once = escape(s);
    let once_slashed = once.replace('/', "\\/");
    let mut all = vec![
        s.to_string(),
        escape(&once),
        escape(&once_slashed),
        once_slashed,
        once,
    ];
    all.sort();
    all.dedup();
    all
}

fn remove_all(haystack: &[u8], needle: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut pos = 0;
    for at in memchr::memmem::find_iter(haystack, needle.as_bytes()) {
        if at >= pos {
            out.extend_from_slice(&haystack[pos..at]);
            pos = at + needle.len();
        }
    }
    out.extend_from_slice(&haystack[pos..]);
    out
}

fn count(haystack: &[u8], needle: &str) -> usize {
    memchr::memmem::find_iter(haystack, needle.as_bytes()).count()
}

struct Planting {
    plants: Plants,
    /// Whole lines to add (examples that are JSON documents), and their secrets.
    lines: Vec<(String, Vec<String>)>,
    decoy_lines: Vec<String>,
    rules: usize,
}

fn planting(scrubber: &Scrubber) -> Planting {
    let mut p = Planting {
        plants: Plants::default(),
        lines: Vec::new(),
        decoy_lines: Vec::new(),
        rules: 0,
    };
    for pack in RulePack::builtin() {
        for rule in &pack.rules {
            p.rules += 1;
            for example in &rule.examples {
                let secrets = secrets_of(&example.input, &example.output);
                let json = example.input.starts_with('{');
                if json {
                    // As a line, and as the text of a tool result (nested JSON).
                    let nested = format!(
                        r#"{{"type":"message","message":{{"role":"toolResult","content":[{{"type":"text","text":{}}}]}}}}"#,
                        serde_json::to_string(&example.input).unwrap()
                    );
                    p.lines.push((example.input.clone(), secrets.clone()));
                    p.lines.push((nested, secrets));
                    continue;
                }
                if example.input.contains('\n') {
                    p.lines.push((example.input.clone(), secrets));
                    continue;
                }
                // A secret that is found on its own also goes into the generator's contexts.
                for s in &secrets {
                    let alone = scrubber.scrub_bytes(s.as_bytes());
                    if count(&alone, s) == 0 && !s.contains(' ') {
                        p.plants.secrets.push(s.clone());
                    }
                }
                p.plants.fragments.push((example.input.clone(), secrets));
            }
            for negative in &rule.negative_examples {
                // A negative example of one rule that another rule redacts on its own is a
                // known overlap (`rule_examples.rs` lists them), not a decoy.
                if scrubber.scrub_bytes(negative.as_bytes()) != negative.as_bytes() {
                    continue;
                }
                if negative.starts_with('{') || negative.contains('\n') {
                    p.decoy_lines.push(negative.clone());
                } else {
                    p.plants.decoys.push(negative.clone());
                }
            }
        }
    }
    // A decoy that is part of a planted secret (`gsk_abc`, a truncated token) or holds one
    // changes with it; such pairs test the secret, not the decoy.
    let planted: Vec<&String> = p
        .plants
        .fragments
        .iter()
        .map(|(f, _)| f)
        .chain(&p.plants.secrets)
        .chain(p.lines.iter().map(|(l, _)| l))
        .collect();
    let secrets: Vec<&String> = p
        .plants
        .fragments
        .iter()
        .flat_map(|(_, s)| s)
        .chain(&p.plants.secrets)
        .collect();
    p.plants.decoys.retain(|d| {
        !planted.iter().any(|f| f.contains(d.as_str()))
            && !secrets.iter().any(|s| d.contains(s.as_str()))
    });
    p.plants.decoys.extend(
        [
            "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c",
            "9fceb02d0ae598e95dc970b74767f19372d61af8",
            "sha256:4f9c2b7e1a8d3f6c0b5e9a2d7c4f1e8b4f9c2b7e1a8d3f6c0b5e9a2d7c4f1e8b",
            "node 22.14.0",
            "version 1.10.2.3",
            "resolved 8.8.8.8 and 2606:4700:4700::1111",
            "sk-learn",
            "token budget",
            "password field",
            "$OPENAI_API_KEY",
            "${TOKEN}",
            "<your-key-here>",
        ]
        .map(String::from),
    );
    p
}

#[test]
fn every_rules_secrets_are_gone_and_every_decoy_kept() {
    let all_ids: Vec<String> = RulePack::builtin()
        .into_iter()
        .flat_map(|p| p.rules.into_iter().map(|r| r.id))
        .collect();
    let scrubber = all_ids
        .iter()
        .fold(Scrubber::builder(), |b, id| b.enable(id))
        .build()
        .expect("built-in rules compile");
    let p = planting(&scrubber);
    let mut secrets: Vec<String> = Vec::new();
    let mut decoys: Vec<String> = Vec::new();
    let mut input = Vec::new();
    for (seed, shape) in [Shape::Session, Shape::Tslog, Shape::Plain, Shape::Mixed]
        .into_iter()
        .enumerate()
    {
        let c = sample::generate_with(seed as u64, 1 << 20, shape, 0.5, &p.plants);
        input.extend_from_slice(&c.bytes);
        secrets.extend(c.secrets);
        decoys.extend(c.decoys);
    }
    for (line, line_secrets) in &p.lines {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        secrets.extend(line_secrets.iter().cloned());
    }
    for line in &p.decoy_lines {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
        decoys.push(line.clone());
    }
    let output = scrubber.scrub_bytes(&input);
    if let Some(path) = std::env::var_os("CLAWSCRUB_CORPUS_DUMP") {
        std::fs::write(path, &input).expect("write the corpus");
    }

    let lines_in: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let lines_out: Vec<&[u8]> = output.split(|&b| b == b'\n').collect();
    assert_eq!(lines_in.len(), lines_out.len(), "line count");
    let mut json_lines = 0;
    for (i, (a, b)) in lines_in.iter().zip(&lines_out).enumerate() {
        if serde_json::from_slice::<serde_json::Value>(a).is_ok() {
            json_lines += 1;
            assert!(
                serde_json::from_slice::<serde_json::Value>(b).is_ok(),
                "line {} is no longer JSON: {}",
                i + 1,
                String::from_utf8_lossy(b)
            );
        }
    }

    decoys.sort();
    decoys.dedup();
    // Some decoys hold a secret as a part (`AKIA…X is 21 characters`): blank them first.
    let mut blanked = output.clone();
    let mut by_length: Vec<String> = decoys.iter().flat_map(|d| spellings(d)).collect();
    by_length.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for d in &by_length {
        blanked = remove_all(&blanked, d);
    }
    secrets.sort();
    secrets.dedup();
    let left: Vec<&String> = secrets
        .iter()
        .filter(|s| spellings(s).iter().any(|sp| count(&blanked, sp) > 0))
        .collect();
    for s in &left {
        for sp in spellings(s) {
            if let Some(at) = memchr::memmem::find(&blanked, sp.as_bytes()) {
                let from = at.saturating_sub(120);
                let to = (at + sp.len() + 60).min(blanked.len());
                eprintln!("left: …{}…", String::from_utf8_lossy(&blanked[from..to]));
            }
        }
    }
    assert!(
        left.is_empty(),
        "{} planted secrets left: {left:#?}",
        left.len()
    );

    let changed: Vec<&String> = decoys
        .iter()
        .filter(|d| {
            spellings(d)
                .iter()
                .any(|sp| count(&input, sp) != count(&output, sp))
        })
        .collect();
    for d in changed.iter().take(12) {
        for (i, (a, b)) in lines_in.iter().zip(&lines_out).enumerate() {
            let sps = spellings(d);
            let Some(sp) = sps.iter().find(|sp| count(a, sp) != count(b, sp)) else {
                continue;
            };
            let a = String::from_utf8_lossy(a);
            let at = a.find(sp.as_str()).unwrap_or(0);
            let from = a.floor_char_boundary(at.saturating_sub(80));
            let b = String::from_utf8_lossy(b);
            let bfrom = b.floor_char_boundary(from.min(b.len()));
            let bto = b.floor_char_boundary((from + 260).min(b.len()));
            eprintln!(
                "changed {d:?} on line {}:\n  in:  …{}…\n  out: …{}…",
                i + 1,
                &a[from..a.floor_char_boundary((at + sp.len() + 80).min(a.len()))],
                &b[bfrom..bto]
            );
            break;
        }
    }
    assert!(
        changed.is_empty(),
        "{} decoys changed: {changed:#?}",
        changed.len()
    );
    eprintln!(
        "corpus: {} bytes, {} lines ({json_lines} JSON), {} rules, {} distinct secrets \
         planted ({} also bare in generator contexts), {} distinct decoys; none left, none changed",
        input.len(),
        lines_in.len(),
        p.rules,
        secrets.len(),
        p.plants.secrets.len(),
        decoys.len()
    );
}

#[test]
fn secrets_of_reads_the_gaps() {
    assert_eq!(
        secrets_of("a=xyz b", "a=[REDACTED:r] b"),
        vec!["xyz".to_string()]
    );
    assert_eq!(
        secrets_of("k1 k2", "[REDACTED:a] [REDACTED:b]"),
        vec!["k1".to_string(), "k2".to_string()]
    );
}
