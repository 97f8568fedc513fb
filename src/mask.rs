//! What a redacted secret is replaced with (`--mask`).

use std::ops::Range;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// OpenClaw's ellipsis, U+2026, as UTF-8.
const ELLIPSIS: &str = "\u{2026}";
/// What the OpenClaw style puts between a PEM block's header and footer.
const PEM_BODY_MASK: &str = "\u{2026}redacted\u{2026}";
const PEM_BEGIN: &[u8] = b"-----BEGIN";

/// A replacement style.
#[derive(Clone)]
pub enum Mask {
    /// `[REDACTED:<rule-id>]`: says what was there without saying what it was.
    Tag,
    /// OpenClaw's own style: first 6 + `…` + last 4, `***` under 18 characters, PEM first and
    /// last line. Output then matches what OpenClaw users already see; it keeps 10 characters of
    /// each long secret, so prefer `tag` when the logs leave the machine.
    OpenClaw,
    /// `[REDACTED:<rule-id>:<8 hex of HMAC-SHA256(key, secret)>]`: the same secret gives the
    /// same tag across runs and files, so leaks can be correlated without revealing them.
    /// Keyed, because an unkeyed hash of a short secret falls to a dictionary.
    Hash(Vec<u8>),
    /// A fixed text. A secret that holds it is taken for one already masked, so it must be
    /// text no secret plausibly holds: at least 3 characters, one of them not a letter
    /// or digit or one of `-_+/=.` (`***`, `<redacted>`, `[hidden]`).
    /// [`ScrubberBuilder::build`](crate::ScrubberBuilder::build) refuses any other.
    Fixed(String),
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mask::Tag => f.write_str("Tag"),
            Mask::OpenClaw => f.write_str("OpenClaw"),
            Mask::Hash(_) => f.write_str("Hash(<key>)"),
            Mask::Fixed(t) => write!(f, "Fixed({t:?})"),
        }
    }
}

impl Mask {
    /// Parses `tag`, `openclaw`, `hash` or `fixed=TEXT`; `hash_key` is required for `hash`.
    pub fn parse(spec: &str, hash_key: Option<Vec<u8>>) -> Result<Mask, Error> {
        match spec {
            "tag" => Ok(Mask::Tag),
            "openclaw" => Ok(Mask::OpenClaw),
            "hash" => match hash_key {
                Some(k) if !k.is_empty() => Ok(Mask::Hash(k)),
                _ => Err(Error::Mask(
                    "`hash` needs a key: set CLAWSCRUB_HASH_KEY or pass --hash-key-file \
                     (unkeyed hashes of secrets can be reversed by dictionary)"
                        .into(),
                )),
            },
            _ => match spec.strip_prefix("fixed=") {
                Some(text) => {
                    check_fixed(text)?;
                    Ok(Mask::Fixed(text.into()))
                }
                None => Err(Error::Mask(format!(
                    "unknown mask `{spec}` (expected tag, openclaw, hash or fixed=TEXT)"
                ))),
            },
        }
    }

