//! Redaction rules: the TOML rule format, the built-in packs, and the compiled form the engine runs.
//!
//! A rule names the anchor literals that must occur for it to fire, a regex that confirms the
//! secret around an anchor hit, which capture group is the secret, and validators that reject
//! look-alikes. Keeping anchors explicit is what lets one SIMD literal search over the whole
//! buffer stand in for running every regex over every byte.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{hybrid, meta, Input};
use regex_syntax::hir::{Hir, HirKind};
use serde::Deserialize;

use crate::error::Error;
use crate::gitleaks;
use crate::literals;
use crate::validate::Validator;

/// What kind of secret a rule finds; `--only` selects rules by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Vendor API keys with a recognisable prefix.
    Key,
    /// Bearer tokens, JWTs, private keys.
    Token,
    /// Values next to a sensitive name: `PASSWORD=…`, `--token …`, `"apiKey": …`.
    Credential,
    /// Internal IP addresses.
    Network,
    /// Personal data (e-mail addresses, card numbers); opt-in.
    Pii,
    /// The user's own patterns.
    Custom,
}

impl Category {
    /// Every category, in display order.
    pub const ALL: [Category; 6] = [
        Category::Key,
        Category::Token,
        Category::Credential,
        Category::Network,
        Category::Pii,
        Category::Custom,
    ];

    /// The lower-case name used in rule files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Category::Key => "key",
            Category::Token => "token",
            Category::Credential => "credential",
            Category::Network => "network",
            Category::Pii => "pii",
            Category::Custom => "custom",
        }
    }

    /// Parses a category name as written in rule files.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a rule's anchors must match the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorCase {
    /// Byte for byte (vendor prefixes such as `AKIA`, `ghp_`).
    #[default]
    Sensitive,
    /// Ignoring ASCII case (names such as `password`, `Bearer`).
    Insensitive,
}

/// Hand-written hit generators for rules whose secrets have no literal to anchor on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scanner {
    /// A `:` after a 4-hex group starting `fc`, `fd` or `fe8`–`feb` (IPv6 ULA, link-local).
    Ipv6,
    /// A `:` after six or more ASCII digits (Telegram-style `123456:token`).
    DigitsColon,
}

/// Which text an allowlist's regexes look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowTarget {
    /// The secret (the capture group that would be redacted).
    #[default]
    Secret,
    /// The rule's whole match.
    Match,
    /// The line (or, inside JSON, the string value) the match is in.
    Line,
}

/// How an allowlist's kinds of criteria combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowCondition {
    /// Any regex or stopword allows the match.
    #[default]
    Or,
    /// A regex must match and a stopword occur (for each kind the list has).
    And,
}

/// Matches that are not secrets although the rule accepts them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    /// A match of one of these in `target` allows the match.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// What `regexes` look at.
    #[serde(default)]
    pub target: AllowTarget,
    /// A secret containing one of these words (ASCII case ignored) is allowed.
    #[serde(default)]
    pub stopwords: Vec<String>,
    /// How regexes and stopwords combine.
    #[serde(default)]
    pub condition: AllowCondition,
}

/// One input → expected output pair that `rules test` and `cargo test` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Text fed to a scrubber that has only this rule active and the `tag` mask.
    pub input: String,
    /// The exact expected output.
    pub output: String,
}

/// A rule as written in a `patterns/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique, kebab-case; appears in masks (`[REDACTED:<id>]`) and reports.
    pub id: String,
    /// One line for `rules list`.
    pub description: String,
    /// What kind of secret this is.
    pub category: Category,
    /// Confirms a candidate; regex-syntax dialect, ASCII semantics unless `unicode = true`.
    #[serde(default)]
    pub regex: Option<String>,
    /// Literals at least one of which occurs in every match. Derived from the regex when empty.
    #[serde(default)]
    pub anchors: Vec<String>,
    /// How the anchors must match.
    #[serde(default)]
    pub anchor_case: AnchorCase,
    /// A cheap regex that must match right at an anchor hit (JSON-decoded text from the anchor
    /// on) for the line to get a close look. Prunes frequent anchors such as `token` early;
    /// rules whose every match starts with an anchor get this check from their own regex.
    #[serde(default)]
    pub hit_check: Option<String>,
    /// A hand-written hit generator used instead of anchors.
    #[serde(default)]
    pub scanner: Option<Scanner>,
    /// The capture group holding the secret; 0 is the whole match.
    #[serde(default)]
    pub secret_group: usize,
    /// Checks a candidate secret must pass (`ipv4-private`, `entropy >= 3.5`, …).
    #[serde(default, alias = "validator", deserialize_with = "one_or_many")]
    pub validators: Vec<String>,
    /// JSON keys whose whole string value is the secret (case and `_`/`-` ignored; `*apikey`
    /// matches every key ending in `apikey`).
    #[serde(default)]
    pub json_keys: Vec<String>,
    /// For multi-line blocks in plain text: a regex matching the line that closes the block.
    #[serde(default)]
    pub block_end: Option<String>,
    /// Compile the regex with Unicode classes and word boundaries.
    #[serde(default)]
    pub unicode: bool,
    /// Matches to let through although the regex and validators accept them (what gitleaks
    /// calls allowlists); a match any one of them allows is not a secret.
    #[serde(default)]
    pub allowlist: Vec<Allowlist>,
    /// Opt-in rules ship with `enabled = false`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Checked by `rules test`: each input must scrub to its output.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Checked by `rules test`: each must come out unchanged.
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

