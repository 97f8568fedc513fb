//! A deterministic generator of OpenClaw-like input, for benches, tests and `rules lint`'s
//! cost measurement.
//!
//! Lines follow the shapes in `openclaw-formats.md`: session transcript events (metadata,
//! user and assistant messages, tool calls, tool results whose text is escaped JSON, the odd
//! inline base64 image), tslog gateway records and plain gateway.log text. Secrets are planted
//! at a chosen rate in the contexts an agent puts them (raw text, JSON values, escaped JSON,
//! env assignments, URLs, CLI flags, headers); decoys that look secret but are not (UUIDs, git
//! SHAs, signatures, versions, public IPs) are everywhere. The generator records every planted
//! secret and decoy so tests can check that the first are gone and the second untouched.
//!
//! The built-in secrets are a dozen common kinds; [`Plants`] swaps in the caller's own, such
//! as every example of every rule.

/// Which kind of lines to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Session transcript events (`agents/<id>/sessions/<id>.jsonl`).
    Session,
    /// tslog gateway log records (`/tmp/openclaw/openclaw-YYYY-MM-DD.log`).
    Tslog,
    /// Plain text (`~/.openclaw/logs/gateway.log`).
    Plain,
    /// A mix of the three, mostly session lines.
    Mixed,
}

/// Text the caller wants planted instead of the built-in secrets and decoys.
#[derive(Debug, Clone, Default)]
pub struct Plants {
    /// Bare secrets, each dropped into one of the generator's contexts (env assignment,
    /// header, URL, CLI flag, prose).
    pub secrets: Vec<String>,
    /// Fragments that carry their own context (`DB_PASSWORD='…'`), with the secrets in them.
    pub fragments: Vec<(String, Vec<String>)>,
    /// Text that must come out unchanged, planted as is.
    pub decoys: Vec<String>,
}

/// The generated input and what was planted in it.
pub struct Corpus {
    /// The lines, each ending in `\n`.
    pub bytes: Vec<u8>,
    /// Secrets planted (each must be gone after scrubbing).
    pub secrets: Vec<String>,
    /// Secret-looking strings that are not secrets (each must survive scrubbing).
    pub decoys: Vec<String>,
}

