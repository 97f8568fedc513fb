//! Property tests for the invariants in `docs/design.md` ("Invariants worth a property test
//! each"), over generated OpenClaw-like input (transcript and tslog JSON lines with nested and
//! escaped JSON, plain gateway.log text with CRLF, NUL and invalid UTF-8, realistic secrets
//! spliced into realistic contexts, decoys that look secret but are not) and over arbitrary
//! bytes; plus fixed tests for over-long lines, multi-line PEM keys and the bench corpus.
//!
//! The generator records where every secret sits in the raw bytes and how many levels of JSON
//! string escaping enclose it, so the exact expected output under a fixed mask is known: the
//! input with each secret replaced by the mask escaped that many times, every other byte as it
//! was.

use clawscrub::sample as corpus;

use std::io::{self, Read, Write};
use std::sync::OnceLock;

use clawscrub::{Mask, Scrubber};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value;

mod common;

// ---------------------------------------------------------------------------------------------
// Scrubbers

/// A fixed mask no input contains: its JSON-escaped form is known at every nesting level.
const MARK: &str = "\u{1}MASK\u{1}";

fn tag_scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::builder().build().unwrap())
}

fn openclaw_scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::builder().mask(Mask::OpenClaw).build().unwrap())
}

fn hash_scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| {
        let key = b"invariants".to_vec();
        Scrubber::builder().mask(Mask::Hash(key)).build().unwrap()
    })
}

fn mark_scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| {
        Scrubber::builder()
            .mask(Mask::Fixed(MARK.into()))
            .build()
            .unwrap()
    })
}

// ---------------------------------------------------------------------------------------------
// Material

/// Realistic secrets of many rules (values from the rule packs' examples and OpenClaw's docs).
const SECRETS: &[&str] = &[
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "sk-ant-api03-oYmJFw2rBXwwljvEqYIrKi_bDripN9ISEO1HJON_b7KOe7JMwOZYx6IuRCdv0i8fiJgz7YNAyLyE0TE2CrMN6eEDOAbz4AA",
    "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",
    "AKIAC4JFZJS7VQKBOXZJ",
    "ASIALT6QG4WQOJK4SIFE",
    "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",
    "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",
    "glpat-HsDRcZBac5Yi93UPWIkW",
    "xoxb-754519340513-0353056927405-JOA8ndFsWxpO7JP1BjA2xqdv",
    "xapp-1-AKPU0LFAMVS-0536860389733-4b1ec2848415f26b5c225c36988ad659e35cdbac822101d6609b656f5faa32fe",
    "AIzaSyUVEQtTo1zQKpgDK-oD8Kop2mFtkgfBha5",
    "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",
    "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",
    "xai-BZMfftOUK4Cekj75oZ3GCKMObAec2egpWODDeJKQYBTN8N3rvnXit6oYgFRO9sRwUY7JDsn1FKBgCGta",
    "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",
    "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",
    "4503541499:AAzHSDHpvOFHfpGk5w1EfB3ej0e93llJEpl",
    "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",
    "whsec_CeSgnQWUi09B/sy1SVIH3OKSwkKRLhaezLFk1EEJOSs=",
    "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",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXBsb3kifQ.4pXcJ2xg1kVb8Qz7TrW3nYs5",
    "10.20.0.14",
    "192.168.1.20",
    "172.16.5.4",
    "100.101.102.103",
    "169.254.169.254",
    "fd7a:115c:a1e0::53",
    "fe80::1ff:fe23:4567:890a",
];

/// Text around a spliced secret; the redaction must cover exactly the secret.
const CONTEXTS: &[(&str, &str)] = &[
    ("", ""),
    ("export SERVICE_TOKEN=", " "),
    (
        "curl -H \"Authorization: Bearer ",
        "\" https://api.example.com/v1/me",
    ),
    ("tool --api-key ", " --verbose"),
    ("found ", " in .env"),
    ("https://api.example.com/q?x=1&v=", "&page=2"),
    ("value: ", ""),
    ("(", ")"),
    ("'", "'"),
];

/// Whole values of sensitive JSON keys (not placeholders; some need escaping).
const PASSWORDS: &[&str] = &[
    "Tr0ub4dor&3",
    "hunter2-but-longer",
    "c0rrect h0rse battery st4ple",
    "s3cr3t/with\\slash\"quote",
    "p\u{e4}ssw\u{f6}rt-\u{65e5}\u{672c}-\u{1f511}",
];

/// Passwords inside connection-string URLs.
const URL_PASSWORDS: &[&str] = &["hunter2-but-longer", "Zq8pL2xW", "Tr0ub4dor&3"];

/// Sensitive JSON keys (credentials.toml `json-sensitive-key`).
const SENSITIVE_KEYS: &[&str] = &[
    "password",
    "apiKey",
    "token",
    "client_secret",
    "botToken",
    "Authorization",
];

/// Keys whose values are never changed.
const STRUCTURAL_KEYS: &[&str] = &clawscrub::DEFAULT_STRUCTURAL_KEYS;

/// Ordinary keys (neither sensitive nor structural).
const NORMAL_KEYS: &[&str] = &[
    "text",
    "content",
    "command",
    "stdout",
    "note",
    "message",
    "0",
    "1",
    "line",
    "path",
    "cwd",
    "details",
    "arguments",
    "items",
    "status",
    "model",
    "usage",
    "data",
    "_meta",
];

/// Values of structural fields, some of which look like secrets on purpose.
const STRUCTURAL_VALUES: &[&str] = &[
    "message",
    "toolResult",
    "assistant",
    "813a837d",
    "5d0c1f0e-6a53-4bd1-9a43-2f0c7e4f1b2a",
    "call_h2qhff6fkoax_1",
    "2026-03-11T08:32:09.471Z",
    "c2a2f355d04987bcf2946e5e577e078eea8a52fad6ce3090411d4534d2e2d050",
    "sk-proj-STRUCTURALzz9yXw8vUt7sRq6pOn5mLk4j",
    "AKIAIOSFODNN7EXAMPLE",
    "10.99.88.77",
    "fd00:1234::10",
];

const WORDS: &[&str] = &[
    "the",
    "service",
    "is",
    "running",
    "check",
    "logs",
    "for",
    "deploy",
    "staging",
    "build",
    "error",
    "retry",
    "config",
    "file",
    "updated",
    "user",
    "asked",
    "to",
    "restart",
    "gateway",
    "agent",
    "session",
    "tool",
    "result",
    "ok",
    "done",
    "with",
    "and",
    "then",
    "next",
    "step",
    "caf\u{e9}",
    "\u{65e5}\u{672c}\u{8a9e}",
    "\u{1f600}",
    "na\u{ef}ve",
    "a/b",
    "x=1",
    "50%",
    "{braces}",
    "[brackets]",
    "\"quoted\"",
    "back\\slash",
    "tab\there",
    "semi;colon",
    "@home",
];

/// Look-alikes no rule may touch.
const FIXED_DECOYS: &[&str] = &[
    "24.14.0",
    "1.10.2.3",
    "10.0.0.1.2",
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "151.101.1.69",
    "172.32.0.1",
    "100.128.0.1",
    "127.0.0.1",
    "http://127.0.0.1:18789/__openclaw__/canvas/",
    "2001:db8::1",
    "::1",
    "feed:beef",
    "2026-03-11T08:31:23.799Z",
    "1773217929542",
    "claude-opus-4-5",
    "/home/molt/.openclaw/workspace",
    "scikit-learn",
    "task-runner-for-the-ingest-pipeline",
    "max_tokens: 4096",
    "sk-learn",
    "ghp_",
    "AKIA",
    "eyJhbGciOiJIUzI1NiJ9",
    "the bearer of bad news",
    "-----BEGIN PUBLIC KEY-----",
    "git@github.com:openclaw/openclaw.git",
    "https://example.com:8443/path",
];