fn yes() -> bool {
    true
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl RuleSpec {
    /// A custom rule from a bare regex, as `--pattern` and `redactPatterns` give them.
    pub fn custom(id: String, regex: String, unicode: bool) -> RuleSpec {
        RuleSpec {
            description: "user pattern".to_string(),
            id,
            category: Category::Custom,
            regex: Some(regex),
            anchors: Vec::new(),
            anchor_case: AnchorCase::Sensitive,
            hit_check: None,
            scanner: None,
            secret_group: 0,
            validators: Vec::new(),
            json_keys: Vec::new(),
            block_end: None,
            unicode,
            allowlist: Vec::new(),
            enabled: true,
            examples: Vec::new(),
            negative_examples: Vec::new(),
        }
    }
}

/// A named list of rules: one built-in `patterns/*.toml` file or a user `--rules` file.
#[derive(Debug, Clone)]
pub struct RulePack {
    /// The file stem (`keys`) or path the rules came from.
    pub origin: String,
    /// The rules in file order (earlier rules win ties).
    pub rules: Vec<RuleSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// How built-in packs' origins start (`built-in patterns/keys.toml`).
pub(crate) const BUILTIN_ORIGIN: &str = "built-in ";

/// A built-in pack's name and its rules, as `build.rs` wrote them in JSON.
macro_rules! pack {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(env!("OUT_DIR"), "/", $name, ".json")),
        )
    };
}

/// The built-in packs in priority order, embedded at build time.
const BUILTIN: [(&str, &str); 10] = [
    // `ai` before `keys`: its DeepSeek rule is a narrower `sk-` than OpenAI's and wins ties.
    pack!("ai"),
    pack!("keys"),
    pack!("chat"),
    pack!("code"),
    pack!("cloud"),
    pack!("tokens"),
    pack!("credentials"),
    pack!("network"),
    pack!("openclaw"),
    // Personal data, every rule opt-in.
    pack!("pii"),
];

/// A rule file that does not parse: the line at fault and the parser's message with every
/// value from the file elided, since a value in a rule file can be a secret pasted by mistake.
pub(crate) fn toml_error(origin: &str, text: &str, e: &toml::de::Error) -> Error {
    let message = elide_values(e.message());
    let origin = match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            format!("{origin}:{line}")
        }
        None => origin.to_string(),
    };
    Error::rule(origin, message)
}

/// `message` with the text of every `"string"` (escapes included) and `` `name` `` elided. A
/// name the schema gave is kept: one after `expected` (`expected one of `id`, `regex``), and
/// the field of a `missing field` or `duplicate field` message. Any other backticked text
/// comes from the file: an unknown field or variant, a number out of range.
fn elide_values(message: &str) -> String {
    let names_ours = message.starts_with("missing field") || message.starts_with("duplicate field");
    let expected_at = message.find("expected").unwrap_or(message.len());
    let mut out = String::new();
    let mut chars = message.char_indices();
    while let Some((i, c)) = chars.next() {
        out.push(c);
        let close = match c {
            '"' => '"',
            '`' if !names_ours && i < expected_at => '`',
            _ => continue,
        };
        out.push('…');
        while let Some((_, c)) = chars.next() {
            if c == '\\' && close == '"' {
                chars.next();
            } else if c == close {
                out.push(c);
                break;
            }
        }
    }
    out
}

impl RulePack {
    /// Parses a rule file in clawscrub's TOML format.
    pub fn parse(origin: &str, text: &str) -> Result<RulePack, Error> {
        let file: RuleFile = toml::from_str(text).map_err(|e| toml_error(origin, text, &e))?;
        Ok(RulePack {
            origin: origin.to_string(),
            rules: file.rule,
        })
    }

    /// Reads a user rule file: clawscrub's format, or a gitleaks config (`[[rules]]`),
    /// converted. Returns warnings about what a conversion had to leave out; `lenient` skips
    /// gitleaks rules that cannot run instead of failing.
    pub fn load(origin: &str, text: &str, lenient: bool) -> Result<(RulePack, Vec<String>), Error> {
        if gitleaks::is_gitleaks(text) {
            let taken = RulePack::builtin()
                .into_iter()
                .flat_map(|p| p.rules.into_iter().map(|r| r.id))
                .collect();
            return gitleaks::import(origin, text, lenient, &taken);
        }
        Ok((RulePack::parse(origin, text)?, Vec::new()))
    }

    /// The packs shipped in the binary, in priority order.
    pub fn builtin() -> Vec<RulePack> {
        BUILTIN
            .iter()
            .map(|(name, text)| {
                // The packs are checked by `cargo test`; a parse failure here is a build defect.
                let file: RuleFile = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("built-in rule pack {name} is invalid: {e}"));
                RulePack {
                    origin: format!("{BUILTIN_ORIGIN}patterns/{name}.toml"),
                    rules: file.rule,
                }
            })
            .collect()
    }
}

/// A rule ready to run: its regexes compiled, anchors and validators resolved.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub description: String,
    pub category: Category,
    pub regex: Option<Arc<LazyRegex>>,
    pub secret_group: usize,
    pub validators: Vec<Validator>,
    /// Normalised (lower case, no `_`/`-`) sensitive JSON key names.
    pub json_keys: Vec<Vec<u8>>,
    pub block_end: Option<meta::Regex>,
    pub allowlists: Vec<CompiledAllowlist>,
    /// Lower-cased anchors; empty with a scanner, or when no anchor could be derived.
    pub anchors: Vec<Vec<u8>>,
    pub anchor_case: AnchorCase,
    /// Original-case anchors, checked after a case-insensitive hit when `anchor_case` is sensitive.
    pub exact_anchors: Vec<Vec<u8>>,
    pub scanner: Option<Scanner>,
    /// How far from an anchor a match may reach; bounds the confirmation window.
    pub reach: usize,
    /// How a hit of this rule's anchors is checked before its line gets a close look.
    pub hit_check: HitCheck,
    /// The secret group spans the whole match (`\b(…)\b`): no capture search is needed.
    pub group_is_match: bool,
    /// The secret group ends every match: lazy DFAs find it (see [`TrailingGroup`]).
    pub trailing_group: Option<TrailingGroup>,
    /// Every match starts with one of the anchors, so the regex can run anchored at a hit:
    /// it reads no further than the match goes, wherever the hit is in the text.
    pub starts_at_anchor: bool,
}

