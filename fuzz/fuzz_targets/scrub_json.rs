//! Structured JSONL through `scrub_bytes`: JSON values with real-format (fake) secrets spliced
//! into their strings, written with varied escaping (`\uXXXX`, `\/`, surrogate pairs), with
//! strings whose text is itself JSON (nested tool results, up to 3 levels), one value a line.
//!
//! Properties, line by line:
//! - the output parses as JSON (serde_json);
//! - outside strings it is byte for byte the input (spacing, number formats);
//! - same keys in the same order (but where a key held a secret), same non-string values;
//!   strings under structural keys
//!   (`id`, `type`, `timestamp`, …) unchanged; strings whose text is JSON still parse, with the
//!   same structure, recursively; strings under sensitive keys (`password`, `*_api_key`, …)
//!   may be redacted whole, so their contents are not compared;
//! - no spliced secret survives in any string, decoded, nor in the strings of JSON documents
//!   nested in it, decoded level by level (which covers the raw output too);
//! - scrubbing the output again changes nothing.
//!
//! Input: if some lines of the fuzz input are JSON objects or arrays (the seed corpus is real
//! OpenClaw JSONL), they are the templates: their strings get secrets spliced in, some
//! subtrees are turned into nested JSON strings, and everything is re-serialised with escapes
//! chosen by the fuzz bytes. Otherwise the fuzz bytes drive an `arbitrary` generator of JSON
//! values from scratch.
#![no_main]

use std::fmt;
use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use clawscrub::{RulePack, Scrubber, DEFAULT_STRUCTURAL_KEYS};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Secrets the built-in rules catch (each checked with `clawscrub rules explain`): the text
/// spliced into a string, and the parts of it that must not survive.
const SECRETS: &[(&str, &[&str])] = &[
    (
        "sk-proj-dnGN9ojVu8pVF7y0wfU8VWyGAM4hRcp7509hQkVO",
        &["dnGN9ojVu8pVF7y0wfU8VWyGAM4hRcp7509hQkVO"],
    ),
    (
        "sk-ant-api03-kEsz3zZC5DIjTcIvQUQ42gQ4v0HxWxAgtzBjJ1qi-E-CMaih",
        &["kEsz3zZC5DIjTcIvQUQ42gQ4v0HxWxAgtzBjJ1qi"],
    ),
    ("AKIAUSO3CPOEFQZ6A4ZT", &["AKIAUSO3CPOEFQZ6A4ZT"]),
    (
        "ghp_LKlg4hpljEsO2vU7RkoIIR1ONZhu30nzZ28K",
        &["LKlg4hpljEsO2vU7RkoIIR1ONZhu30nzZ28K"],
    ),
    (
        "xoxb-123456789012-1234567890123-NskFpYsCXvxXswPiTbfJpJHp",
        &["NskFpYsCXvxXswPiTbfJpJHp"],
    ),
    (
        "AIzaL8RO3_CXUoCXEQpqeHTXG8WEUT4fqEw14aO",
        &["L8RO3_CXUoCXEQpqeHTXG8WEUT4fqEw14aO"],
    ),
    (
        "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",
        &["wUGmm6YzRlRs0KsvHGWOa8ZKk7CgClr2X411zrOyBOHthJB9mYu2"],
    ),
    (
        "sk_live_pEfSs9Eyoi9S46nyJr0pk7XRvxjZn9qC",
        &["pEfSs9Eyoi9S46nyJr0pk7XRvxjZn9qC"],
    ),
    (
        "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",
        &["jbmHrDIKTcS-yJqv1LiXy9MB2IxjaZKuSpa2h2Qek2t"],
    ),
    (
        "hf_QnRSf4Vgq3ohXoX5Gql9hU7LX4TkxDN0RhAt",
        &["QnRSf4Vgq3ohXoX5Gql9hU7LX4TkxDN0RhAt"],
    ),
    (
        "7123456789:AAJLZ4HetUQBbAAdYnrHVaTm9JBc8v0Tb__",
        &["JLZ4HetUQBbAAdYnrHVaTm9JBc8v0Tb__"],
    ),
    ("glpat-FwolKqIwT9R7hGifkLxj", &["FwolKqIwT9R7hGifkLxj"]),
    (
        "xai-N0qI5fnxU2eamSpv0MAQLXXTe9UaWAalgwvvwakxmTa4OQ0MAmbRLyGc5n46iuInytf2JOZAY5Ple0Qa",
        &["N0qI5fnxU2eamSpv0MAQLXXTe9UaWAalgwvvwakxmTa4OQ0MAmbRLyGc5n46iuInytf2JOZAY5Ple0Qa"],
    ),
    (
        "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",
        &["NNDErw98US3RZFnFzRLI9tLJZdocT13UxIMej7dTEywFByor"],
    ),
    (
        "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",
        &["0VKmJvX8HxTvkQWMevIJY7OCMbK8g08CdZb8lVvtBiY7RzOwa8T4hjEy5v8"],
    ),
    (
        "npm_FzMqBnbdjmPM5MlyDzSfsDBfnWwj8W8rifzH",
        &["FzMqBnbdjmPM5MlyDzSfsDBfnWwj8W8rifzH"],
    ),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtb2x0Ym90IiwiaWF0IjoxNzczMjE3OTIxfQ.fAgTXboA2UbQ1r5lsGbEOgk9YCyE9YKQ9h3xGeAo8S1",
        &["fAgTXboA2UbQ1r5lsGbEOgk9YCyE9YKQ9h3xGeAo8S1"],
    ),
    (
        "Authorization: Bearer Zx81kQmP0vLr7TnW3sY6bC2dF5gH9jKa",
        &["Zx81kQmP0vLr7TnW3sY6bC2dF5gH9jKa"],
    ),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8vLm2RtX",
        &["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8vLm2RtX"],
    ),
    (
        "postgres://app:Zq8vLm2RtXw4@db.internal:5432/app",
        &["Zq8vLm2RtXw4"],
    ),
    ("10.20.0.14", &["10.20.0.14"]),
    ("100.101.7.33", &["100.101.7.33"]),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\nVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n-----END RSA PRIVATE KEY-----",
        &[
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
        ],
    ),
];