const JUNK: &[&[u8]] = &[
    b"\0",
    b"\0\0",
    b"\r",
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xc0\x80",
    b"\x01\x02\x1b[0m",
    b"\t",
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "3.25",
    "-1.5e3",
    "1e-7",
    "1773217929542",
    "16647",
    "18789",
];

// ---------------------------------------------------------------------------------------------
// The generated model

#[derive(Clone, Debug)]
enum Piece {
    Prose(String),
    Decoy(String),
    Secret {
        before: &'static str,
        secret: &'static str,
        after: &'static str,
    },
    UrlPassword(&'static str),
    /// About this many bytes of words: long strings take the engine's windowed path.
    Filler(usize),
    /// Plain lines only.
    Junk(&'static [u8]),
}

/// Text of a JSON string or a plain line: pieces joined by `joiner`, escaped (in JSON) with
/// per-character `choices`.
#[derive(Clone, Debug)]
struct Text {
    pieces: Vec<Piece>,
    choices: Vec<u8>,
    joiner: &'static str,
}

/// What separates pieces in JSON strings (escaped there) and in plain lines.
const JSON_JOINERS: &[&str] = &[" ", " ", "\n", "\t", ", ", " | ", "\"", "\r\n", "; "];
const PLAIN_JOINERS: &[&str] = &[" ", " ", "\t", ", ", " | ", "; "];

#[derive(Clone, Debug)]
enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    Str(Text),
    /// A string whose text is these JSON values, one per line (a tool result: one document,
    /// or JSON lines such as a `tail` of a log), escaped with `choices`.
    Embedded(Vec<J>, Vec<u8>),
    Arr(Vec<J>, bool),
    Obj(Vec<Entry>, bool),
}

#[derive(Clone, Debug)]
enum Entry {
    Normal(&'static str, J),
    Structural(&'static str, &'static str),
    StructuralNull(&'static str),
    StructuralNum(&'static str, &'static str),
    Sensitive(&'static str, &'static str, Vec<u8>),
    SensitiveNum(&'static str, &'static str),
}

impl Entry {
    fn key(&self) -> &'static str {
        match self {
            Entry::Normal(k, _)
            | Entry::Structural(k, _)
            | Entry::StructuralNull(k)
            | Entry::StructuralNum(k, _)
            | Entry::Sensitive(k, _, _)
            | Entry::SensitiveNum(k, _) => k,
        }
    }
}

#[derive(Clone, Debug)]
enum Line {
    Json(J),
    Plain(Text),
}

#[derive(Clone, Debug)]
struct Input {
    lines: Vec<Line>,
    crlf: Vec<bool>,
    final_newline: bool,
    /// Escape `/` as `\/` in JSON strings (at every level: see
    /// `url_credentials_with_any_slash_escaping` for mixed escaping).
    slash: bool,
}

// ---------------------------------------------------------------------------------------------
// Strategies

fn prose() -> impl Strategy<Value = Piece> {
    vec(select(WORDS), 1..6).prop_map(|w| Piece::Prose(w.join(" ")))
}

fn decoy() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => select(FIXED_DECOYS).prop_map(|d| d.to_string()),
        1 => "[0-9a-f]{40}",
        1 => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}",
        1 => "sha256:[0-9a-f]{64}",
        1 => (0u8..30, 0u8..30, 0u8..30).prop_map(|(a, b, c)| format!("v{a}.{b}.{c}")),
    ]
    .prop_map(Piece::Decoy)
}

fn secret() -> impl Strategy<Value = Piece> {
    prop_oneof![
        6 => (select(SECRETS), select(CONTEXTS)).prop_map(|(secret, (before, after))| {
            Piece::Secret { before, secret, after }
        }),
        1 => select(URL_PASSWORDS).prop_map(Piece::UrlPassword),
    ]
}

fn pieces(secrets: bool, junk: bool) -> BoxedStrategy<Vec<Piece>> {
    let mut options: Vec<(u32, BoxedStrategy<Piece>)> =
        vec![(5, prose().boxed()), (2, decoy().boxed())];
    if secrets {
        options.push((2, secret().boxed()));
    }
    if junk {
        options.push((1, select(JUNK).prop_map(Piece::Junk).boxed()));
    }
    options.push((1, (100usize..20_000).prop_map(Piece::Filler).boxed()));
    vec(proptest::strategy::Union::new_weighted(options), 1..8).boxed()
}

/// Escaping choices: mostly plain, sometimes `\uXXXX` or `\/`.
fn choices() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![6 => Just(0u8), 4 => any::<u8>()], 1..12)
}

fn text(secrets: bool) -> impl Strategy<Value = Text> {
    (pieces(secrets, false), choices(), select(JSON_JOINERS)).prop_map(
        |(pieces, choices, joiner)| Text {
            pieces,
            choices,
            joiner,
        },
    )
}

fn entries(value: BoxedStrategy<J>, secrets: bool) -> impl Strategy<Value = Vec<Entry>> {
    let mut options: Vec<(u32, BoxedStrategy<Entry>)> = vec![
        (
            6,
            (select(NORMAL_KEYS), value)
                .prop_map(|(k, v)| Entry::Normal(k, v))
                .boxed(),
        ),
        (
            2,
            (select(STRUCTURAL_KEYS), select(STRUCTURAL_VALUES))
                .prop_map(|(k, v)| Entry::Structural(k, v))
                .boxed(),
        ),
        (
            1,
            prop_oneof![
                select(STRUCTURAL_KEYS).prop_map(Entry::StructuralNull),
                (select(STRUCTURAL_KEYS), select(NUMBERS))
                    .prop_map(|(k, n)| Entry::StructuralNum(k, n)),
                (select(SENSITIVE_KEYS), select(NUMBERS))
                    .prop_map(|(k, n)| Entry::SensitiveNum(k, n)),
            ]
            .boxed(),
        ),
    ];
    if secrets {
        options.push((
            1,
            (select(SENSITIVE_KEYS), select(PASSWORDS), choices())
                .prop_map(|(k, v, c)| Entry::Sensitive(k, v, c))
                .boxed(),
        ));
    }
    vec(proptest::strategy::Union::new_weighted(options), 0..6).prop_map(|mut e| {
        // No duplicate keys: a parser keeps only one of them.
        let mut seen = std::collections::HashSet::new();
        e.retain(|x| seen.insert(x.key()));
        e
    })
}

fn json_value(secrets: bool) -> BoxedStrategy<J> {
    let leaf = prop_oneof![
        1 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        2 => select(NUMBERS).prop_map(J::Num),
        6 => text(secrets).prop_map(J::Str),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            2 => (vec(inner.clone(), 0..5), any::<bool>()).prop_map(|(v, s)| J::Arr(v, s)),
            3 => (entries(inner.clone(), secrets), any::<bool>())
                .prop_map(|(e, s)| J::Obj(e, s)),
            2 => (entries(inner.clone(), secrets), choices())
                .prop_map(|(e, c)| J::Embedded(vec![J::Obj(e, false)], c)),
            1 => (vec(entries(inner, secrets), 2..4), choices()).prop_map(|(lines, c)| {
                J::Embedded(lines.into_iter().map(|e| J::Obj(e, false)).collect(), c)
            }),
        ]
    })
    .boxed()
}