/// The block-level check of an anchor hit. A check may accept hits that lead to no secret (the
/// line is then looked at for nothing) but must never reject one that does.
#[derive(Debug, Clone)]
pub(crate) enum HitCheck {
    /// Every hit gets a close look.
    None,
    /// This regex must match anchored at the hit, in the JSON-decoded text from the hit on,
    /// within `reach` bytes.
    Regex { regex: Arc<LazyRegex>, reach: usize },
    /// The hit must lie inside a JSON object key whose normalised name is one of `json_keys`.
    JsonKey,
}

/// Hit checks look at most this far: rules reaching further get a close look at every hit
/// unless they state a `hit_check`, which is cut at this length.
pub(crate) const MAX_CHECK_REACH: usize = 2048;

/// Confirmation windows never extend further than this from an anchor hit.
pub(crate) const MAX_REACH: usize = 64 * 1024;

/// Builds a regex with the engine's settings: bytes haystacks. The bounded backtracker stays
/// on: it finds capture groups in the small span the DFAs have already matched several times
/// faster than the PikeVM, and is as linear (it never revisits a state at a position). No
/// prefilter of its own: the regex runs anchored at a hit, or in a text the block-level search
/// already picked, and extracting the literals cost about a tenth of compiling it.
pub(crate) fn compile_regex(pattern: &str, unicode: bool) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(unicode).utf8(false))
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .dfa(false)
                .auto_prefilter(false),
        )
        .build(pattern)
        .map_err(|e| match e.syntax_error() {
            // regex-syntax's Display quotes the pattern, which may hold a literal secret.
            Some(se) => format!("invalid regex: {}", syntax_error_kind(se)),
            None => "regex too large to compile".to_string(),
        })
}

/// An [`Allowlist`] ready to run: its regexes as one multi-pattern regex.
#[derive(Debug)]
pub(crate) struct CompiledAllowlist {
    regexes: Option<meta::Regex>,
    target: AllowTarget,
    stopwords: Vec<Vec<u8>>,
    condition: AllowCondition,
}

impl CompiledAllowlist {
    fn new(list: &Allowlist, unicode: bool) -> Result<CompiledAllowlist, String> {
        if list.regexes.is_empty() && list.stopwords.is_empty() {
            return Err("an allowlist needs `regexes` or `stopwords`".into());
        }
        let regexes = if list.regexes.is_empty() {
            None
        } else {
            for (i, re) in list.regexes.iter().enumerate() {
                parse_regex(re, unicode).map_err(|e| format!("allowlist regex {}: {e}", i + 1))?;
            }
            let regex = meta::Regex::builder()
                .syntax(syntax::Config::new().unicode(unicode).utf8(false))
                .configure(meta::Config::new().utf8_empty(false).dfa(false))
                .build_many(&list.regexes)
                .map_err(|_| "allowlist regexes too large to compile".to_string())?;
            Some(regex)
        };
        Ok(CompiledAllowlist {
            regexes,
            target: list.target,
            stopwords: list
                .stopwords
                .iter()
                .map(|w| w.as_bytes().to_ascii_lowercase())
                .collect(),
            condition: list.condition,
        })
    }

    /// True when the match `m` with secret `secret` (ranges in `text`) is allowed.
    pub fn allows(&self, text: &[u8], m: Range<usize>, secret: Range<usize>) -> bool {
        let regex_hit = self.regexes.as_ref().map(|re| {
            let target = match self.target {
                AllowTarget::Secret => &text[secret.clone()],
                AllowTarget::Match => &text[m],
                AllowTarget::Line => {
                    let start = memchr::memrchr(b'\n', &text[..m.start]).map_or(0, |i| i + 1);
                    let end =
                        memchr::memchr(b'\n', &text[m.end..]).map_or(text.len(), |i| m.end + i);
                    &text[start..end]
                }
            };
            re.is_match(target)
        });
        let stopword_hit = (!self.stopwords.is_empty()).then(|| {
            let secret = text[secret].to_ascii_lowercase();
            self.stopwords
                .iter()
                .any(|w| memchr::memmem::find(&secret, w).is_some())
        });
        let mut hits = [regex_hit, stopword_hit].into_iter().flatten();
        match self.condition {
            AllowCondition::Or => hits.any(|h| h),
            AllowCondition::And => hits.all(|h| h),
        }
    }
}

/// A regex checked at build time and compiled on first use: most rules never fire on a given
/// input, and compiling all of them up front would dominate start-up.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    source: String,
    unicode: bool,
    compiled: OnceLock<meta::Regex>,
    /// A forward lazy DFA of the same regex, built on first use by hit checks
    /// ([`LazyRegex::matches_at`]) and [`LazyRegex::bytes_after`]: `None` when it cannot be
    /// built (a Unicode word boundary).
    dfa: OnceLock<Option<hybrid::dfa::DFA>>,
}

/// The search state a hit check keeps between calls: the lazy DFA's, and the full regex's
/// where the DFA cannot answer.
#[derive(Debug, Default)]
pub(crate) struct CheckCache {
    dfa: Option<hybrid::dfa::Cache>,
    regex: Option<meta::Cache>,
}

impl LazyRegex {
    /// A regex the caller has parsed already; compiled now when `eager`, so that rules from
    /// users report every error before any input is read.
    fn new(source: &str, unicode: bool, eager: bool) -> Result<LazyRegex, String> {
        let lazy = LazyRegex {
            source: source.to_string(),
            unicode,
            compiled: OnceLock::new(),
            dfa: OnceLock::new(),
        };
        if eager {
            let _ = lazy.compiled.set(compile_regex(source, unicode)?);
        }
        Ok(lazy)
    }