    /// Whether this mask can be used: a fixed text must pass [`check_fixed`] (the builder
    /// asks, so that a [`Mask::Fixed`] built by hand is held to what `parse` asks).
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            Mask::Fixed(text) => check_fixed(text),
            Mask::Tag | Mask::OpenClaw | Mask::Hash(_) => Ok(()),
        }
    }

    /// Appends the replacement for `secret` found by rule `rule_id` to `out` (unescaped).
    pub(crate) fn render(&self, rule_id: &str, secret: &[u8], out: &mut Vec<u8>) {
        match self {
            Mask::Tag => {
                out.extend_from_slice(TAG_OPEN);
                out.extend_from_slice(rule_id.as_bytes());
                out.extend_from_slice(TAG_CLOSE);
            }
            Mask::Fixed(text) => out.extend_from_slice(text.as_bytes()),
            Mask::Hash(key) => {
                out.extend_from_slice(TAG_OPEN);
                out.extend_from_slice(rule_id.as_bytes());
                out.push(b':');
                out.extend_from_slice(hmac_hex8(key, secret).as_bytes());
                out.extend_from_slice(TAG_CLOSE);
            }
            Mask::OpenClaw => openclaw_style(secret, out),
        }
    }

    /// The mask (a tag naming a rule, or the fixed text) that `text[start..end]` starts
    /// inside of and runs past, if any. A mask brings its own `:`, so a rule can read a secret
    /// there that the mask made up (`https://{[REDACTED:xai-api-key];@host` as user
    /// `{[REDACTED`, password `xai-api-key];`), or one that was there (input that held a tag
    /// before a password): the caller looks again with [`Mask::blank_colons`].
    pub(crate) fn run_past(
        &self,
        text: &[u8],
        start: usize,
        end: usize,
        is_rule_id: impl Fn(&[u8]) -> bool,
    ) -> Option<Range<usize>> {
        let runs_past = |mask: &Range<usize>| start < mask.end && mask.end < end;
        if let Some(tag) = mask_around(text, start, TAG_OPEN, TAG_CLOSE) {
            if runs_past(&tag.mask) && names_rule(tag.inner, &is_rule_id) {
                return Some(tag.mask);
            }
        }
        match self {
            Mask::Fixed(fixed) => mask_around(text, start, fixed.as_bytes(), b"")
                .map(|around| around.mask)
                .filter(runs_past),
            _ => None,
        }
    }

    /// Replaces every `:` in the masks in `text` (tags naming a rule, the fixed text) with
    /// `_`, so that a rule no longer reads one as a separator.
    pub(crate) fn blank_colons(&self, text: &mut [u8], is_rule_id: impl Fn(&[u8]) -> bool) {
        let opens: Vec<usize> = memchr::memmem::find_iter(text, TAG_OPEN).collect();
        for at in opens {
            let around = mask_around(text, at, TAG_OPEN, TAG_CLOSE)
                .filter(|tag| tag.mask.start == at && names_rule(tag.inner, &is_rule_id))
                .map(|tag| tag.mask);
            if let Some(tag) = around {
                blank_colons_in(text, tag);
            }
        }
        if let Mask::Fixed(fixed) = self {
            let fixed = fixed.as_bytes();
            let found: Vec<usize> = memchr::memmem::find_iter(text, fixed).collect();
            for at in found {
                blank_colons_in(text, at..at + fixed.len());
            }
        }
    }

    /// Whether `text[start..end]` is, or is a piece of, a mask this style produced, so that a
    /// second pass leaves it alone. A piece of the kept head or tail of an `openclaw` mask
    /// (`sk-pro…Xy4z`, `fd7a:1…::53`) lies in the same unbroken run of text as its `…`, within
    /// the head's 6 or the tail's 4 characters.
    ///
    /// A user pattern can also match a piece of a mask (`RED[A-Z]+`, or its own id inside
    /// `[REDACTED:…]`): a piece of a tag naming one of the rules (`is_rule_id`), or of the
    /// fixed text, counts as masked too. Only a tag naming a rule: text the input wraps in
    /// `[REDACTED …]` itself is still scanned.
    pub(crate) fn is_masked_in(
        &self,
        text: &[u8],
        start: usize,
        end: usize,
        is_rule_id: impl Fn(&[u8]) -> bool,
    ) -> bool {
        if self.is_masked(&text[start..end]) {
            return true;
        }
        let tag = within(text, start, end, TAG_OPEN, TAG_CLOSE)
            .is_some_and(|inner| names_rule(inner, &is_rule_id));
        if tag {
            return true;
        }
        if let Mask::Fixed(fixed) = self {
            if within(text, start, end, fixed.as_bytes(), b"").is_some() {
                return true;
            }
        }
        if !matches!(self, Mask::OpenClaw) {
            return false;
        }
        if in_masked_pem_header(text, start) {
            return true;
        }
        let ellipsis = ELLIPSIS.as_bytes();
        let unbroken = |run: &[u8]| !run.iter().any(u8::is_ascii_whitespace);
        let after = &text[end..text.len().min(end + 6 * 4)];
        let before = &text[start.saturating_sub(4 * 4)..start];
        memchr::memmem::find(after, ellipsis).is_some_and(|i| unbroken(&after[..i]))
            || memchr::memmem::rfind(before, ellipsis)
                .is_some_and(|i| unbroken(&before[i + ellipsis.len()..]))
    }

    /// True when `secret` already is (or contains) a mask of this style.
    pub(crate) fn is_masked(&self, secret: &[u8]) -> bool {
        let contains = |needle: &[u8]| rfind(secret, needle).is_some();
        contains(b"[REDACTED")
            || match self {
                Mask::OpenClaw => contains(ELLIPSIS.as_bytes()) || secret == b"***",
                Mask::Fixed(text) => contains(text.as_bytes()),
                Mask::Tag | Mask::Hash(_) => false,
            }
    }
}