/// A transcript event, a tslog record, a free-form object or a bare value (a string line).
fn json_line(secrets: bool) -> impl Strategy<Value = J> {
    let v = json_value(secrets);
    prop_oneof![
        v.clone(),
        (entries(v.clone(), secrets), any::<bool>()).prop_map(|(e, s)| J::Obj(e, s)),
        (v.clone(), select(STRUCTURAL_VALUES)).prop_map(|(content, id)| {
            J::Obj(
                vec![
                    Entry::Structural("type", "message"),
                    Entry::Structural("id", id),
                    Entry::StructuralNull("parentId"),
                    Entry::Structural("timestamp", "2026-03-11T08:32:01.120Z"),
                    Entry::Normal(
                        "message",
                        J::Obj(
                            vec![
                                Entry::Structural("role", "toolResult"),
                                Entry::Structural("toolCallId", "call_h2qhff6fkoax_1"),
                                Entry::Normal("content", J::Arr(vec![content], false)),
                                Entry::StructuralNum("timestamp", "1773217929542"),
                            ],
                            false,
                        ),
                    ),
                ],
                false,
            )
        }),
        (text(secrets), v).prop_map(|(msg, meta)| {
            J::Obj(
                vec![
                    Entry::Normal(
                        "0",
                        J::Embedded(
                            vec![J::Obj(
                                vec![Entry::Normal(
                                    "subsystem",
                                    J::Str(Text {
                                        pieces: vec![Piece::Prose("gateway/ws".into())],
                                        choices: vec![0],
                                        joiner: " ",
                                    }),
                                )],
                                false,
                            )],
                            vec![0],
                        ),
                    ),
                    Entry::Normal("1", J::Str(msg)),
                    Entry::Normal("_meta", meta),
                    Entry::Structural("timestamp", "2026-03-14T13:44:56.380Z"),
                ],
                false,
            )
        }),
    ]
}

fn plain_line(secrets: bool) -> impl Strategy<Value = Text> {
    (any::<bool>(), pieces(secrets, true), select(PLAIN_JOINERS)).prop_map(
        |(stamp, mut pieces, joiner)| {
            if stamp {
                pieces.insert(0, Piece::Prose("2026-03-14T13:45:02.118Z [gateway]".into()));
            }
            Text {
                pieces,
                choices: Vec::new(),
                joiner,
            }
        },
    )
}

fn input(secrets: bool) -> impl Strategy<Value = Input> {
    let line = prop_oneof![
        3 => json_line(secrets).prop_map(Line::Json),
        2 => plain_line(secrets).prop_map(Line::Plain),
    ];
    (
        vec(line, 1..6),
        vec(any::<bool>(), 6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(lines, crlf, final_newline, slash)| Input {
            lines,
            crlf,
            final_newline,
            slash,
        })
}

// ---------------------------------------------------------------------------------------------
// Rendering the model to bytes, with the position and escaping depth of every secret

enum Seg {
    Raw(Vec<u8>),
    Open(usize),
    Close(usize),
}

struct Region {
    /// Levels of JSON string escaping around the secret (0 in plain text).
    depth: usize,
    /// Text that must not survive anywhere in the output (decoded).
    secret: String,
}

struct Render {
    regions: Vec<Region>,
    /// Escape every `/` as `\/`, at every level.
    slash: bool,
}

/// JSON-escapes `s` for a string body. Required escapes always; otherwise `choices` decides,
/// per character, between the character itself and `\uXXXX` (lower or upper hex). Like real
/// emitters, all `/` are escaped as `\/` or none.
fn escape_with(s: &str, choices: &[u8], k: &mut usize, slash: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let v = if choices.is_empty() {
            0
        } else {
            choices[*k % choices.len()]
        };
        *k += 1;
        let unicode = |out: &mut String, upper: bool| {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                if upper {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        };
        match v {
            180..=219 => unicode(&mut out, false),
            220..=239 => unicode(&mut out, true),
            _ => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                '/' if slash => out.push_str("\\/"),
                c => out.push(c),
            },
        }
    }
    out
}

/// The scrubber's own escaping of a mask (control characters as lower-case `\u00XX`).
fn scrubber_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl Render {
    fn region(&mut self, out: &mut Vec<Seg>, depth: usize, secret: &str, raw: Vec<u8>) {
        let id = self.regions.len();
        self.regions.push(Region {
            depth,
            secret: secret.to_string(),
        });
        out.push(Seg::Open(id));
        out.push(Seg::Raw(raw));
        out.push(Seg::Close(id));
    }

    /// Pieces of one string body (or plain line) at escaping `depth`.
    fn pieces(&mut self, text: &Text, depth: usize, out: &mut Vec<Seg>) {
        let (pieces, choices) = (&text.pieces, &text.choices[..]);
        let mut k = 0;
        let slash = self.slash;
        let esc = |s: &str, k: &mut usize| -> Vec<u8> {
            if depth == 0 {
                s.as_bytes().to_vec()
            } else {
                escape_with(s, choices, k, slash).into_bytes()
            }
        };
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                out.push(Seg::Raw(esc(text.joiner, &mut k)));
            }
            match p {
                Piece::Prose(s) | Piece::Decoy(s) => out.push(Seg::Raw(esc(s, &mut k))),
                Piece::Filler(n) => {
                    let mut f = String::new();
                    for w in WORDS.iter().cycle() {
                        if f.len() >= *n {
                            break;
                        }
                        f.push_str(w);
                        f.push(' ');
                    }
                    out.push(Seg::Raw(esc(f.trim_end(), &mut k)));
                }
                Piece::Junk(b) => out.push(Seg::Raw(b.to_vec())),
                Piece::Secret {
                    before,
                    secret,
                    after,
                } => {
                    out.push(Seg::Raw(esc(before, &mut k)));
                    let raw = esc(secret, &mut k);
                    self.region(out, depth, secret, raw);
                    out.push(Seg::Raw(esc(after, &mut k)));
                }
                Piece::UrlPassword(pw) => {
                    out.push(Seg::Raw(esc("postgres://app:", &mut k)));
                    let raw = esc(pw, &mut k);
                    self.region(out, depth, pw, raw);
                    out.push(Seg::Raw(esc("@db.internal:5432/app", &mut k)));
                }
            }
        }
    }

    fn literal(&mut self, s: &str, out: &mut Vec<Seg>) {
        out.push(Seg::Raw(format!("\"{}\"", scrubber_escape(s)).into_bytes()));
    }

    /// A JSON value whose string bodies are at escaping depth `depth + 1`.
    fn value(&mut self, v: &J, depth: usize, out: &mut Vec<Seg>) {
        let raw = |s: &str| Seg::Raw(s.as_bytes().to_vec());
        match v {
            J::Null => out.push(raw("null")),
            J::Bool(b) => out.push(raw(if *b { "true" } else { "false" })),
            J::Num(n) => out.push(raw(n)),
            J::Str(t) => {
                out.push(raw("\""));
                self.pieces(t, depth + 1, out);
                out.push(raw("\""));
            }
            J::Embedded(lines, choices) => {
                let mut segs = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        segs.push(raw("\n"));
                    }
                    self.value(line, depth + 1, &mut segs);
                }
                out.push(raw("\""));
                let mut k = 0;
                for seg in segs {
                    out.push(match seg {
                        Seg::Raw(b) => Seg::Raw(
                            escape_with(
                                std::str::from_utf8(&b).unwrap(),
                                choices,
                                &mut k,
                                self.slash,
                            )
                            .into_bytes(),
                        ),
                        other => other,
                    });
                }
                out.push(raw("\""));
            }
            J::Arr(items, spaced) => {
                out.push(raw("["));
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(raw(if *spaced { ", " } else { "," }));
                    }
                    self.value(item, depth, out);
                }
                out.push(raw("]"));
            }
            J::Obj(entries, spaced) => {
                out.push(raw(if *spaced { "{ " } else { "{" }));
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(raw(if *spaced { ", " } else { "," }));
                    }
                    self.literal(e.key(), out);
                    out.push(raw(if *spaced { ": " } else { ":" }));
                    match e {
                        Entry::Normal(_, v) => self.value(v, depth, out),
                        Entry::Structural(_, s) => self.literal(s, out),
                        Entry::StructuralNull(_) => out.push(raw("null")),
                        Entry::StructuralNum(_, n) | Entry::SensitiveNum(_, n) => out.push(raw(n)),
                        Entry::Sensitive(_, secret, choices) => {
                            out.push(raw("\""));
                            let mut k = 0;
                            let body =
                                escape_with(secret, choices, &mut k, self.slash).into_bytes();
                            self.region(out, depth + 1, secret, body);
                            out.push(raw("\""));
                        }
                    }
                }
                out.push(raw(if *spaced { " }" } else { "}" }));
            }
        }
    }
}