    /// The forward lazy DFA, built on first use. It is all a hit check needs: no start
    /// positions, no capture groups, no prefilter. Its NFA has no capture states and no
    /// reverse twin, and it costs a fraction of the [`meta::Regex`] that confirmation uses;
    /// most checks belong to rules that are never confirmed on a given input.
    fn dfa(&self) -> Option<&hybrid::dfa::DFA> {
        self.dfa
            .get_or_init(|| {
                hybrid::dfa::DFA::builder()
                    .syntax(syntax::Config::new().unicode(self.unicode).utf8(false))
                    .thompson(
                        thompson::Config::new()
                            .which_captures(thompson::WhichCaptures::None)
                            .utf8(false),
                    )
                    .build(&self.source)
                    .ok()
            })
            .as_ref()
    }

    /// Whether the regex matches anchored at the start of `input` (`input` is anchored by
    /// the caller). The lazy DFA answers, or the full regex where the DFA cannot be built or
    /// gives up (a Unicode word boundary before a non-ASCII byte).
    pub fn matches_at(&self, input: &Input, cache: &mut CheckCache) -> bool {
        if let Some(dfa) = self.dfa() {
            let dfa_cache = cache.dfa.get_or_insert_with(|| dfa.create_cache());
            if let Ok(found) = dfa.try_search_fwd(dfa_cache, input) {
                return found.is_some();
            }
        }
        let regex = self.get();
        let regex_cache = cache.regex.get_or_insert_with(|| regex.create_cache());
        regex.search_half_with(regex_cache, input).is_some()
    }

    /// Whether [`LazyRegex::get`] has compiled the regex already.
    pub fn is_compiled(&self) -> bool {
        self.compiled.get().is_some()
    }

    pub fn get(&self) -> &meta::Regex {
        self.compiled.get_or_init(|| {
            // Only built-in patterns are compiled lazily, and `cargo test` compiles every one
            // of them (`rules test`), so this cannot fail on any input.
            compile_regex(&self.source, self.unicode)
                .unwrap_or_else(|e| panic!("built-in pattern does not compile: {e}"))
        })
    }
}

/// A set of bytes, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    pub fn union(self, other: ByteSet) -> ByteSet {
        ByteSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }
}

impl LazyRegex {
    /// The bytes that may come right after `prefix` (in any mix of ASCII case) when a match
    /// starts at `prefix`, whatever precedes it: after any other byte there is no match. A
    /// hit check costs a decoded window and a regex search; this set turns most random hits
    /// (`totalTokens` for `token…=`) away for the price of one lookup.
    ///
    /// `None` when that cannot be told: a match may end inside `prefix`, or the lazy DFA walked
    /// to find out gives up (a quit byte, its cache cleared).
    pub fn bytes_after(&self, prefix: &[u8]) -> Option<ByteSet> {
        use regex_automata::util::start;
        let dfa = self.dfa()?;
        let mut cache = dfa.create_cache();
        // Every start state: the match may follow any byte, or none.
        let mut states = Vec::new();
        for behind in std::iter::once(None).chain((0..=255).map(Some)) {
            let config = start::Config::new()
                .anchored(regex_automata::Anchored::Yes)
                .look_behind(behind);
            let state = dfa.start_state(&mut cache, &config).ok()?;
            if !states.contains(&state) {
                states.push(state);
            }
        }
        let mut next_states = Vec::new();
        for &c in prefix {
            next_states.clear();
            for &state in &states {
                for b in [c.to_ascii_lowercase(), c.to_ascii_uppercase()] {
                    let next = dfa.next_state(&mut cache, state, b).ok()?;
                    // Matches show one byte late: this one ended before `b`.
                    if next.is_match() || next.is_quit() || next.is_unknown() {
                        return None;
                    }
                    if !next.is_dead() && !next_states.contains(&next) {
                        next_states.push(next);
                    }
                }
            }
            std::mem::swap(&mut states, &mut next_states);
        }
        // Bytes of one class have the same transitions: one of each is looked at.
        let classes = dfa.byte_classes();
        let mut alive = vec![None; classes.alphabet_len()];
        let mut after = ByteSet::default();
        for b in 0..=255u8 {
            let class = usize::from(classes.get(b));
            let live = match alive[class] {
                Some(live) => live,
                None => {
                    let mut live = false;
                    for &state in &states {
                        live |= !dfa.next_state(&mut cache, state, b).ok()?.is_dead();
                    }
                    alive[class] = Some(live);
                    live
                }
            };
            if live {
                after.insert(b);
            }
        }
        // A cache cleared during the walk invalidates the states it holds: give up.
        (cache.clear_count() == 0).then_some(after)
    }
}

/// The secret of a rule whose capture groups all end its matches: the regex is `P(G)`, or
/// an alternation of such branches, with no other group (zero-width assertions may follow
/// the group) (`key\s*=\s*(\S+)`,
/// `(?:[?&]token=([^&]+)|token:\s*(\S+))`). Given a match the regex's DFAs found, the
/// capture engine costs several times their search on such rules (up to 400 instructions a
/// byte on `sensitive-assignment`, whose bounded repeats make hundreds of NFA states, none of
/// them one-pass), and it only has to say where `P` ends.
///
/// That is where `P`'s leftmost-first match, anchored at the match start, ends, when `G`'s
/// own leftmost-first match from there runs to the match end: the capture engine (a
/// backtracker, in effect) tries `P`'s ways of matching in the same order, and keeps the
/// first one that `G` can complete. A branch whose `P` does not match is one it would leave
/// for the next. Any other outcome (`G` fails there, or ends elsewhere; a DFA gives up) is
/// left to the capture engine.
#[derive(Debug)]
pub(crate) struct TrailingGroup {
    /// Each branch's `P` and `G`, in priority order, until first use.
    branches: Vec<(Hir, Hir)>,
    dfas: OnceLock<Option<Vec<(hybrid::dfa::DFA, hybrid::dfa::DFA)>>>,
}