/// Put on both sides of a spliced secret, so that it stays a token of its own (a letter
/// next to `AKIA…` would legitimately make it something else).
#[rustfmt::skip]
const SEPARATORS: &[&str] = &[
    " ", "  ", "\n", "\t", "\"", "'", "(", ")", ",", ";", "<", ">", "|", "[", "]", "{", "}", " = ",
    ": ",
];

/// Keys no rule treats specially, some of them near misses of sensitive names.
#[rustfmt::skip]
const PLAIN_KEYS: &[&str] = &[
    "text", "content", "name", "arguments", "command", "cwd", "model", "provider", "api", "usage",
    "input", "output", "details", "status", "exitCode", "durationMs", "isError", "stopReason",
    "message", "data", "result", "stdout", "stderr", "url", "headers", "accept", "env", "NODE_ENV",
    "path", "args", "query", "body", "items", "0", "1", "_meta", "hostname", "date", "logLevelName",
    "thinking", "toolName", "version", "summary", "totalTokens", "maxTokens", "sortKey",
    "secretName", "passwordField", "tokens", "key", "keys", "line", "", "é", "modelId",
    "sessionKey", "OPENCLAW_STATE_DIR",
];

/// Keys whose string values the built-in `json-sensitive-key` rule redacts whole.
const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "apiKey",
    "token",
    "MISTRAL_API_KEY",
    "client_secret",
    "x-openclaw-token",
    "Authorization",
    "DB_PASSWORD",
    "githubToken",
];