/// Generated bytes, the raw span and depth of each secret, and the secret texts.
struct Rendered {
    bytes: Vec<u8>,
    /// (start, end, depth) of each spliced secret, in order.
    spans: Vec<(usize, usize, usize)>,
    secrets: Vec<String>,
}

fn render(input: &Input) -> Rendered {
    let mut r = Render {
        regions: Vec::new(),
        slash: input.slash,
    };
    let mut segs = Vec::new();
    for (i, line) in input.lines.iter().enumerate() {
        match line {
            Line::Json(j) => r.value(j, 0, &mut segs),
            Line::Plain(p) => r.pieces(p, 0, &mut segs),
        }
        let last = i + 1 == input.lines.len();
        if !last || input.final_newline {
            let crlf = input.crlf[i % input.crlf.len()];
            segs.push(Seg::Raw(if crlf {
                b"\r\n".to_vec()
            } else {
                b"\n".to_vec()
            }));
        }
    }
    let mut bytes = Vec::new();
    let mut open = vec![0; r.regions.len()];
    let mut spans = Vec::new();
    for seg in segs {
        match seg {
            Seg::Raw(b) => bytes.extend_from_slice(&b),
            Seg::Open(id) => open[id] = bytes.len(),
            Seg::Close(id) => spans.push((open[id], bytes.len(), r.regions[id].depth)),
        }
    }
    spans.sort();
    Rendered {
        bytes,
        spans,
        secrets: r.regions.into_iter().map(|g| g.secret).collect(),
    }
}