/// The search states of a [`TrailingGroup`]'s DFAs, one pair per branch.
pub(crate) type TrailingCache = Vec<(hybrid::dfa::Cache, hybrid::dfa::Cache)>;

impl TrailingGroup {
    fn new(hir: &Hir) -> Option<TrailingGroup> {
        let branch = |hir: &Hir| -> Option<(Hir, Hir)> {
            let parts = match hir.kind() {
                HirKind::Concat(parts) => parts.as_slice(),
                _ => std::slice::from_ref(hir),
            };
            // The group may be followed by zero-width assertions (`\b`, `$`): `G` takes them.
            let at = parts
                .iter()
                .rposition(|h| !matches!(h.kind(), HirKind::Look(_)))?;
            let HirKind::Capture(cap) = parts[at].kind() else {
                return None;
            };
            let prefix = Hir::concat(parts[..at].to_vec());
            let mut group = vec![(*cap.sub).clone()];
            group.extend_from_slice(&parts[at + 1..]);
            let group = Hir::concat(group);
            let no_groups = |h: &Hir| h.properties().explicit_captures_len() == 0;
            // A lazy repeat in `P` (`notion[^\n]{0,160}?\b(secret_…)`) makes its own match end
            // before the group does: the capture engine would be asked every time, after
            // the DFAs.
            (no_groups(&prefix) && no_groups(&group) && !has_lazy_repeat(&prefix))
                .then_some((prefix, group))
        };
        let branches = match hir.kind() {
            HirKind::Alternation(alts) => alts.iter().map(branch).collect::<Option<Vec<_>>>()?,
            _ => vec![branch(hir)?],
        };
        Some(TrailingGroup {
            branches,
            dfas: OnceLock::new(),
        })
    }

    /// The DFAs of each branch's `P` and `G`, built on first use; `None` when one cannot be.
    fn dfas(&self) -> Option<&[(hybrid::dfa::DFA, hybrid::dfa::DFA)]> {
        let build = |hir: &Hir| {
            let nfa = thompson::Compiler::new()
                .configure(
                    thompson::Config::new()
                        .which_captures(thompson::WhichCaptures::None)
                        .utf8(false),
                )
                .build_from_hir(hir)
                .ok()?;
            hybrid::dfa::Builder::new().build_from_nfa(nfa).ok()
        };
        self.dfas
            .get_or_init(|| {
                self.branches
                    .iter()
                    .map(|(prefix, group)| Some((build(prefix)?, build(group)?)))
                    .collect()
            })
            .as_deref()
    }

    /// False once the DFAs were found not to build (a Unicode word boundary): the capture
    /// engine must always tell. They are built on the rule's first match, not asked for here.
    pub fn may_be_usable(&self) -> bool {
        self.dfas.get().is_none_or(Option::is_some)
    }

    /// The secret of the rule's match `m` in `haystack`, or `None` when the capture engine
    /// must tell.
    pub fn secret(
        &self,
        haystack: &[u8],
        m: regex_automata::Span,
        cache: &mut TrailingCache,
    ) -> Option<regex_automata::Span> {
        let dfas = self.dfas()?;
        if cache.len() != dfas.len() {
            *cache = dfas
                .iter()
                .map(|(p, g)| (p.create_cache(), g.create_cache()))
                .collect();
        }
        let anchored = |span: Range<usize>| {
            Input::new(haystack)
                .span(span)
                .anchored(regex_automata::Anchored::Yes)
        };
        for ((prefix, group), (prefix_cache, group_cache)) in dfas.iter().zip(cache.iter_mut()) {
            let Some(p) = prefix
                .try_search_fwd(prefix_cache, &anchored(m.start..m.end))
                .ok()?
            else {
                continue;
            };
            let start = p.offset();
            let end = group
                .try_search_fwd(group_cache, &anchored(start..m.end))
                .ok()??
                .offset();
            return (end == m.end).then_some(regex_automata::Span { start, end });
        }
        None
    }
}

/// Whether `hir` holds a non-greedy repetition.
fn has_lazy_repeat(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Repetition(rep) => !rep.greedy || has_lazy_repeat(&rep.sub),
        HirKind::Capture(cap) => has_lazy_repeat(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(has_lazy_repeat),
        _ => false,
    }
}

/// True when the regex is its one capture group, with nothing but zero-width assertions
/// (`\b`, `^`, `$`) around it.
fn whole_match_group(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Capture(_) => true,
        HirKind::Concat(parts) => {
            let zero_width = |h: &Hir| matches!(h.kind(), HirKind::Look(_));
            parts.iter().filter(|h| !zero_width(h)).count() == 1
                && parts
                    .iter()
                    .any(|h| matches!(h.kind(), HirKind::Capture(_)))
        }
        _ => false,
    }
}

/// The upper bounds of the bounded repetitions in `pattern` (`{0,64}`, `{8}`), sorted; none
/// when it does not parse.
pub(crate) fn repetition_bounds(pattern: &str, unicode: bool) -> Vec<u32> {
    fn walk(hir: &Hir, out: &mut Vec<u32>) {
        match hir.kind() {
            HirKind::Repetition(rep) => {
                out.extend(rep.max);
                walk(&rep.sub, out);
            }
            HirKind::Capture(cap) => walk(&cap.sub, out),
            HirKind::Concat(subs) | HirKind::Alternation(subs) => {
                subs.iter().for_each(|h| walk(h, out));
            }
            _ => {}
        }
    }
    let mut bounds = Vec::new();
    if let Ok(hir) = parse_regex(pattern, unicode) {
        walk(&hir, &mut bounds);
    }
    bounds.sort_unstable();
    bounds.dedup();
    bounds
}