/// Text pieces strings are made of: transcript prose, secret-shaped prefixes without a
/// secret, placeholders, masks, escapes-to-be, non-ASCII.
const FRAGMENTS: &[&str] = &[
    "deploy the staging box at ",
    "I should check the service first.",
    "curl -s http://",
    "https://api.openai.com/v1/chat/completions",
    "Authorization: Bearer ",
    "export OPENAI_API_KEY=",
    "password: ",
    "--token ",
    "key=",
    "token",
    "[REDACTED:openai-api-key]",
    "${OPENCLAW_GATEWAY_TOKEN}",
    "<your-key-here>",
    "<b>",
    "$(cat ~/.key)",
    "sk-",
    "ghp_",
    "AKIA",
    "eyJ",
    "-----BEGIN",
    "-----END RSA PRIVATE KEY-----",
    "10.0.0.",
    "192.168.1.1",
    "fe80::1",
    "1.2.3",
    "c2a2f355d04987bcf2946e5e577e078eea8a52fad6ce3090411d4534d2e2d050",
    "2026-03-11T08:32:09.471Z",
    "\n",
    "\r\n",
    "\t",
    "\"",
    "\\",
    "\\u0041",
    "/",
    " ",
    "=",
    ":",
    "é",
    "日本語",
    "😀",
    "\u{2028}",
    "\u{0}",
    "\u{7f}",
    "\u{fffd}",
    "{",
    "[",
    "null",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "42",
    "-17",
    "3.14",
    "1e10",
    "1E-7",
    "-2.5e+3",
    "1773217929471",
    "18446744073709551615",
    "123456789012345678901234567890",
    "0.1",
    "16647",
    "1.0",
];

/// Strings whose text is JSON are generated this many levels down (the line is level 0).
const MAX_NEST: usize = 3;
/// The scrubber parses strings as JSON in documents up to this level (its MAX_JSON_DEPTH).
const SCRUBBER_JSON_DEPTH: usize = 4;

fn scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::builder().build().expect("built-in rules compile"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyClass {
    Plain,
    Structural,
    Sensitive,
}

/// The built-in sensitive key names, normalised as the scrubber does (ASCII lower case,
/// without `_` and `-`; a leading `*` matches any prefix).
fn sensitive_keys() -> &'static Vec<Vec<u8>> {
    static K: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    K.get_or_init(|| {
        let spec = RulePack::builtin()
            .into_iter()
            .flat_map(|p| p.rules)
            .find(|r| r.enabled && !r.json_keys.is_empty())
            .expect("a built-in rule redacts by JSON key");
        spec.json_keys.iter().map(|k| normalize(k)).collect()
    })
}

fn normalize(key: &str) -> Vec<u8> {
    key.bytes()
        .filter(|&b| b != b'_' && b != b'-')
        .map(|b| b.to_ascii_lowercase())
        .collect()
}

fn classify(key: &str) -> KeyClass {
    if DEFAULT_STRUCTURAL_KEYS.contains(&key) {
        return KeyClass::Structural;
    }
    let k = normalize(key);
    let sensitive = sensitive_keys().iter().any(|s| match s.strip_prefix(b"*") {
        Some(suffix) => k.ends_with(suffix),
        None => *s == k,
    });
    if sensitive {
        KeyClass::Sensitive
    } else {
        KeyClass::Plain
    }
}