/// Characters keys and tokens are made of (base64, base64url, hex, JWT), and the letters of
/// any script, which passwords hold: a fixed mask made of these alone is the kind of text a
/// secret holds.
fn key_character(c: char) -> bool {
    c.is_alphanumeric() || "-_+/=.".contains(c)
}

/// Refuses a fixed mask text that a secret plausibly holds. A secret holding the fixed text is
/// taken for one already masked and left as it is ([`Mask::is_masked`]), which is what keeps
/// a second pass from masking masks; with `fixed=X` half of all 40-character keys hold an `X`.
/// So the text must be at least 3 characters long (passwords are asked for a symbol: `*` or
/// `#` alone is in many) and hold a character that keys are not made of: the word `secret`
/// or `REDACTED` is no better than `X`, since passwords hold words.
fn check_fixed(text: &str) -> Result<(), Error> {
    if text.is_empty() || text.contains(['\n', '\r']) {
        return Err(Error::Mask(
            "`fixed=TEXT` needs a non-empty single-line TEXT".into(),
        ));
    }
    if text.chars().count() < 3 || text.chars().all(key_character) {
        return Err(Error::Mask(
            "`fixed=TEXT`: a secret that holds TEXT is taken for one already masked and left \
             in clear, so TEXT must be unlikely inside a secret: at least 3 characters, one of \
             them not a letter, digit or one of - _ + / = . (for example `***`, `<redacted>`, \
             `[hidden]`)"
                .into(),
        ));
    }
    Ok(())
}

/// Replaces every `:` in `text[range]` with `_` (see [`Mask::blank_colons`]).
pub(crate) fn blank_colons_in(text: &mut [u8], range: Range<usize>) {
    for b in &mut text[range] {
        if *b == b':' {
            *b = b'_';
        }
    }
}

/// Whether `inner`, what a tag holds, is a rule id, or one followed by `:` and a hash.
fn names_rule(inner: &[u8], is_rule_id: impl Fn(&[u8]) -> bool) -> bool {
    let id = match inner.len().checked_sub(9) {
        Some(cut) if inner[cut] == b':' && inner[cut + 1..].iter().all(u8::is_ascii_hexdigit) => {
            &inner[..cut]
        }
        _ => inner,
    };
    is_rule_id(inner) || is_rule_id(id)
}

/// How a tag (`tag` and `hash` masks) opens and closes.
const TAG_OPEN: &[u8] = b"[REDACTED:";
const TAG_CLOSE: &[u8] = b"]";

/// Masks are short: a tag is a rule id and a hash long, and a fixed mask is looked for no
/// further.
pub(crate) const LONGEST_MASK: usize = 256;

/// A mask found around a place in the text.
struct MaskAround<'t> {
    /// The whole mask.
    mask: Range<usize>,
    /// What lies between its `open` and `close`.
    inner: &'t [u8],
}

/// The mask that opens with `open` at or before `at` and, with what follows up to the first
/// `close` (nothing, when `close` is empty), ends after `at`.
fn mask_around<'t>(text: &'t [u8], at: usize, open: &[u8], close: &[u8]) -> Option<MaskAround<'t>> {
    let from = at.saturating_sub(LONGEST_MASK);
    let to = text.len().min(at + open.len());
    let opens = rfind(&text[from..to], open)? + from;
    let inner = opens + open.len();
    let (inner_end, mask_end) = if close.is_empty() {
        (inner, inner)
    } else {
        let i = memchr::memmem::find(&text[inner..text.len().min(inner + LONGEST_MASK)], close)?;
        (inner + i, inner + i + close.len())
    };
    (at < mask_end).then(|| MaskAround {
        mask: opens..mask_end,
        inner: &text[inner..inner_end],
    })
}