/// Parses a pattern with the engine's syntax settings, reporting errors without quoting it.
pub(crate) fn parse_regex(pattern: &str, unicode: bool) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(unicode)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| format!("invalid regex: {}", syntax_error_kind(&e)))
}

fn syntax_error_kind(err: &regex_syntax::Error) -> String {
    match err {
        regex_syntax::Error::Parse(e) => {
            format!("{} (at byte {})", e.kind(), e.span().start.offset)
        }
        regex_syntax::Error::Translate(e) => {
            format!("{} (at byte {})", e.kind(), e.span().start.offset)
        }
        _ => "unsupported syntax".to_string(),
    }
}

/// True when the normalised key `key` is one of `keys`; an entry starting with `*` matches
/// keys ending in the rest (`*apikey` matches `MISTRAL_API_KEY`, as env maps spell them).
pub(crate) fn key_matches(keys: &[Vec<u8>], key: &[u8]) -> bool {
    keys.iter().any(|k| match k.strip_prefix(b"*") {
        Some(suffix) => key.ends_with(suffix),
        None => k == key,
    })
}

/// Normalises a JSON key for comparison: ASCII lower case without `_` and `-`.
pub(crate) fn normalize_key(key: &[u8]) -> Vec<u8> {
    key.iter()
        .filter(|&&b| b != b'_' && b != b'-')
        .map(u8::to_ascii_lowercase)
        .collect()
}