/// The input with every secret replaced by `MARK`, escaped once per enclosing JSON string.
fn expected_with_mark(r: &Rendered) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    for &(start, end, depth) in &r.spans {
        out.extend_from_slice(&r.bytes[pos..start]);
        let mut mask = MARK.to_string();
        for _ in 0..depth {
            mask = scrubber_escape(&mask);
        }
        out.extend_from_slice(mask.as_bytes());
        pos = end;
    }
    out.extend_from_slice(&r.bytes[pos..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Checks

fn newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Occurrences (overlapping) of each needle in `hay`, in one pass (aho-corasick is already a
/// dependency of the crate).
fn counts(needles: &[String], hay: &[u8]) -> Vec<usize> {
    counts_in(&aho_corasick::AhoCorasick::new(needles).unwrap(), hay)
}

fn counts_in(ac: &aho_corasick::AhoCorasick, hay: &[u8]) -> Vec<usize> {
    let mut n = vec![0; ac.patterns_len()];
    for m in ac.find_overlapping_iter(hay) {
        n[m.pattern().as_usize()] += 1;
    }
    n
}

/// Every string in a JSON value; strings whose text is JSON are searched too.
fn all_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            out.push(s.clone());
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                if inner.is_object() || inner.is_array() {
                    all_strings(&inner, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(o) => {
            for (k, x) in o {
                out.push(k.clone());
                all_strings(x, out);
            }
        }
        _ => {}
    }
}

/// Same shape: same keys at every level (JSON-in-strings included), same non-string values,
/// same structural-field values.
fn same_shape(a: &Value, b: &Value, key: Option<&str>, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let kx: Vec<&String> = x.keys().collect();
            let ky: Vec<&String> = y.keys().collect();
            if kx != ky {
                return Err(format!("{path}: keys {kx:?} became {ky:?}"));
            }
            for (k, v) in x {
                same_shape(v, &y[k], Some(k), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!(
                    "{path}: array length {} became {}",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same_shape(v, w, key, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(x), Value::String(y)) => {
            if key.is_some_and(|k| STRUCTURAL_KEYS.contains(&k)) && x != y {
                return Err(format!("{path}: structural value {x:?} became {y:?}"));
            }
            match serde_json::from_str::<Value>(x) {
                Ok(inner) if inner.is_object() || inner.is_array() => {
                    let inner_out = serde_json::from_str::<Value>(y).map_err(|e| {
                        format!("{path}: JSON inside a string stopped being JSON ({e}): {y:?}")
                    })?;
                    same_shape(&inner, &inner_out, None, &format!("{path}<json>"))
                }
                _ => Ok(()),
            }
        }
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{path}: {x} became {y}")),
    }
}

fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split(|&c| c == b'\n').collect()
}

/// Valid JSON lines stay valid with the same shape.
fn check_json_lines(input: &[u8], output: &[u8]) -> Result<(), String> {
    let (li, lo) = (lines(input), lines(output));
    if li.len() != lo.len() {
        return Err(format!("{} lines became {}", li.len(), lo.len()));
    }
    for (n, (a, b)) in li.iter().zip(&lo).enumerate() {
        if let Ok(va) = serde_json::from_slice::<Value>(a) {
            let vb = serde_json::from_slice::<Value>(b)
                .map_err(|e| format!("line {n}: not JSON any more ({e}): {}", show(b)))?;
            same_shape(&va, &vb, None, &format!("line {n}"))?;
        }
    }
    Ok(())
}

/// No secret survives, raw or in any decoded string of a JSON line.
fn check_secrets_gone(output: &[u8], secrets: &[String]) -> Result<(), String> {
    let mut decoded = Vec::new();
    for line in lines(output) {
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            all_strings(&v, &mut decoded);
        }
    }
    for s in secrets {
        if find(output, s.as_bytes()) {
            return Err(format!("secret {s:?} survives in {}", show(output)));
        }
        if let Some(d) = decoded.iter().find(|d| d.contains(s.as_str())) {
            return Err(format!("secret {s:?} survives decoded in {d:?}"));
        }
    }
    Ok(())
}

/// A reader that hands out the input in the sizes it is given, with `Interrupted` errors.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    interrupt_every: usize,
    reads: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        // Every n-th read (n >= 2) fails with `Interrupted`; the caller must retry.
        if self.interrupt_every >= 2 && self.reads.is_multiple_of(self.interrupt_every) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let want = self.sizes[self.reads % self.sizes.len()].max(1);
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A writer that takes at most `max` bytes per call.
struct Trickle {
    out: Vec<u8>,
    max: usize,
}

impl Write for Trickle {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn scrub_chunked(
    s: &Scrubber,
    data: &[u8],
    sizes: &[usize],
    interrupt_every: usize,
    write_max: usize,
) -> Vec<u8> {
    let mut w = Trickle {
        out: Vec::new(),
        max: write_max.max(1),
    };
    let reader = Chunked {
        data,
        sizes,
        interrupt_every,
        reads: 0,
    };
    s.scrub(reader, &mut w)
        .expect("in-memory scrub cannot fail");
    w.out
}

/// Fragments that make arbitrary input interesting: JSON syntax, escapes, anchors, secrets,
/// PEM markers, line breaks, invalid UTF-8.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    const FRAGMENTS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        "\"",
        "\\",
        "\\\"",
        "\\\\",
        "\\u00",
        "\\u0061",
        "\\u0073k-",
        "\\ud83d",
        "\\ude00",
        "\\/",
        ":",
        ",",
        " ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "null",
        "1e5",
        "\"text\":",
        "\"password\":",
        "\"id\":",
        "\"apiKey\": \"",
        "token=",
        "TOKEN = '",
        "--api-key ",
        "Bearer ",
        "Authorization: Basic ",
        "://",
        "@",
        "postgres://u:",
        "sk-",
        "sk-ant-",
        "AKIA",
        "ghp_",
        "xoxb-",
        "eyJ",
        ".eyJ",
        "10.",
        "192.168.",
        "fd7a:",
        "fe80::",
        "123456789:",
        ":AA",
        "%eth0",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo",
        "[REDACTED:",
        "]",
        "\u{2026}",
        "***",
        "0123456789",
        "abcdefghijABCDEFGHIJ",
        "\0",
        "\u{1f511}",
    ];
    let frag = prop_oneof![
        6 => select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
        2 => select(SECRETS).prop_map(|f| f.as_bytes().to_vec()),
        2 => vec(any::<u8>(), 0..8),
    ];
    vec(frag, 0..60).prop_map(|v| v.concat())
}

/// `cases` cases, or `PROPTEST_CASES` when set, without failure files.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: common::proptest_cases(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Sanity of the material: every secret is caught in every context, every decoy survives.

#[test]
fn material_secrets_are_caught_and_decoys_survive() {
    let s = tag_scrubber();
    let mut bad = Vec::new();
    for secret in SECRETS {
        for (before, after) in CONTEXTS {
            let text = format!("x {before}{secret}{after} y");
            let line = format!(
                "{{\"type\":\"text\",\"text\":{}}}",
                serde_json::to_string(&text).unwrap()
            );
            for input in [text, line] {
                let out = show(&s.scrub_bytes(input.as_bytes()));
                if out.contains(secret) {
                    bad.push(format!("survives: {input}"));
                }
            }
        }
    }
    for d in FIXED_DECOYS {
        for input in [
            format!("x {d} y"),
            format!(
                "{{\"text\":{}}}",
                serde_json::to_string(&format!("x {d} y")).unwrap()
            ),
        ] {
            if s.scrub_bytes(input.as_bytes()) != input.as_bytes() {
                bad.push(format!("decoy changed: {input}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes: no panic, same number of lines, and splitting reads changes nothing.
    #[test]
    fn arbitrary_bytes(
        data in prop_oneof![vec(any::<u8>(), 0..1500), soup()],
        sizes in vec(1usize..200, 1..8),
        interrupt_every in 0usize..5,
        write_max in 1usize..100,
    ) {
        let s = tag_scrubber();
        let out = s.scrub_bytes(&data);
        prop_assert_eq!(newlines(&out), newlines(&data));
        let chunked = scrub_chunked(s, &data, &sizes, interrupt_every, write_max);
        prop_assert!(chunked == out, "chunked read differs:\n{}\n{}", show(&chunked), show(&out));
    }

    /// Arbitrary bytes with the other masks: no panic, same number of lines (OpenClaw's PEM
    /// style has newlines of its own).
    #[test]
    fn arbitrary_bytes_other_masks(data in prop_oneof![vec(any::<u8>(), 0..800), soup()]) {
        for s in [openclaw_scrubber(), mark_scrubber()] {
            let out = s.scrub_bytes(&data);
            prop_assert_eq!(newlines(&out), newlines(&data));
        }
    }

    /// A value may hold the key of the next assignment (`token: token: SECRET`, a flag given
    /// twice, a bearer token that reads `password=…`): the secret after it is redacted all the
    /// same, and a second pass changes nothing; also after a row of nested values or a long one.
    #[test]
    fn a_key_inside_a_value_does_not_hide_the_next_secret(
        before in prop_oneof![Just(String::new()), Just(format!("{} ", "token:".repeat(40)))],
        keys in vec((select(REPEATED_KEYS), gap()), 1..5),
        password in select(URL_PASSWORDS),
    ) {
        let line: String = keys.iter().map(|(key, gap)| format!("{gap}{key}")).collect();
        let input = format!("{before}{line}{password}\n");
        for s in [tag_scrubber(), hash_scrubber()] {
            let once = s.scrub_bytes(input.as_bytes());
            prop_assert!(!find(&once, password.as_bytes()), "leaked: {}", show(&once));
            let twice = s.scrub_bytes(&once);
            prop_assert!(twice == once, "second pass:\n{}\n{}", show(&once), show(&twice));
        }
    }
}

/// What comes before a key in [`a_key_inside_a_value_does_not_hide_the_next_secret`].
fn gap() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&["", " ", "x", "\"", "&", ":"][..]).prop_map(str::to_string),
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Keys that lead to a value, for [`a_key_inside_a_value_does_not_hide_the_next_secret`].
const REPEATED_KEYS: &[&str] = &[
    "token: ",
    "password=",
    "--token ",
    "api_key = ",
    "secret: \"",
    "--password=",
    "Authorization: Bearer ",
    "PASSWORD=",
    "?access_token=",
    "\"apiKey\": \"",
];

proptest! {
    #![proptest_config(config(128))]

    /// Input with decoys, prose, nested and escaped JSON, CRLF, NUL and invalid UTF-8 but no
    /// secret comes out byte for byte.
    #[test]
    fn secret_free_input_is_unchanged(input in input(false)) {
        let r = render(&input);
        prop_assert!(r.spans.is_empty());
        let out = tag_scrubber().scrub_bytes(&r.bytes);
        prop_assert!(out == r.bytes, "changed:\n{}\n{}", show(&r.bytes), show(&out));
    }

    /// With spliced secrets: exactly the secrets are replaced and nothing else changes; the
    /// line count is kept; JSON stays JSON of the same shape; no secret survives, decoded or not.
    #[test]
    fn only_secrets_change(input in input(true)) {
        let r = render(&input);
        let out = mark_scrubber().scrub_bytes(&r.bytes);
        let expected = expected_with_mark(&r);
        prop_assert!(
            out == expected,
            "input:\n{}\nexpected:\n{}\nactual:\n{}",
            show(&r.bytes), show(&expected), show(&out)
        );

        let tagged = tag_scrubber().scrub_bytes(&r.bytes);
        prop_assert_eq!(newlines(&tagged), newlines(&r.bytes));
        if let (Some(first), Some(last)) = (r.spans.first(), r.spans.iter().map(|s| s.1).max()) {
            let (prefix, suffix) = (&r.bytes[..first.0], &r.bytes[last..]);
            prop_assert!(tagged.starts_with(prefix), "prefix changed: {}", show(&tagged));
            prop_assert!(tagged.ends_with(suffix), "suffix changed: {}", show(&tagged));
        }
        for out in [&out, &tagged] {
            if let Err(e) = check_json_lines(&r.bytes, out) {
                return Err(TestCaseError::fail(format!("{e}\ninput: {}", show(&r.bytes))));
            }
            if let Err(e) = check_secrets_gone(out, &r.secrets) {
                return Err(TestCaseError::fail(format!("{e}\ninput: {}", show(&r.bytes))));
            }
        }
    }

    /// The OpenClaw mask keeps line count and JSON validity and leaves no whole secret.
    #[test]
    fn openclaw_mask_keeps_structure(input in input(true)) {
        let r = render(&input);
        let out = openclaw_scrubber().scrub_bytes(&r.bytes);
        prop_assert_eq!(newlines(&out), newlines(&r.bytes));
        if let Err(e) = check_json_lines(&r.bytes, &out) {
            return Err(TestCaseError::fail(format!("{e}\ninput: {}", show(&r.bytes))));
        }
        if let Err(e) = check_secrets_gone(&out, &r.secrets) {
            return Err(TestCaseError::fail(format!("{e}\ninput: {}", show(&r.bytes))));
        }
    }

    /// Scrubbing scrubbed output changes nothing, whatever the mask.
    #[test]
    fn idempotent(input in input(true)) {
        let r = render(&input);
        for s in [tag_scrubber(), mark_scrubber(), openclaw_scrubber(), hash_scrubber()] {
            let once = s.scrub_bytes(&r.bytes);
            let twice = s.scrub_bytes(&once);
            prop_assert!(
                once == twice,
                "not idempotent:\ninput: {}\nonce:  {}\ntwice: {}",
                show(&r.bytes), show(&once), show(&twice)
            );
        }
    }

    /// The output does not depend on how the input was split into reads (or writes).
    #[test]
    fn chunk_boundaries_do_not_matter(
        input in input(true),
        sizes in vec(1usize..64, 1..10),
        interrupt_every in 0usize..4,
        write_max in 1usize..50,
    ) {
        let r = render(&input);
        for s in [tag_scrubber(), openclaw_scrubber()] {
            let whole = s.scrub_bytes(&r.bytes);
            let chunked = scrub_chunked(s, &r.bytes, &sizes, interrupt_every, write_max);
            prop_assert!(
                chunked == whole,
                "input: {}\nwhole:   {}\nchunked: {}",
                show(&r.bytes), show(&whole), show(&chunked)
            );
        }
    }

    /// The output does not depend on what the scrubber scrubbed before: sessions take the
    /// regex caches and scratch buffers earlier sessions handed back, and nothing they hold
    /// may carry over.
    #[test]
    fn earlier_input_does_not_matter(before in input(true), input in input(true)) {
        let (before, r) = (render(&before), render(&input));
        let fresh = Scrubber::builder().build().unwrap();
        let expected = fresh.scrub_bytes(&r.bytes);
        fresh.scrub_bytes(&before.bytes);
        let after = fresh.scrub_bytes(&r.bytes);
        prop_assert!(
            after == expected,
            "before: {}\ninput: {}\nfresh: {}\nafter: {}",
            show(&before.bytes), show(&r.bytes), show(&expected), show(&after)
        );
    }
}

#[test]
fn openclaw_mask_is_idempotent() {
    let s = openclaw_scrubber();
    for input in [
        "peer fe80::1ff:fe23:4567:890a up",
        "Authorization: Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "Authorization: Bearer AKIAC4JFZJS7VQKBOXZJ",
        r#"{"text":"curl -H \"Authorization: Bearer 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\""}"#,
    ] {
        let once = s.scrub_bytes(input.as_bytes());
        let twice = s.scrub_bytes(&once);
        assert_eq!(show(&twice), show(&once), "input {input}");
    }
}

// ---------------------------------------------------------------------------------------------
// PEM private keys spanning plain-text lines

const PEM_KINDS: &[&str] = &[
    "RSA PRIVATE KEY",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "DSA PRIVATE KEY",
];

#[derive(Clone, Debug)]
struct Pem {
    before: Vec<String>,
    lead: &'static str,
    kind: &'static str,
    headers: bool,
    body: Vec<String>,
    trail: &'static str,
    after: Vec<String>,
    crlf: bool,
}

fn pem() -> impl Strategy<Value = Pem> {
    let words = || vec(select(WORDS), 1..6).prop_map(|w| w.join(" "));
    (
        vec(words(), 0..3),
        select(&["", "key: ", "2026-03-14T13:45:02.118Z [exec] "][..]),
        select(PEM_KINDS),
        any::<bool>(),
        vec("[A-Za-z0-9+/]{20,64}", 1..25),
        "[A-Za-z0-9+/]{0,16}={0,2}",
        select(&["", " done", "  # end of key"][..]),
        vec(words(), 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(before, lead, kind, headers, mut body, last, trail, after, crlf)| {
                if !last.is_empty() {
                    body.push(last);
                }
                Pem {
                    before,
                    lead,
                    kind,
                    headers,
                    body,
                    trail,
                    after,
                    crlf,
                }
            },
        )
}

impl Pem {
    /// (whole text, text before the key, text after the key)
    fn render(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let nl = if self.crlf { "\r\n" } else { "\n" };
        let mut prefix = String::new();
        for l in &self.before {
            prefix.push_str(l);
            prefix.push_str(nl);
        }
        prefix.push_str(self.lead);
        let mut key = format!("-----BEGIN {}-----{nl}", self.kind);
        if self.headers {
            key.push_str(&format!(
                "Proc-Type: 4,ENCRYPTED{nl}DEK-Info: AES-128-CBC,3F17F5316E2BAC89{nl}{nl}"
            ));
        }
        for b in &self.body {
            key.push_str(b);
            key.push_str(nl);
        }
        key.push_str(&format!("-----END {}-----", self.kind));
        let mut suffix = self.trail.to_string();
        suffix.push_str(nl);
        for l in &self.after {
            suffix.push_str(l);
            suffix.push_str(nl);
        }
        let whole = format!("{prefix}{key}{suffix}");
        (whole.into_bytes(), prefix.into_bytes(), suffix.into_bytes())
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// A PEM key over several plain-text lines goes whole (header, base64 body, footer); the
    /// line count and every byte before and after it stay.
    #[test]
    fn pem_block_is_removed_whole(p in pem(), sizes in vec(1usize..40, 1..6)) {
        let (input, prefix, suffix) = p.render();
        for s in [tag_scrubber(), openclaw_scrubber()] {
            let out = s.scrub_bytes(&input);
            prop_assert_eq!(newlines(&out), newlines(&input));
            prop_assert!(out.starts_with(&prefix), "{}", show(&out));
            prop_assert!(out.ends_with(&suffix), "{}", show(&out));
            for b in p.body.iter().filter(|b| b.len() >= 12) {
                prop_assert!(!find(&out, b.as_bytes()), "body line {} survives:\n{}", b, show(&out));
            }
            prop_assert!(!find(&out, b"3F17F5316E2BAC89"), "{}", show(&out));
            let chunked = scrub_chunked(s, &input, &sizes, 0, 4096);
            prop_assert!(chunked == out, "chunked:\n{}\nwhole:\n{}", show(&chunked), show(&out));
        }
        let tagged = show(&tag_scrubber().scrub_bytes(&input));
        prop_assert!(!tagged.contains("PRIVATE KEY"), "{}", tagged);
        prop_assert_eq!(tagged.matches("[REDACTED:").count(), 1, "{}", tagged);
    }

    /// The same key inside a JSON string (escaped newlines): gone, and the line stays JSON.
    #[test]
    fn pem_in_json_string_is_removed(p in pem(), choices in choices()) {
        let (text, _, _) = p.render();
        let text = String::from_utf8(text).unwrap();
        let mut k = 0;
        let line = format!(
            r#"{{"type":"message","id":"e0f1c758","message":{{"role":"toolResult","content":[{{"type":"text","text":"{}"}}]}}}}"#,
            escape_with(&text, &choices, &mut k, choices.len() % 2 == 0)
        );
        prop_assume!(serde_json::from_str::<Value>(&line).is_ok());
        let out = tag_scrubber().scrub_bytes(line.as_bytes());
        let v: Value = serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(format!("{e}: {}", show(&out))))?;
        let after = v["message"]["content"][0]["text"].as_str().unwrap().to_string();
        for b in p.body.iter().filter(|b| b.len() >= 12) {
            prop_assert!(!after.contains(b.as_str()), "body line survives: {}", after);
        }
        prop_assert!(!after.contains("PRIVATE KEY"), "{}", after);
    }

    /// A secret right after a JSON escape in text that is not decoded as JSON: a JSON fragment
    /// in a plain log line, or a JSON string that holds one (escaped twice). In the raw bytes
    /// `\nAKIA…` has no word boundary before the key (found by a review). Gone, and a second
    /// pass changes nothing.
    #[test]
    fn secret_after_an_escape_in_undecoded_text_is_found(
        secret in select(SECRETS),
        escape in select(&["\\n", "\\t", "\\r\\n", "\\\"", "\\u0020", "\\/"][..]),
        words in vec(select(WORDS), 0..4),
        json in any::<bool>(),
    ) {
        let fragment = format!(r#"{{"out":"{} {escape}{secret}{escape}"}}"#, words.join(" "));
        let line = if json {
            format!(r#"{{"type":"text","text":{}}}"#, serde_json::to_string(&format!("exec result {fragment} done")).unwrap())
        } else {
            format!("2026-03-14T13:44:56Z INFO exec result {fragment}")
        };
        let once = tag_scrubber().scrub_bytes(line.as_bytes());
        prop_assert!(!find(&once, secret.as_bytes()), "{}", show(&once));
        if json {
            check_json_lines(line.as_bytes(), &once).map_err(TestCaseError::fail)?;
        }
        let twice = tag_scrubber().scrub_bytes(&once);
        prop_assert_eq!(show(&once), show(&twice));
    }

    /// A key assigned to a variable, its line breaks escaped (`SSH_KEY="-----BEGIN …\n…"`),
    /// on a plain line and in a JSON string: the OpenClaw mask keeps the header, which the
    /// assignment rules must not take for a value on a second pass (found by a review).
    #[test]
    fn openclaw_mask_of_an_assigned_pem_is_idempotent(p in pem(), json in any::<bool>()) {
        let kind = p.kind;
        let key = format!("-----BEGIN {kind}-----\n{}\n-----END {kind}-----\n", p.body.join("\n"));
        let command = format!("SSH_KEY=\"{key}\" ./deploy.sh");
        let line = if json {
            format!(r#"{{"text":{}}}"#, serde_json::to_string(&command).unwrap())
        } else {
            command.replace('\n', "\\n")
        };
        let once = openclaw_scrubber().scrub_bytes(line.as_bytes());
        prop_assert!(!show(&once).contains(&p.body[0]), "{}", show(&once));
        let twice = openclaw_scrubber().scrub_bytes(&once);
        prop_assert_eq!(show(&once), show(&twice));
    }
}

// ---------------------------------------------------------------------------------------------
// Over-long lines: scrubbed in windows (src/stream.rs: MAX_LINE 4 MiB, WINDOW_STEP 1 MiB,
// WINDOW_OVERLAP = MAX_REACH = 64 KiB).

const MIB: usize = 1 << 20;
const MAX_LINE: usize = 4 * MIB;
const WINDOW_STEP: usize = MIB;
const WINDOW_OVERLAP: usize = 64 * 1024;

/// The rule id `scrubber` gives `secret` in a short plain line.
fn rule_of(secret: &str) -> String {
    let out = show(&tag_scrubber().scrub_bytes(format!("x {secret} y").as_bytes()));
    let tag = out
        .strip_prefix("x [REDACTED:")
        .and_then(|r| r.strip_suffix("] y"))
        .unwrap_or_else(|| panic!("{secret} is not redacted whole: {out}"));
    tag.to_string()
}

/// A ~9 MiB line with secrets at and around every window edge, its expected scrubbed form, and
/// the secrets.
fn long_line(json: bool) -> (Vec<u8>, Vec<u8>, Vec<&'static str>) {
    let (head, tail): (&[u8], &[u8]) = if json {
        (
            br#"{"type":"message","id":"e0f1c758","message":{"role":"toolResult","content":[{"type":"text","text":""#,
            b"\"}]}}",
        )
    } else {
        (b"2026-03-14T13:45:02.118Z [exec] ", b" end")
    };
    let total = 9 * MIB + 12345;
    let mut targets = vec![head.len() + 1];
    for k in 1..=9 {
        let edge = k * WINDOW_STEP;
        for d in [-300isize, -17, -1, 0, 1, 5] {
            targets.push(edge.wrapping_add_signed(d));
        }
        for d in [-200isize, -9, 0, 7] {
            targets.push((edge + WINDOW_OVERLAP).wrapping_add_signed(d));
            targets.push((edge - WINDOW_OVERLAP).wrapping_add_signed(d));
        }
    }
    targets.push(MAX_LINE - 3);
    targets.push(total - tail.len() - 200);
    targets.sort();
    targets.retain(|&t| t < total - tail.len() - 150);
    let usable: Vec<&'static str> = SECRETS.to_vec();
    let mut input = head.to_vec();
    let mut expected = head.to_vec();
    let mut planted = Vec::new();
    let filler =
        b"the service is running check logs for deploy v1.2.3 at 8.8.8.8 commit 2f0c7e4f1b2a ";
    for (i, &t) in targets.iter().enumerate() {
        if t < input.len() + 1 {
            continue; // Too close to the previous secret.
        }
        while input.len() + filler.len() < t {
            input.extend_from_slice(filler);
            expected.extend_from_slice(filler);
        }
        while input.len() < t {
            input.push(b' ');
            expected.push(b' ');
        }
        // A separator sits before every secret (the filler or a space ends in one).
        if input.last() != Some(&b' ') {
            input.push(b' ');
            expected.push(b' ');
        }
        let secret = usable[i % usable.len()];
        input.extend_from_slice(secret.as_bytes());
        input.push(b' ');
        expected.extend_from_slice(format!("[REDACTED:{}] ", rule_of(secret)).as_bytes());
        planted.push(secret);
    }
    while input.len() + filler.len() < total - tail.len() {
        input.extend_from_slice(filler);
        expected.extend_from_slice(filler);
    }
    input.extend_from_slice(tail);
    expected.extend_from_slice(tail);
    assert!(input.len() > 2 * MAX_LINE);
    (input, expected, planted)
}

fn scrub_long(s: &Scrubber, input: &[u8], read: usize) -> Vec<u8> {
    let sizes = [read];
    scrub_chunked(s, input, &sizes, 0, usize::MAX)
}

#[test]
fn over_long_json_line_is_scrubbed_the_same_whatever_the_reads() {
    let (line, expected, planted) = long_line(true);
    let s = tag_scrubber();
    let mut input = line.clone();
    input.push(b'\n');
    input.extend_from_slice(b"{\"type\":\"message\",\"text\":\"after AKIAC4JFZJS7VQKBOXZJ\"}\n");
    let a = scrub_long(s, &input, 64 * 1024);
    let b = scrub_long(s, &input, 1_000_003);
    let c = s.scrub_bytes(&input);
    assert!(a == b, "64 KiB and 1000003-byte reads differ");
    assert!(a == c, "64 KiB reads and scrub_bytes differ");
    assert_eq!(newlines(&a), 2);
    let first = &a[..a.iter().position(|&b| b == b'\n').unwrap()];
    for secret in &planted {
        assert!(!find(first, secret.as_bytes()), "{secret} survives");
    }
    assert_same_bytes(first, &expected);
    serde_json::from_slice::<Value>(first).expect("the long line is still JSON");
    assert!(
        a.ends_with(b"{\"type\":\"message\",\"text\":\"after [REDACTED:aws-access-key-id]\"}\n")
    );
}

/// Panics showing the neighbourhood of the first differing byte (the lines are megabytes).
fn assert_same_bytes(actual: &[u8], expected: &[u8]) {
    if actual != expected {
        let at = actual
            .iter()
            .zip(expected)
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "differs at byte {at}:\nactual:   {}\nexpected: {}",
            show(&actual[at.saturating_sub(80)..(at + 120).min(actual.len())]),
            show(&expected[at.saturating_sub(80)..(at + 120).min(expected.len())])
        );
    }
}

#[test]
fn over_long_plain_line_is_scrubbed_the_same_whatever_the_reads() {
    let (line, expected, planted) = long_line(false);
    let s = tag_scrubber();
    // No final newline: the long line ends the input.
    let a = scrub_long(s, &line, 64 * 1024);
    let b = scrub_long(s, &line, 1_000_003);
    assert!(a == b, "64 KiB and 1000003-byte reads differ");
    for secret in &planted {
        assert!(!find(&a, secret.as_bytes()), "{secret} survives");
    }
    assert_same_bytes(&a, &expected);
}

/// A transcript line made long by an inline image, with secrets the normal-size path finds
/// only after decoding the JSON string they sit in.
#[test]
#[ignore = "bug: in lines >= 4 MiB JSON strings are scanned undecoded: escaped/nested secrets survive"]
fn over_long_json_line_decodes_escaped_secrets() {
    let mut image = String::new();
    while image.len() < MAX_LINE {
        image.push_str("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk");
    }
    let texts = [
        (r#"hosts:\n10.20.0.14"#, "10.20.0.14"),
        (r#"{\"password\":\"Tr0ub4dor&3\"}"#, "Tr0ub4dor&3"),
        (
            r#"key sk-\u0061nt-api03-oYmJFw2rBXwwljvEqYIrKi_bDripN9ISEO1HJON_b7KOe7JMwOZYx6IuRCdv0i8fiJgz7YNAyLyE0TE2CrMN6eEDOAbz4AA"#,
            "oYmJFw2rBXwwljvEqYIrKi",
        ),
        (
            r#"db postgres:\/\/app:hunter2-but-longer@db.internal\/app"#,
            "hunter2-but-longer",
        ),
    ];
    let s = tag_scrubber();
    let mut survivors = Vec::new();
    for (text, secret) in texts {
        let short = format!(
            r#"{{"type":"message","message":{{"role":"user","content":[{{"type":"text","text":"{text}"}}]}}}}"#
        );
        assert!(
            !find(&s.scrub_bytes(short.as_bytes()), secret.as_bytes()),
            "short line: {short}"
        );
        let long = format!(
            r#"{{"type":"message","message":{{"role":"user","content":[{{"type":"image","data":"{image}"}},{{"type":"text","text":"{text}"}}]}}}}"#
        );
        let out = s.scrub_bytes(long.as_bytes());
        if find(&out, secret.as_bytes()) {
            survivors.push(text);
        }
    }
    assert!(
        survivors.is_empty(),
        "survive in a 4 MiB line: {survivors:#?}"
    );
}

/// `://` in a JSON string may have its slashes escaped at one nesting level and not at the
/// other: a tool result from an emitter that escapes `/` (PHP, Java) inside a transcript written
/// by one that does not (Node) holds `:\\/\\/`.
#[test]
fn url_credentials_with_slashes_escaped_at_one_level_only() {
    let s = tag_scrubber();
    let line = r#"{"content":"{\"db\":\"postgres:\\/\\/app:hunter2-but-longer@db.internal:5432\\/app\"}"}"#;
    let redacted = r#"{"content":"{\"db\":\"postgres:\\/\\/app:[REDACTED:url-credentials]@db.internal:5432\\/app\"}"}"#;
    // With a newline: a final line without one is scrubbed whatever the triggers say.
    let out = show(&s.scrub_bytes(format!("{line}\n").as_bytes()));
    assert_eq!(out, format!("{redacted}\n"));
}

/// An address at the start of a line of tool output is, in the raw JSON, right after `\n`.
#[test]
fn ipv6_after_json_escape() {
    let s = tag_scrubber();
    for (line, redacted) in [
        (
            r#"{"text":"inet6\nfd7a:115c:a1e0::53"}"#,
            r#"{"text":"inet6\n[REDACTED:private-ipv6]"}"#,
        ),
        (
            r#"{"text":"up\tfe80::1ff:fe23:4567:890a"}"#,
            r#"{"text":"up\t[REDACTED:private-ipv6]"}"#,
        ),
    ] {
        // With a newline: a final line without one is scrubbed whatever the triggers say.
        let out = show(&s.scrub_bytes(format!("{line}\n").as_bytes()));
        assert_eq!(out, format!("{redacted}\n"));
    }
}

/// JSON keys written with escapes are the same keys.
#[test]
fn escaped_key_names_are_recognised() {
    let s = tag_scrubber();
    let out = show(&s.scrub_bytes(br#"{"pass\u0077ord":"hunter2-but-longer"}"#));
    assert_eq!(out, r#"{"pass\u0077ord":"[REDACTED:json-sensitive-key]"}"#);
    let out = show(&s.scrub_bytes(br#"{"api\u004bey":"abc123def456ghi"}"#));
    assert_eq!(out, r#"{"api\u004bey":"[REDACTED:json-sensitive-key]"}"#);
    let structural = r#"{"thinking\u0053ignature":"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"}"#;
    assert_eq!(show(&s.scrub_bytes(structural.as_bytes())), structural);
}

// ---------------------------------------------------------------------------------------------
// The bench corpus

#[test]
fn corpus_secrets_gone_decoys_kept_json_valid() {
    for seed in [1u64, 42] {
        let c = corpus::generate(seed, 2 << 20, corpus::Shape::Mixed, 0.05);
        assert!(!c.secrets.is_empty() && !c.decoys.is_empty());
        let out = tag_scrubber().scrub_bytes(&c.bytes);
        assert_eq!(newlines(&out), newlines(&c.bytes));
        // No planted secret survives, raw or decoded (JSON strings, JSON inside strings).
        let mut secrets = c.secrets.clone();
        secrets.sort();
        secrets.dedup();
        let mut decoded = Vec::new();
        for line in lines(&out) {
            if let Ok(v) = serde_json::from_slice::<Value>(line) {
                let mut strings = Vec::new();
                all_strings(&v, &mut strings);
                for s in strings {
                    decoded.extend_from_slice(s.as_bytes());
                    decoded.push(b'\n');
                }
            }
        }
        for hay in [&out, &decoded] {
            let left = counts(&secrets, hay);
            let survivors: Vec<&String> = secrets
                .iter()
                .zip(&left)
                .filter(|(_, &n)| n > 0)
                .map(|(s, _)| s)
                .collect();
            assert!(
                survivors.is_empty(),
                "seed {seed}: secrets survive: {survivors:?}"
            );
        }
        // Every decoy occurrence survives, except those inside a planted secret
        // (a version `1.2.3` inside the address `10.1.2.3`).
        let mut decoys = c.decoys.clone();
        decoys.sort();
        decoys.dedup();
        let ac = aho_corasick::AhoCorasick::new(&decoys).unwrap();
        let before = counts_in(&ac, &c.bytes);
        let after = counts_in(&ac, &out);
        let mut inside = vec![0; decoys.len()];
        for s in &c.secrets {
            for (n, m) in inside.iter_mut().zip(counts_in(&ac, s.as_bytes())) {
                *n += m;
            }
        }
        for (i, d) in decoys.iter().enumerate() {
            assert!(
                after[i] + inside[i] >= before[i] && after[i] <= before[i],
                "seed {seed}: decoy {d:?}: {} before, {} after ({} inside secrets)",
                before[i],
                after[i],
                inside[i]
            );
        }
        let (li, lo) = (lines(&c.bytes), lines(&out));
        for (n, (a, b)) in li.iter().zip(&lo).enumerate() {
            if let Ok(va) = serde_json::from_slice::<Value>(a) {
                let vb: Value = serde_json::from_slice(b)
                    .unwrap_or_else(|e| panic!("seed {seed} line {n}: not JSON ({e})"));
                if let Err(e) = same_shape(&va, &vb, None, &format!("line {n}")) {
                    panic!("seed {seed}: {e}");
                }
            }
        }
        // Splitting the corpus into odd reads changes nothing.
        let chunked = scrub_chunked(
            tag_scrubber(),
            &c.bytes,
            &[65_537, 4_093, 300_007],
            0,
            1 << 20,
        );
        assert!(chunked == out, "seed {seed}: chunked reads differ");
    }
}

/// Known gap: a mix of escaped and bare slashes within one string (`:\//`) is not searched for
/// at block level, since no emitter writes it; such a line is caught only when something else on
/// it triggers a close look.
#[test]
#[ignore = "known gap: `:\\//` and `:/\\/` (mixed slash escaping in one level) do not trigger url-credentials"]
fn url_credentials_with_mixed_slash_escaping() {
    let s = tag_scrubber();
    for line in [
        r#"{"text":"postgres:\//app:hunter2-but-longer@db.internal/app"}"#,
        r#"{"text":"postgres:/\/app:hunter2-but-longer@db.internal/app"}"#,
    ] {
        let out = show(&s.scrub_bytes(format!("{line}\n").as_bytes()));
        assert!(!out.contains("hunter2"), "{out}");
    }
}

/// Found by the every-rule corpus: a line holding a whole one-line key after a line that
/// opened a PEM block (a bare header) was taken for the end of that block and lost its text
/// up to the end marker.
#[test]
fn a_one_line_key_after_an_open_block_is_not_its_end() {
    let scrubber = Scrubber::builder().build().unwrap();
    let input = "cat key.pem: -----BEGIN OPENSSH PRIVATE KEY-----\n\
                 deploy used key: -----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY----- done\n";
    let out = String::from_utf8(scrubber.scrub_bytes(input.as_bytes())).unwrap();
    let second = out.lines().nth(1).unwrap();
    assert!(second.starts_with("deploy used key: [REDACTED:"), "{out}");
    assert!(second.ends_with("] done"), "{out}");
}