/// When `text[start..end]` lies within an `open` that starts at or before `start` and, with
/// what follows up to the first `close` (nothing, when `close` is empty), reaches `end`: what
/// lies between `open` and `close`.
fn within<'t>(
    text: &'t [u8],
    start: usize,
    end: usize,
    open: &[u8],
    close: &[u8],
) -> Option<&'t [u8]> {
    let around = mask_around(text, start, open, close)?;
    (end <= around.mask.end).then_some(around.inner)
}

/// The last occurrence of `needle` in `hay`, as `memmem::rfind`. A mask starts with a byte
/// that text rarely holds (`[`), so looking for that byte beats building a `memmem` searcher,
/// which this is asked for a few times per candidate secret.
fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some(&first) = needle.first() else {
        return Some(hay.len());
    };
    memchr::memrchr_iter(first, hay).find(|&i| hay[i..].starts_with(needle))
}

fn hmac_hex8(key: &[u8], secret: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(secret);
    let digest = mac.finalize().into_bytes();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn openclaw_style(secret: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(secret);
    // The header and footer lines, not the lines they start: a key pasted on one line
    // (`-----BEGIN RSA PRIVATE KEY-----MIIE…`) has no line of its own to keep.
    if let Some(header) = pem_marker(text.as_bytes(), PEM_BEGIN) {
        out.extend_from_slice(header);
        out.push(b'\n');
        out.extend_from_slice(PEM_BODY_MASK.as_bytes());
        let rest = text[header.len()..].trim_end();
        let footer = rest
            .rfind("-----END")
            .and_then(|at| pem_marker(&rest.as_bytes()[at..], b"-----END"))
            .filter(|footer| rest.as_bytes().ends_with(footer));
        if let Some(footer) = footer {
            out.push(b'\n');
            out.extend_from_slice(footer);
        }
        return;
    }
    // OpenClaw counts JavaScript string units; characters are the same for ASCII secrets.
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 18 {
        out.extend_from_slice(b"***");
        return;
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(ELLIPSIS.as_bytes());
    out.extend_from_slice(tail.as_bytes());
}

/// Whether `text[at..]` starts in the header of a PEM block the OpenClaw style masked: the
/// header kept, then a line break (a space on a plain line, `\n` in JSON text not decoded)
/// and `…redacted…`. A rule that takes the header for a value (`SSH_KEY=-----BEGIN`) would
/// otherwise mask the mask on a second pass.
fn in_masked_pem_header(text: &[u8], at: usize) -> bool {
    const LONGEST_LABEL: usize = 64;
    let from = at.saturating_sub(PEM_BEGIN.len() + LONGEST_LABEL);
    let to = text.len().min(at + PEM_BEGIN.len());
    let Some(begin) = rfind(&text[from..to], PEM_BEGIN).map(|i| from + i) else {
        return false;
    };
    // The header ends within the label's reach: a longer search could read the rest of the line
    // once per candidate.
    let reach = &text[begin..text.len().min(begin + PEM_BEGIN.len() + LONGEST_LABEL)];
    let Some(header) = pem_marker(reach, PEM_BEGIN) else {
        return false;
    };
    let header_end = begin + header.len();
    let rest = &text[header_end..];
    at < header_end
        && [&b"\n"[..], b" ", b"\\n"].iter().any(|sep| {
            rest.strip_prefix(*sep)
                .is_some_and(|r| r.starts_with(PEM_BODY_MASK.as_bytes()))
        })
}

/// The PEM marker (`-----BEGIN RSA PRIVATE KEY-----`) that `text` starts with, opening with
/// `open`: upper-case words up to the next `-----`.
fn pem_marker<'t>(text: &'t [u8], open: &[u8]) -> Option<&'t [u8]> {
    let label_len = memchr::memmem::find(text.strip_prefix(open)?, b"-----")?;
    let label = &text[open.len()..open.len() + label_len];
    let words = label
        .iter()
        .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ');
    words.then(|| &text[..open.len() + label_len + 5])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Mask, s: &str) -> String {
        let mut out = Vec::new();
        m.render("rule", s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn openclaw_examples_from_its_docs() {
        assert_eq!(
            render(&Mask::OpenClaw, "sk-1234567890abcdef"),
            "sk-123\u{2026}cdef"
        );
        assert_eq!(render(&Mask::OpenClaw, "shortvalue"), "***");
        // A key on one line keeps its markers, not the line.
        let one_line =
            "-----BEGIN RSA PRIVATE KEY-----MIIEpAIBAAKCAQEA3Tz2-----END RSA PRIVATE KEY-----";
        assert_eq!(
            render(&Mask::OpenClaw, one_line),
            "-----BEGIN RSA PRIVATE KEY-----\n\u{2026}redacted\u{2026}\n-----END RSA PRIVATE KEY-----"
        );
        // Not a PEM header: masked as any secret.
        assert_eq!(
            render(&Mask::OpenClaw, "-----BEGINhunter2hunter2"),
            "-----B\u{2026}ter2"
        );
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\nxyz\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            render(&Mask::OpenClaw, pem),
            "-----BEGIN RSA PRIVATE KEY-----\n\u{2026}redacted\u{2026}\n-----END RSA PRIVATE KEY-----"
        );
    }

    #[test]
    fn hash_is_keyed_and_stable() {
        let a = Mask::Hash(b"k1".to_vec());
        let b = Mask::Hash(b"k2".to_vec());
        assert_eq!(render(&a, "hunter2"), render(&a, "hunter2"));
        assert_ne!(render(&a, "hunter2"), render(&b, "hunter2"));
        assert!(render(&a, "hunter2").starts_with("[REDACTED:rule:"));
        assert!(Mask::parse("hash", None).is_err());
    }

    #[test]
    fn pieces_of_masks_are_recognised() {
        let text = b"a [REDACTED:user-pattern-0] b FIXED c [REDACTED:x:0a1b2c3d] [REDACTED:sk-abc]";
        let at = |needle: &[u8]| memchr::memmem::find(text, needle).unwrap();
        let rule = |id: &[u8]| id == b"user-pattern-0" || id == b"x";
        let masked = |m: &Mask, needle: &[u8]| {
            m.is_masked_in(text, at(needle), at(needle) + needle.len(), rule)
        };
        assert!(masked(&Mask::Tag, b"pattern"));
        assert!(masked(&Mask::Tag, b"RED"));
        assert!(masked(&Mask::Tag, b"0a1b"));
        assert!(!masked(&Mask::Tag, b"b FI"));
        // Not a tag this scrubber made: scanned as any text.
        assert!(!masked(&Mask::Tag, b"sk-abc"));
        let fixed = Mask::Fixed("FIXED".into());
        assert!(masked(&fixed, b"IXE"));
        assert!(!masked(&fixed, b"ED c"));
    }

    #[test]
    fn fixed_text_a_secret_could_hold_is_refused() {
        for bad in [
            "",
            "a\nb",
            "X",
            "XXX",
            "xxxx",
            "abc",
            "REDACTED",
            "*",
            "**",
            "\u{2026}",
            "СКРЫТО",
        ] {
            assert!(
                Mask::parse(&format!("fixed={bad}"), None).is_err(),
                "{bad:?}"
            );
            assert!(Mask::Fixed(bad.into()).check().is_err(), "{bad:?}");
        }
        for good in [
            "***",
            "<redacted>",
            "[hidden]",
            "<X>",
            "x x",
            "\u{2588}\u{2588}\u{2588}",
        ] {
            assert!(
                Mask::parse(&format!("fixed={good}"), None).is_ok(),
                "{good:?}"
            );
        }
    }

    #[test]
    fn masks_are_recognised() {
        for m in [
            Mask::Tag,
            Mask::OpenClaw,
            Mask::Hash(b"k".to_vec()),
            Mask::Fixed("<X>".into()),
        ] {
            let out = render(&m, "sk-1234567890abcdefghij");
            assert!(m.is_masked(out.as_bytes()), "{m:?} {out}");
        }
    }
}