impl Rule {
    /// Compiles a spec; `origin` names the file for error messages. Built-in rules' regexes
    /// are compiled on first use, other rules' at once.
    pub fn compile(spec: &RuleSpec, origin: &str) -> Result<Rule, Error> {
        let eager = !origin.starts_with(BUILTIN_ORIGIN);
        let fail = |msg: String| Error::rule(origin, format!("rule `{}`: {msg}", spec.id));
        if spec.id.is_empty()
            || !spec
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::rule(
                origin,
                "rule id must be non-empty ASCII letters, digits, `-` or `_`",
            ));
        }
        // Parsed once: the parse reports syntax errors and feeds every analysis below.
        let hir = match &spec.regex {
            Some(re) => Some(parse_regex(re, spec.unicode).map_err(fail)?),
            None if spec.json_keys.is_empty() => {
                return Err(fail("needs a `regex` or `json_keys`".into()))
            }
            None => None,
        };
        let regex = spec
            .regex
            .as_deref()
            .map(|re| LazyRegex::new(re, spec.unicode, eager).map(Arc::new))
            .transpose()
            .map_err(fail)?;
        let mut group_is_match = spec.secret_group == 0;
        let mut trailing_group = None;
        if let Some(hir) = &hir {
            let groups = hir.properties().explicit_captures_len();
            if spec.secret_group > groups {
                return Err(fail(format!(
                    "secret_group {} but the regex has {groups} capture group(s)",
                    spec.secret_group
                )));
            }
            group_is_match |= groups == 1 && spec.secret_group == 1 && whole_match_group(hir);
            if !group_is_match {
                trailing_group = TrailingGroup::new(hir);
            }
        }
        let validators = spec
            .validators
            .iter()
            .map(|v| Validator::parse(v).map_err(&fail))
            .collect::<Result<Vec<_>, _>>()?;
        let block_end = match &spec.block_end {
            Some(re) => Some(compile_regex(re, spec.unicode).map_err(fail)?),
            None => None,
        };
        let allowlists = spec
            .allowlist
            .iter()
            .map(|a| CompiledAllowlist::new(a, spec.unicode).map_err(&fail))
            .collect::<Result<Vec<_>, _>>()?;
        let mut anchors: Vec<Vec<u8>> =
            spec.anchors.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut anchor_case = spec.anchor_case;
        if let Some(a) = anchors.iter().find(|a| a.is_empty()) {
            return Err(fail(format!("empty anchor ({} bytes)", a.len())));
        }
        if anchors.is_empty() && spec.scanner.is_none() {
            if let Some(hir) = &hir {
                // Derived anchors are lower-cased and matched case-insensitively: always sound.
                if let Some(found) = literals::required_literals(hir) {
                    anchors = found;
                    anchor_case = AnchorCase::Insensitive;
                }
            }
        }
        let exact_anchors = anchors.clone();
        let anchors: Vec<Vec<u8>> = anchors.iter().map(|a| a.to_ascii_lowercase()).collect();
        let reach = hir
            .as_ref()
            .and_then(|h| h.properties().maximum_len())
            .map_or(MAX_REACH, |n| n.min(MAX_REACH));
        // Every match starts with an anchor: the regex can confirm a hit anchored there, and,
        // when a match is at most `MAX_CHECK_REACH` long, check it at a bounded cost.
        let starts_at_anchor = regex.is_some()
            && spec.scanner.is_none()
            && hir
                .as_ref()
                .is_some_and(|h| literals::starts_with_anchor(h, &exact_anchors, anchor_case));
        let hit_check = if let Some(check) = &spec.hit_check {
            let check_fail = |m: String| fail(format!("hit_check: {m}"));
            let check_hir = parse_regex(check, spec.unicode).map_err(check_fail)?;
            let regex = LazyRegex::new(check, spec.unicode, eager)
                .map(Arc::new)
                .map_err(check_fail)?;
            // An unbounded check is cut at the cap: it sees the first 2 KiB after the hit.
            let reach = check_hir
                .properties()
                .maximum_len()
                .map_or(MAX_CHECK_REACH, |n| n.min(MAX_CHECK_REACH));
            HitCheck::Regex { regex, reach }
        } else if !spec.json_keys.is_empty() && spec.regex.is_none() {
            HitCheck::JsonKey
        } else {
            match (&regex, &hir) {
                (Some(re), Some(_)) if starts_at_anchor && reach <= MAX_CHECK_REACH => {
                    HitCheck::Regex {
                        regex: re.clone(),
                        reach,
                    }
                }
                _ => HitCheck::None,
            }
        };
        Ok(Rule {
            id: spec.id.clone(),
            description: spec.description.clone(),
            category: spec.category,
            regex,
            secret_group: spec.secret_group,
            validators,
            json_keys: spec
                .json_keys
                .iter()
                .map(|k| normalize_key(k.as_bytes()))
                .collect(),
            block_end,
            allowlists,
            anchors,
            anchor_case,
            exact_anchors,
            scanner: spec.scanner,
            reach,
            hit_check,
            group_is_match,
            trailing_group,
            starts_at_anchor,
        })
    }

    /// True when this rule has neither anchors, a scanner nor JSON keys: it must look at every line.
    pub fn is_unanchored(&self) -> bool {
        self.anchors.is_empty() && self.scanner.is_none() && self.regex.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex_automata::{Anchored, Input};

    /// `build.rs` converts the packs to JSON; read as TOML, each says the same, rule for rule.
    #[test]
    fn builtin_packs_are_their_toml_files() {
        for pack in RulePack::builtin() {
            let path = pack.origin.trim_start_matches(BUILTIN_ORIGIN);
            let text = std::fs::read_to_string(path).expect("a built-in pack's file");
            let from_toml = RulePack::parse(&pack.origin, &text).expect("a valid pack");
            assert_eq!(pack.rules.len(), from_toml.rules.len(), "{path}");
            for (json, toml) in pack.rules.iter().zip(&from_toml.rules) {
                assert_eq!(format!("{json:?}"), format!("{toml:?}"), "{path}");
            }
        }
    }

    /// The built-in rules, compiled once for all tests, that `keep` keeps.
    fn builtin_rules(keep: fn(&Rule) -> bool) -> Vec<&'static (RuleSpec, Rule)> {
        static RULES: OnceLock<Vec<(RuleSpec, Rule)>> = OnceLock::new();
        let rules = RULES.get_or_init(|| {
            RulePack::builtin()
                .into_iter()
                .flat_map(|pack| pack.rules)
                .map(|spec| {
                    let rule = Rule::compile(&spec, "test").expect("built-in rules compile");
                    (spec, rule)
                })
                .collect()
        });
        rules.iter().filter(|(_, rule)| keep(rule)).collect()
    }

    /// The built-in rules with a regex hit check.
    fn checked_rules() -> Vec<&'static (RuleSpec, Rule)> {
        builtin_rules(|rule| matches!(rule.hit_check, HitCheck::Regex { .. }))
    }

    /// Whether `regex` matches anchored at `text[at..]`, and if so, whether the byte after
    /// the `len` bytes there is one [`LazyRegex::bytes_after`] admits.
    fn admitted(regex: &LazyRegex, text: &[u8], at: usize, len: usize) -> Result<(), String> {
        let input = Input::new(text)
            .span(at..text.len())
            .anchored(Anchored::Yes);
        let Some(&next) = text.get(at + len) else {
            return Ok(());
        };
        if regex.get().search_half(&input).is_none() {
            return Ok(());
        }
        match regex.bytes_after(&text[at..at + len]) {
            Some(after) if !after.contains(next) => Err(format!(
                "check matches {:?} but {next:?} is not admitted after {:?}",
                String::from_utf8_lossy(&text[at..]),
                String::from_utf8_lossy(&text[at..at + len])
            )),
            _ => Ok(()),
        }
    }

    /// Wherever a hit check matches in its rule's examples, the byte after the anchor is one
    /// the follow set admits.
    #[test]
    fn hit_checks_answer_as_the_full_regex() {
        // The second has no lazy DFA (a Unicode word boundary): the full regex answers.
        for (source, unicode, has_dfa) in [
            (r"sk-[a-z]{3}\b", false, true),
            (r"(?i)sk-\w{3}\b", true, false),
        ] {
            let lazy = LazyRegex::new(source, unicode, false).unwrap();
            assert_eq!(lazy.dfa().is_some(), has_dfa, "{source}");
            let mut cache = CheckCache::default();
            for hay in [
                "sk-abc",
                "sk-abcd",
                "xsk-abc",
                "SK-abé",
                "sk-éab",
                "sk-ab",
                "sk-ab sk-abc",
            ] {
                for at in 0..hay.len() {
                    let input = Input::new(hay)
                        .span(at..hay.len())
                        .anchored(regex_automata::Anchored::Yes)
                        .earliest(true);
                    let full = lazy.get().search_half(&input).is_some();
                    assert_eq!(
                        lazy.matches_at(&input, &mut cache),
                        full,
                        "{source} {hay} {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn bytes_after_admits_what_checks_match_in_the_examples() {
        let mut checked = 0;
        for (spec, rule) in checked_rules() {
            let HitCheck::Regex { regex, .. } = &rule.hit_check else {
                continue;
            };
            let inputs = spec.examples.iter().map(|e| &e.input);
            for text in inputs.chain(&spec.negative_examples) {
                let text = text.as_bytes();
                for anchor in &rule.anchors {
                    for at in 0..text.len() {
                        let here = &text[at..];
                        if here.len() > anchor.len()
                            && here[..anchor.len()].eq_ignore_ascii_case(anchor)
                        {
                            admitted(regex, text, at, anchor.len()).unwrap();
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} anchor occurrences looked at");
    }

    /// The built-in rules whose secret group the DFAs find (see [`TrailingGroup`]).
    fn trailing_group_rules() -> Vec<&'static (RuleSpec, Rule)> {
        builtin_rules(|rule| rule.trailing_group.is_some())
    }

    /// Every match of `rule` in `text`: where the capture engine puts the secret, and where
    /// [`TrailingGroup::secret`] does (`None`: it leaves it to the capture engine).
    fn secrets_both_ways(rule: &Rule, text: &[u8]) -> Vec<(Range<usize>, Option<Range<usize>>)> {
        let regex = rule
            .regex
            .as_ref()
            .expect("a rule with a group has a regex")
            .get();
        let group = rule.trailing_group.as_ref().expect("trailing group");
        let mut cache = TrailingCache::new();
        let mut found = Vec::new();
        for caps in regex.captures_iter(text) {
            let (m, by_captures) = crate::engine::secret_of(rule, &caps).expect("a match");
            let by_dfas = group.secret(text, m.span(), &mut cache);
            found.push((by_captures.range(), by_dfas.map(|g| g.range())));
        }
        found
    }

    #[test]
    fn trailing_groups_are_where_the_capture_engine_puts_them() {
        // The key=value and CLI flag rules, whose capture search cost most, are answered on
        // every example; rules with a lazy repeat before the group have no `TrailingGroup`.
        let always = [
            "sensitive-assignment",
            "sensitive-cli-flag",
            "openclaw-env-assignment",
        ];
        let (mut matches, mut answered) = (0, 0);
        for (spec, rule) in trailing_group_rules() {
            let inputs = spec.examples.iter().map(|e| &e.input);
            for text in inputs.chain(&spec.negative_examples) {
                for (by_captures, by_dfas) in secrets_both_ways(rule, text.as_bytes()) {
                    matches += 1;
                    match by_dfas {
                        Some(by_dfas) => {
                            answered += 1;
                            assert_eq!(by_dfas, by_captures, "{} in {text:?}", spec.id);
                        }
                        None => assert!(!always.contains(&spec.id.as_str()), "{text:?}"),
                    }
                }
            }
        }
        for id in always {
            assert!(
                trailing_group_rules().iter().any(|(spec, _)| spec.id == id),
                "{id}"
            );
        }
        assert!(answered * 4 >= matches * 3, "{answered} of {matches}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(2048)))]

        /// An example of a rule with bytes the rules' regexes care about spliced in: where the
        /// DFAs say the secret is, the capture engine says so too.
        #[test]
        fn trailing_groups_answer_as_the_capture_engine(
            rule in 0usize..1000,
            example in 0usize..100,
            edits in proptest::collection::vec(
                (0usize..200, 0usize..3, "[ =:'\"a-zA-Z0-9_./+&?#@\\-]{1,6}"),
                0..4,
            ),
        ) {
            let rules = trailing_group_rules();
            let (spec, rule) = &rules[rule % rules.len()];
            prop_assume!(!spec.examples.is_empty());
            let mut text = spec.examples[example % spec.examples.len()].input.clone().into_bytes();
            for (at, how, piece) in edits {
                let at = at % (text.len() + 1);
                let end = (at + piece.len()).min(text.len());
                match how {
                    0 => drop(text.splice(at..at, piece.bytes())),
                    1 => drop(text.splice(at..end, piece.bytes())),
                    _ => drop(text.drain(at..end)),
                }
            }
            for (by_captures, by_dfas) in secrets_both_ways(rule, &text) {
                if let Some(by_dfas) = by_dfas {
                    prop_assert_eq!(
                        &by_dfas, &by_captures, "{} in {:?}", spec.id, String::from_utf8_lossy(&text)
                    );
                }
            }
        }

        /// Text made of the keys, separators and quotes the key=value and flag rules read, in
        /// any order: where the DFAs say the secret is, the capture engine says so too.
        #[test]
        fn trailing_groups_answer_as_the_capture_engine_on_keys_and_separators(
            rule in 0usize..1000,
            pieces in proptest::collection::vec(proptest::sample::select(&[
                "token", "KEY", "Password", "secret", "api-key", "--", "-", "=", ":", ":=", " ",
                "  ", "\"", "'", "\\", "&", "?", "_", ".", "x", "Z9", "hunter2", "Bearer ",
                "\n", ",", "/", "@",
            ][..]), 0..24),
        ) {
            let rules = trailing_group_rules();
            let (spec, rule) = &rules[rule % rules.len()];
            let text = pieces.concat();
            for (by_captures, by_dfas) in secrets_both_ways(rule, text.as_bytes()) {
                if let Some(by_dfas) = by_dfas {
                    prop_assert_eq!(&by_dfas, &by_captures, "{} in {:?}", spec.id, text);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(512)))]

        /// An anchor in any case followed by text made of what hit checks look for: wherever
        /// the check matches, the follow set admits the byte after the anchor.
        #[test]
        fn bytes_after_admits_what_checks_match(
            rule in 0usize..1000,
            anchor in 0usize..100,
            flips in any::<u64>(),
            tail in "[ =:'\"a-zA-Z0-9_./+-]{0,40}",
        ) {
            let rules = checked_rules();
            let (_, rule) = &rules[rule % rules.len()];
            let HitCheck::Regex { regex, .. } = &rule.hit_check else { unreachable!() };
            prop_assume!(!rule.anchors.is_empty());
            let anchor = &rule.anchors[anchor % rule.anchors.len()];
            let mut text: Vec<u8> = anchor
                .iter()
                .enumerate()
                .map(|(i, &b)| if flips >> (i % 64) & 1 == 1 { b.to_ascii_uppercase() } else { b })
                .collect();
            text.extend_from_slice(tail.as_bytes());
            prop_assert_eq!(admitted(regex, &text, 0, anchor.len()), Ok(()));
        }
    }
}