/// A JSON value that keeps object keys in order (serde_json's own `Value` sorts them).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    /// The number as written (generated) or canonically re-printed (parsed).
    Num(String),
    Str(String),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> std::result::Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<Node, E> {
                Ok(Node::Num(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<Node, E> {
                Ok(Node::Num(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<Node, E> {
                Ok(Node::Num(format!("{v:?}")))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Node, E> {
                Ok(Node::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Node::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Node, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = a.next_entry::<String, Node>()? {
                    members.push(member);
                }
                Ok(Node::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// `text` parsed as a JSON object or array, as the scrubber would see a nested document.
fn container(text: &str) -> Option<Node> {
    let first = text
        .bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))?;
    if first != b'{' && first != b'[' {
        return None;
    }
    serde_json::from_str(text).ok()
}

// ---------------------------------------------------------------------------------------
// Generating values from scratch.

struct Gen<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    budget: u32,
}

impl Gen<'_, '_> {
    fn doc(&mut self) -> Result<Node> {
        if self.u.ratio(4, 5)? {
            self.object(0)
        } else {
            self.array(0)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node> {
        let pick = if self.budget == 0 || depth >= 5 {
            self.u.choose_index(4)?
        } else {
            self.budget -= 1;
            self.u.choose_index(8)?
        };
        Ok(match pick {
            0 => Node::Null,
            1 => Node::Bool(self.u.arbitrary()?),
            2 => Node::Num(self.number()?),
            3..=5 => Node::Str(self.text()?),
            6 => self.array(depth + 1)?,
            _ => self.object(depth + 1)?,
        })
    }

    fn array(&mut self, depth: usize) -> Result<Node> {
        let n = self.u.int_in_range(0..=4)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.value(depth)?);
        }
        Ok(Node::Arr(items))
    }

    fn object(&mut self, depth: usize) -> Result<Node> {
        let n = self.u.int_in_range(0..=6)?;
        let mut members = Vec::with_capacity(n);
        for _ in 0..n {
            let key = self.key()?;
            members.push((key, self.value(depth)?));
        }
        Ok(Node::Obj(members))
    }

    fn key(&mut self) -> Result<String> {
        Ok(match self.u.choose_index(16)? {
            0..=10 => self.u.choose(PLAIN_KEYS)?.to_string(),
            11 | 12 => self.u.choose(&DEFAULT_STRUCTURAL_KEYS)?.to_string(),
            13 | 14 => self.u.choose(SENSITIVE_KEYS)?.to_string(),
            _ => clean(short(self.u.arbitrary::<&str>()?, 24)),
        })
    }

    fn number(&mut self) -> Result<String> {
        Ok(match self.u.choose_index(3)? {
            0 => self.u.choose(NUMBERS)?.to_string(),
            1 => self.u.arbitrary::<i64>()?.to_string(),
            _ => {
                let f: f64 = self.u.arbitrary()?;
                if f.is_finite() {
                    format!("{f:e}")
                } else {
                    "0.5".to_string()
                }
            }
        })
    }

    fn text(&mut self) -> Result<String> {
        let mut s = String::new();
        for _ in 0..self.u.int_in_range(0..=4)? {
            if self.u.ratio(2, 3)? {
                s.push_str(self.u.choose(FRAGMENTS)?);
            } else {
                s.push_str(short(self.u.arbitrary::<&str>()?, 32));
            }
        }
        Ok(clean(&s))
    }
}

/// `s` without any secret's needle: the only secrets in a generated line are the ones spliced
/// in where the scrubber must find them (libFuzzer's comparison tracing soon learns the
/// needles and would otherwise put them under structural keys, or without the prefix that
/// makes them secrets).
fn clean(s: &str) -> String {
    let mut s = s.to_string();
    while let Some(needle) = needles().find(|n| s.contains(*n)) {
        s = s.replace(needle, "x");
    }
    s
}

fn needles() -> impl Iterator<Item = &'static str> {
    SECRETS.iter().flat_map(|(_, n)| n.iter().copied())
}

/// `node` with every key and string cleaned.
fn clean_node(node: Node) -> Node {
    match node {
        Node::Str(s) => Node::Str(clean(&s)),
        Node::Arr(items) => Node::Arr(items.into_iter().map(clean_node).collect()),
        Node::Obj(members) => Node::Obj(
            members
                .into_iter()
                .map(|(k, v)| (clean(&k), clean_node(v)))
                .collect(),
        ),
        other => other,
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn short(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---------------------------------------------------------------------------------------
// Writing values out: splicing secrets, nesting documents in strings, escaping.

#[derive(Clone, Copy)]
enum Esc {
    /// What serde_json and `JSON.stringify` write.
    Minimal,
    /// `\/` for every `/`, as some emitters do.
    Slash,
    /// `\uXXXX` for everything outside ASCII (Python's `json.dumps`).
    Ascii,
    /// The same with upper-case hex digits.
    AsciiUpper,
    /// `\uXXXX` for pseudo-randomly chosen characters, secrets' letters included.
    Sprinkle(u64),
}

/// Whitespace around structural characters.
#[derive(Clone, Copy)]
enum Ws {
    Compact,
    /// `, ` and `: ` (Python's default).
    Spaced,
    /// Blanks (a choice of which comes from the fuzz input) everywhere; newlines only inside
    /// nested documents, where they are escaped.
    Blanks(u64, bool),
}

struct Emit<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    budget: u32,
}

fn next_rand(state: &mut u64) -> u64 {
    // xorshift64*: enough to spread escapes and blanks without spending fuzz bytes on each.
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

impl Emit<'_, '_> {
    fn esc(&mut self) -> Result<Esc> {
        Ok(match self.u.choose_index(6)? {
            0 | 1 => Esc::Minimal,
            2 => Esc::Slash,
            3 => Esc::Ascii,
            4 => Esc::AsciiUpper,
            _ => Esc::Sprinkle(self.u.arbitrary::<u64>()? | 1),
        })
    }

    fn ws(&mut self, nested: bool) -> Result<Ws> {
        Ok(match self.u.choose_index(4)? {
            0 | 1 => Ws::Compact,
            2 => Ws::Spaced,
            _ => Ws::Blanks(self.u.arbitrary::<u64>()? | 1, nested),
        })
    }

    /// One document (a line, or the text of a nested string at `nest` > 0).
    fn document(&mut self, node: &Node, frozen: bool, nest: usize) -> Result<String> {
        let mut ws = self.ws(nest > 0)?;
        let mut out = String::new();
        blank(&mut ws, false, &mut out);
        // Not turned into a string itself: a document is an object or array (the scrubber
        // takes other lines, and strings that do not start with `{` or `[`, for plain text).
        self.unwrapped(node, KeyClass::Plain, frozen, nest, &mut ws, &mut out)?;
        blank(&mut ws, false, &mut out);
        Ok(out)
    }

    /// Writes `node`, whose nearest key is of `class`; `frozen` inside a string the scrubber
    /// must leave alone (under a structural key), where no secret is spliced.
    fn value(
        &mut self,
        node: &Node,
        class: KeyClass,
        frozen: bool,
        nest: usize,
        ws: &mut Ws,
        out: &mut String,
    ) -> Result<()> {
        let stringify =
            nest < MAX_NEST && matches!(node, Node::Arr(_) | Node::Obj(_)) && self.u.ratio(1, 8)?;
        if stringify {
            let text = self.document(node, frozen || class == KeyClass::Structural, nest + 1)?;
            let esc = self.esc()?;
            escape(&text, esc, out);
            return Ok(());
        }
        self.unwrapped(node, class, frozen, nest, ws, out)
    }

    /// Writes `node` as what it is.
    fn unwrapped(
        &mut self,
        node: &Node,
        class: KeyClass,
        frozen: bool,
        nest: usize,
        ws: &mut Ws,
        out: &mut String,
    ) -> Result<()> {
        match node {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Num(n) => out.push_str(n),
            Node::Str(s) => {
                let text = self.string(s, class, frozen, nest)?;
                let esc = self.esc()?;
                escape(&text, esc, out);
            }
            Node::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        blank(ws, false, out);
                        out.push(',');
                    }
                    blank(ws, true, out);
                    self.value(item, class, frozen, nest, ws, out)?;
                }
                blank(ws, false, out);
                out.push(']');
            }
            Node::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        blank(ws, false, out);
                        out.push(',');
                    }
                    blank(ws, true, out);
                    let esc = self.esc()?;
                    escape(key, esc, out);
                    blank(ws, false, out);
                    out.push(':');
                    blank(ws, true, out);
                    self.value(value, classify(key), frozen, nest, ws, out)?;
                }
                blank(ws, false, out);
                out.push('}');
            }
        }
        Ok(())
    }

    /// The text of a string value: its JSON text decorated one level down, or the string with
    /// secrets spliced in, or a new nested document in its place.
    fn string(&mut self, s: &str, class: KeyClass, frozen: bool, nest: usize) -> Result<String> {
        let frozen = frozen || class == KeyClass::Structural;
        if nest < MAX_NEST {
            if let Some(inner) = container(s) {
                return self.document(&inner, frozen, nest + 1);
            }
            if self.budget > 0 && self.u.ratio(1, 10)? {
                let mut gen = Gen {
                    u: &mut *self.u,
                    budget: self.budget.min(24),
                };
                let inner = gen.doc()?;
                self.budget = self.budget.saturating_sub(24);
                return self.document(&inner, frozen, nest + 1);
            }
        }
        let mut text = s.to_string();
        if !frozen {
            // Positions in the original text, spliced from the last, so that no secret lands
            // inside another.
            let mut splices = Vec::new();
            for _ in 0..self.u.int_in_range(0..=2)? {
                let mut at = self.u.int_in_range(0..=s.len())?;
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                let (secret, _) = self.u.choose(SECRETS)?;
                let before = self.u.choose(SEPARATORS)?;
                let after = self.u.choose(SEPARATORS)?;
                splices.push((at, format!("{before}{secret}{after}")));
            }
            splices.sort_by_key(|(at, _)| *at);
            for (at, splice) in splices.iter().rev() {
                text.insert_str(*at, splice);
            }
            // A splice that happened to make the text a JSON document could have put the
            // secret under a structural key of it, where it rightly stays.
            if container(&text).is_some() {
                text = s.to_string();
            }
        }
        Ok(text)
    }
}

fn blank(ws: &mut Ws, after_open: bool, out: &mut String) {
    match ws {
        Ws::Compact => {}
        Ws::Spaced => {
            if !after_open {
                return;
            }
            // `, ` and `: ` but no blank after `[` or `{`.
            if out.ends_with(',') || out.ends_with(':') {
                out.push(' ');
            }
        }
        Ws::Blanks(state, nested) => {
            let r = next_rand(state);
            let choices: &[&str] = if *nested {
                &["", "", " ", "\t", "\n", "\n  ", "\r\n"]
            } else {
                &["", "", " ", "\t", "  "]
            };
            out.push_str(choices[(r % choices.len() as u64) as usize]);
        }
    }
}

fn escape(s: &str, esc: Esc, out: &mut String) {
    out.push('"');
    let mut state = match esc {
        Esc::Sprinkle(seed) => seed,
        _ => 0,
    };
    for c in s.chars() {
        let roll = if state != 0 { next_rand(&mut state) } else { 1 };
        let sprinkled = matches!(esc, Esc::Sprinkle(_)) && roll % 4 == 0;
        let upper = matches!(esc, Esc::AsciiUpper) || (sprinkled && roll % 8 == 0);
        let unicode = sprinkled
            || (matches!(esc, Esc::Ascii | Esc::AsciiUpper) && !c.is_ascii())
            || (c < ' ' && !matches!(c, '\n' | '\t' | '\r' | '\u{8}' | '\u{c}'));
        if unicode {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                if upper {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if matches!(esc, Esc::Slash) || (state != 0 && roll % 4 == 1) => {
                out.push_str("\\/")
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Checking the output.

/// The line with the contents of strings dropped, keys' too (they are scanned like values, and
/// compared in [`compare`]): what must come out byte for byte.
fn skeleton(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != b'"' {
            out.push(b);
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < line.len() && line[end] != b'"' {
            end += if line[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(line.len());
        out.extend_from_slice(b"\"\"");
        i = end + 1;
    }
    out
}

/// Whether `after` is `before` with some spans replaced by tags: more whole tags than `before`
/// had, and the text between them found in `before` in order, the first piece as its prefix and
/// the last as its suffix. A `[REDACTED:` with no `]` after it is the input's own text.
fn redacted_from(before: &str, after: &str) -> bool {
    let pieces = between_tags(after);
    if pieces.len() <= between_tags(before).len() {
        return false;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !before.starts_with(first) || !before[first.len()..].ends_with(last) {
        return false;
    }
    let mut inner = &before[first.len()..before.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match inner.find(piece) {
            Some(at) => inner = &inner[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// The text around and between the whole tags (`[REDACTED:…]`) in `s`: one piece more than
/// there are tags.
fn between_tags(s: &str) -> Vec<&str> {
    const TAG: &str = "[REDACTED:";
    let mut pieces = Vec::new();
    let mut rest = s;
    while let Some(at) = rest.find(TAG) {
        let Some(close) = rest[at..].find(']') else {
            break;
        };
        pieces.push(&rest[..at]);
        rest = &rest[at + close + 1..];
    }
    pieces.push(rest);
    pieces
}

/// Input and output documents agree where they must; `level` is the document's nesting.
fn compare(a: &Node, b: &Node, class: KeyClass, level: usize, path: &str) -> Option<String> {
    match (a, b) {
        (Node::Str(x), Node::Str(y)) => match class {
            KeyClass::Structural if x != y => {
                Some(format!("{path}: structural value changed: {x:?} -> {y:?}"))
            }
            KeyClass::Structural | KeyClass::Sensitive => None,
            KeyClass::Plain => {
                if level >= SCRUBBER_JSON_DEPTH {
                    return None;
                }
                let inner_a = container(x)?;
                let Some(inner_b) = container(y) else {
                    return Some(format!(
                        "{path}: nested JSON no longer parses: {x:?} -> {y:?}"
                    ));
                };
                compare(
                    &inner_a,
                    &inner_b,
                    KeyClass::Plain,
                    level + 1,
                    &format!("{path}/(json)"),
                )
            }
        },
        (Node::Arr(xs), Node::Arr(ys)) => {
            if xs.len() != ys.len() {
                return Some(format!("{path}: array length {} -> {}", xs.len(), ys.len()));
            }
            xs.iter()
                .zip(ys)
                .enumerate()
                .find_map(|(i, (x, y))| compare(x, y, class, level, &format!("{path}[{i}]")))
        }
        (Node::Obj(xs), Node::Obj(ys)) => {
            if xs.len() != ys.len() {
                return Some(format!("{path}: {} keys -> {}", xs.len(), ys.len()));
            }
            xs.iter().zip(ys).find_map(|((kx, x), (ky, y))| {
                // A key changes only where something in it was redacted.
                if kx != ky && !redacted_from(kx, ky) {
                    return Some(format!("{path}: key {kx:?} -> {ky:?}"));
                }
                compare(x, y, classify(kx), level, &format!("{path}/{kx}"))
            })
        }
        (x, y) if x == y => None,
        (x, y) => Some(format!("{path}: {x:?} -> {y:?}")),
    }
}

/// Fixed (regression test `sensitive_key_value_that_looks_like_a_placeholder_is_still_scanned`
/// in tests/fuzz_regressions.rs): a value under a sensitive key that looks like a placeholder
/// or holds a mask is still scanned by the other rules. Kept as a switch for bisecting.
const EXEMPT_HELD_BACK_SENSITIVE_VALUES: bool = false;

/// What the scrubber takes for a placeholder or an earlier mask under a sensitive key.
fn held_back(s: &str) -> bool {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    t.starts_with('<')
        || t.starts_with("${")
        || t.starts_with("$(")
        || (t.starts_with("{{") && t.ends_with("}}"))
        || (t.len() > 2 && t.starts_with('%') && t.ends_with('%'))
        || s.contains("[REDACTED")
}

/// A needle found in a decoded string of `node` (whose nearest key is of `class`), or of any
/// JSON document nested in a string of it. Keys are scanned too, but the generator cleans
/// them, so no needle is spliced into one.
fn leak(node: &Node, class: KeyClass, needles: &[&str]) -> Option<String> {
    match node {
        Node::Str(s) => {
            if class == KeyClass::Sensitive && EXEMPT_HELD_BACK_SENSITIVE_VALUES && held_back(s) {
                return None;
            }
            match container(s) {
                // Outside its strings a document holds no text a secret could be in.
                Some(inner) => leak(&inner, KeyClass::Plain, needles),
                None => needles
                    .iter()
                    .find(|n| s.contains(**n))
                    .map(|n| n.to_string()),
            }
        }
        Node::Arr(items) => items.iter().find_map(|n| leak(n, class, needles)),
        Node::Obj(members) => members
            .iter()
            .find_map(|(k, v)| leak(v, classify(k), needles)),
        _ => None,
    }
}

fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split_inclusive(|&b| b == b'\n').collect()
}

fn content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn build_input(data: &[u8]) -> Result<Vec<u8>> {
    // Template lines: the JSON objects and arrays among the input's lines.
    let templates: Vec<Node> = std::str::from_utf8(data)
        .map(|text| {
            text.lines()
                .filter_map(container)
                .filter(|n| matches!(n, Node::Obj(_) | Node::Arr(_)))
                .take(8)
                .map(clean_node)
                .collect()
        })
        .unwrap_or_default();
    // Decisions come from the input's bytes; for templates, from the end backwards, where
    // real lines differ more than at their `{"type":"` start.
    let reversed: Vec<u8> = data.iter().rev().copied().collect();
    let mut u = Unstructured::new(if templates.is_empty() {
        data
    } else {
        &reversed
    });
    let crlf = u.ratio(1, 8)?;
    let mut docs = templates;
    if docs.is_empty() {
        let mut gen = Gen {
            u: &mut u,
            budget: 96,
        };
        while docs.len() < 6 && !gen.u.is_empty() {
            docs.push(gen.doc()?);
        }
    }
    let mut emit = Emit {
        u: &mut u,
        budget: 96,
    };
    let mut input = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        input.extend_from_slice(emit.document(doc, false, 0)?.as_bytes());
        let last = i + 1 == docs.len();
        if !last || emit.u.ratio(3, 4)? {
            input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    Ok(input)
}

/// `SCRUB_JSON_PRINT=1` prints each generated input and its output (to see what a corpus
/// entry stands for: `cargo fuzz run scrub_json corpus/scrub_json/seed_tslog`).
fn print() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| std::env::var_os("SCRUB_JSON_PRINT").is_some())
}

fn fail(what: &str, input: &[u8], output: &[u8]) -> ! {
    panic!(
        "{what}\n input: {}\noutput: {}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(output),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = build_input(data) else {
        return;
    };
    let s = scrubber();
    let output = s.scrub_bytes(&input);
    if print() {
        eprintln!(
            "input:\n{}output:\n{}",
            String::from_utf8_lossy(&input),
            String::from_utf8_lossy(&output)
        );
    }
    macro_rules! report {
        ($($arg:tt)*) => {
            fail(&format!($($arg)*), &input, &output)
        };
    }
    let (ins, outs) = (lines(&input), lines(&output));
    if ins.len() != outs.len() {
        report!("{} lines in, {} out", ins.len(), outs.len());
    }
    let needles: Vec<&str> = needles().collect();
    for (n, (line_in, line_out)) in ins.iter().zip(&outs).enumerate() {
        let (raw_in, raw_out) = (content(line_in), content(line_out));
        let Ok(doc_out) = serde_json::from_slice::<Node>(raw_out) else {
            report!("line {}: output is not valid JSON", n + 1);
        };
        let doc_in: Node = serde_json::from_slice(raw_in).expect("generated lines are JSON");
        if skeleton(raw_in) != skeleton(raw_out) {
            report!(
                "line {}: changed outside string values\n  in: {}\n out: {}",
                n + 1,
                String::from_utf8_lossy(&skeleton(raw_in)),
                String::from_utf8_lossy(&skeleton(raw_out)),
            );
        }
        if let Some(diff) = compare(&doc_in, &doc_out, KeyClass::Plain, 0, "") {
            report!("line {}: {diff}", n + 1);
        }
        if let Some(needle) = leak(&doc_out, KeyClass::Plain, &needles) {
            report!(
                "line {}: secret {needle:?} survives in a decoded string",
                n + 1
            );
        }
    }
    let again = s.scrub_bytes(&output);
    if again != output {
        panic!(
            "not idempotent\n   input: {}\n  output: {}\n   again: {}",
            String::from_utf8_lossy(&input),
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(&again),
        );
    }
});