/// A small, fast, seedable PRNG (SplitMix64): the corpus depends on the seed alone.
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole output depends on `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// `len` characters drawn from `alphabet`.
    pub fn string(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())] as char)
            .collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEX: &[u8] = b"0123456789abcdef";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A GitHub-format token (`ghp_`, `npm_`): 30 random characters and their checksum.
fn checksummed(rng: &mut Rng, prefix: &str) -> String {
    let payload = rng.string(ALNUM, 30);
    let check = crate::validate::github_checksum_of(payload.as_bytes());
    format!("{prefix}{payload}{}", String::from_utf8_lossy(&check))
}

/// A fresh secret of a random kind.
fn secret(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => format!("sk-proj-{}", rng.string(URLSAFE, 48)),
        1 => format!("sk-ant-api03-{}AA", rng.string(URLSAFE, 93)),
        2 => format!(
            "AKIA{}",
            rng.string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        ),
        3 => checksummed(rng, "ghp_"),
        4 => format!(
            "xoxb-{}-{}-{}",
            rng.string(b"0123456789", 12),
            rng.string(b"0123456789", 13),
            rng.string(ALNUM, 24)
        ),
        5 => format!("AIza{}", rng.string(URLSAFE, 35)),
        6 => format!("gsk_{}", rng.string(ALNUM, 52)),
        7 => format!(
            "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
            rng.string(URLSAFE, 40),
            rng.string(URLSAFE, 43)
        ),
        8 => format!(
            "10.{}.{}.{}",
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        ),
        9 => format!("192.168.{}.{}", rng.below(256), 1 + rng.below(254)),
        10 => format!(
            "{}:AA{}",
            100_000_000 + rng.below(899_999_999),
            rng.string(URLSAFE, 33)
        ),
        _ => checksummed(rng, "npm_"),
    }
}

/// `s` in one of the contexts an agent puts secrets in.
fn in_context(rng: &mut Rng, s: &str) -> String {
    match rng.below(7) {
        0 => format!("export SERVICE_TOKEN={s}"),
        1 => format!("curl -H \"Authorization: Bearer {s}\" https://api.example.com/v1/me"),
        2 => format!("connecting to {s} now"),
        3 => format!("tool --api-key {s} --verbose"),
        4 => format!("found {s} in .env"),
        5 => format!("https://api.example.com/q?x=1&v={s}"),
        _ => format!("value: {s}"),
    }
}

/// A secret-looking string that no rule may touch, with the text around it.
fn decoy(rng: &mut Rng) -> (String, String) {
    let d = match rng.below(6) {
        0 => rng.string(HEX, 40),
        1 => format!(
            "{}-{}-4{}-a{}-{}",
            rng.string(HEX, 8),
            rng.string(HEX, 4),
            rng.string(HEX, 3),
            rng.string(HEX, 3),
            rng.string(HEX, 12)
        ),
        2 => format!("{}.{}.{}", rng.below(30), rng.below(30), rng.below(30)),
        3 => format!(
            "{}.{}.{}.{}",
            11 + rng.below(80),
            rng.below(256),
            rng.below(256),
            rng.below(256)
        ),
        4 => format!("sha256:{}", rng.string(HEX, 64)),
        _ => format!("build {}", rng.string(HEX, 7)),
    };
    let context = match rng.below(3) {
        0 => format!("commit {d} merged"),
        1 => format!("resolved to {d}"),
        _ => format!("id {d}"),
    };
    (context, d)
}

const WORDS: &[&str] = &[
    "the", "service", "is", "running", "check", "logs", "for", "deploy", "staging", "build",
    "error", "retry", "config", "file", "updated", "user", "asked", "to", "restart", "gateway",
    "agent", "session", "tool", "result", "ok", "done", "with", "and", "then", "next", "step",
];

fn prose(rng: &mut Rng, words: usize) -> String {
    let mut s = String::new();
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

/// JSON-escapes `s` (as it would sit inside a JSON string), escaping `/` like some emitters.
fn esc(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '/' if slash => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out
}

fn id(rng: &mut Rng) -> String {
    rng.string(HEX, 8)
}

fn timestamp(n: u64) -> String {
    let s = n % 86_400;
    format!(
        "2026-03-11T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        n % 1000
    )
}

struct Gen<'p> {
    rng: Rng,
    density: f64,
    line: u64,
    plants: &'p Plants,
    planted: usize,
    secrets: Vec<String>,
    decoys: Vec<String>,
}

impl Gen<'_> {
    /// Prose with, often, one decoy and, at the configured rate, one planted secret. The
    /// secret comes last and prose separates the two: a secret's context (`Bearer`, an open
    /// PEM block) may run to the end of its text, and must not reach into the decoy.
    fn text(&mut self, words: usize) -> String {
        let mut t = prose(&mut self.rng, words);
        if self.rng.chance(0.3) {
            // A sentence of its own: prose words (`config`) must not become its context.
            t.push_str(" . ");
            if self.plants.decoys.is_empty() {
                let (ctx, d) = decoy(&mut self.rng);
                t.push_str(&ctx);
                self.decoys.push(d);
            } else {
                let d = self.plants.decoys[self.rng.below(self.plants.decoys.len())].clone();
                t.push_str(&d);
                self.decoys.push(d);
            }
            t.push_str(" . ");
            t.push_str(&prose(&mut self.rng, 3));
        }
        if self.rng.chance(self.density) {
            t.push(' ');
            let p = self.plants;
            let n = self.planted;
            self.planted += 1;
            let own = p.secrets.len() + p.fragments.len();
            if own == 0 {
                let s = secret(&mut self.rng);
                t.push_str(&in_context(&mut self.rng, &s));
                self.secrets.push(s);
            } else if n % own < p.secrets.len() {
                let s = &p.secrets[n % own];
                t.push_str(&in_context(&mut self.rng, s));
                self.secrets.push(s.clone());
            } else {
                let (fragment, secrets) = &p.fragments[n % own - p.secrets.len()];
                t.push_str(fragment);
                self.secrets.extend(secrets.iter().cloned());
            }
        }
        t
    }

    fn session_line(&mut self) -> String {
        self.line += 1;
        let ts = timestamp(self.line * 7919);
        let (me, parent) = (id(&mut self.rng), id(&mut self.rng));
        match self.rng.below(10) {
            0 => format!(
                r#"{{"type":"model_change","id":"{me}","parentId":"{parent}","timestamp":"{ts}","provider":"anthropic","modelId":"claude-opus-4-5"}}"#
            ),
            1 | 2 => {
                let text = esc(&self.text(12), false);
                format!(
                    r#"{{"type":"message","id":"{me}","parentId":"{parent}","timestamp":"{ts}","message":{{"role":"user","content":[{{"type":"text","text":"{text}"}}],"timestamp":1773217921120}}}}"#
                )
            }
            3..=5 => {
                let thinking = esc(&self.text(40), false);
                let command = esc(&self.text(10), true);
                let sig = self.rng.string(HEX, 64);
                let call = self.rng.string(b"abcdefghijklmnopqrstuvwxyz0123456789", 12);
                format!(
                    r#"{{"type":"message","id":"{me}","parentId":"{parent}","timestamp":"{ts}","message":{{"role":"assistant","content":[{{"type":"thinking","thinking":"{thinking}","thinkingSignature":"{sig}"}},{{"type":"toolCall","id":"call_{call}_1","name":"exec","arguments":{{"command":"{command}"}}}}],"api":"anthropic-messages","provider":"anthropic","model":"claude-opus-4-5","usage":{{"input":28,"output":167,"totalTokens":16647}},"stopReason":"toolUse","timestamp":1773217929471}}}}"#
                )
            }
            6 if self.rng.chance(0.02) => {
                let len = 200_000 + self.rng.below(400_000);
                let data = self.rng.string(B64, len);
                format!(
                    r#"{{"type":"message","id":"{me}","parentId":"{parent}","timestamp":"{ts}","message":{{"role":"user","content":[{{"type":"image","data":"{data}","mimeType":"image/png"}}]}}}}"#
                )
            }
            _ => {
                // A tool result whose text is JSON: escaped once more inside the line.
                let mut inner = String::from("{\"status\":\"ok\",\"items\":[");
                for i in 0..(2 + self.rng.below(20)) {
                    if i > 0 {
                        inner.push(',');
                    }
                    let t = esc(&self.text(8), true);
                    inner.push_str(&format!(
                        "{{\"n\":{i},\"path\":\"/srv/app/{i}.log\",\"line\":\"{t}\"}}"
                    ));
                }
                inner.push_str("]}");
                let text = esc(&inner, false);
                let call = self.rng.string(b"abcdefghijklmnopqrstuvwxyz0123456789", 12);
                format!(
                    r#"{{"type":"message","id":"{me}","parentId":"{parent}","timestamp":"{ts}","message":{{"role":"toolResult","toolCallId":"call_{call}_1","toolName":"exec","content":[{{"type":"text","text":"{text}"}}],"details":{{"status":"completed","exitCode":0,"durationMs":47}},"isError":false,"timestamp":1773217929542}}}}"#
                )
            }
        }
    }

    fn tslog_line(&mut self) -> String {
        self.line += 1;
        let ts = timestamp(self.line * 7919);
        let msg = esc(&self.text(14), false);
        let sub = self
            .rng
            .pick(&["gateway/canvas", "gateway/ws", "agent/exec", "telegram"]);
        format!(
            r#"{{"0":"{{\"subsystem\":\"{sub}\"}}","1":"{msg}","_meta":{{"runtime":"node","runtimeVersion":"24.14.0","hostname":"5cf8d6625e09","name":"{{\"subsystem\":\"{sub}\"}}","parentNames":["openclaw"],"date":"{ts}","logLevelId":3,"logLevelName":"INFO"}},"time":"{ts}"}}"#
        )
    }

    fn plain_line(&mut self) -> String {
        self.line += 1;
        let ts = timestamp(self.line * 7919);
        let text = self.text(14);
        format!("{ts} [gateway] {text}")
    }
}

/// Generates about `target_len` bytes of `shape` lines in which a fraction `density` of the
/// text fields carries a planted secret (0.0: none; 1.0: every one).
pub fn generate(seed: u64, target_len: usize, shape: Shape, density: f64) -> Corpus {
    generate_with(seed, target_len, shape, density, &Plants::default())
}

/// [`generate`] with the caller's secrets and decoys planted, in turn, instead of the
/// built-in kinds (each kind of `plants` left empty keeps the built-in one).
pub fn generate_with(
    seed: u64,
    target_len: usize,
    shape: Shape,
    density: f64,
    plants: &Plants,
) -> Corpus {
    let mut g = Gen {
        rng: Rng::new(seed),
        density,
        line: 0,
        plants,
        planted: 0,
        secrets: Vec::new(),
        decoys: Vec::new(),
    };
    let mut bytes = Vec::with_capacity(target_len + 4096);
    while bytes.len() < target_len {
        let kind = match shape {
            Shape::Mixed => match g.rng.below(10) {
                0 | 1 => Shape::Tslog,
                2 => Shape::Plain,
                _ => Shape::Session,
            },
            s => s,
        };
        let line = match kind {
            Shape::Tslog => g.tslog_line(),
            Shape::Plain => g.plain_line(),
            _ => g.session_line(),
        };
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    Corpus {
        bytes,
        secrets: g.secrets,
        decoys: g.decoys,
    }
}
