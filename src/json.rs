//! Just enough JSON to scrub inside strings without re-serialising anything.
//!
//! The tokenizer finds strings (keys included) and the key each value belongs to; the decoder
//! turns a string's escapes into text with a map back to the raw bytes, so a span found in
//! decoded text becomes an edit of whole escape sequences in the raw line. Every byte outside an edit stays as it was:
//! key order, spacing, number formats and the emitter's escaping style survive.

/// Nesting beyond this is treated as not-JSON (the line is scrubbed as plain text).
const MAX_NESTING: usize = 512;

/// The line or string is not JSON this scanner accepts; scrub it as plain text instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotJson;

/// A string, value or key: its raw contents are `text[start..end]` (between the quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StringValue {
    pub start: usize,
    pub end: usize,
    /// Raw contents of the nearest enclosing key (an array's values inherit its key); `None`
    /// for a key itself.
    pub key: Option<(usize, usize)>,
    /// Whether this string is an object key.
    pub is_key: bool,
}

/// True when the first non-blank byte opens an object, an array or a string (a JSONL line
/// can be a bare string, whose escapes must be decoded as any other's).
pub(crate) fn looks_like_json(text: &[u8]) -> bool {
    matches!(
        text.iter().find(|b| !is_blank(**b)),
        Some(b'{' | b'[' | b'"')
    )
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A key or `}` (right after `{`).
    FirstKey,
    Key,
    Colon,
    Value,
    /// A value or `]` (right after `[`).
    FirstValue,
    CommaOrEnd,
}

struct Frame {
    object: bool,
    key: Option<(usize, usize)>,
    expect: Expect,
}

/// Scans `text` as one JSON value (surrounding blanks allowed) and appends its strings, keys
/// included, in order.
/// Fails, appending nothing usable, on anything that is not well-formed enough to edit safely.
/// `strict` also fails on strings JSON does not allow (see [`string_end`]): for a string
/// inside a string, which is scanned as text unless it is JSON, as a number must be.
pub(crate) fn tokenize(
    text: &[u8],
    out: &mut Vec<StringValue>,
    strict: bool,
) -> Result<(), NotJson> {
    out.clear();
    let mut stack: Vec<Frame> = Vec::new();
    // The top level behaves like a one-element array with no key.
    let mut top_done = false;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if is_blank(b) {
            i += 1;
            continue;
        }
        if top_done {
            return Err(NotJson);
        }
        let (expect, key) = match stack.last() {
            Some(f) => (f.expect, f.key),
            None => (Expect::Value, None),
        };
        match (expect, b) {
            (Expect::FirstKey | Expect::Key, b'"') => {
                let end = string_end(text, i + 1, strict)?;
                // A key is text too (a map keyed by tokens or hosts): scanned as a value
                // without a key of its own.
                out.push(StringValue {
                    start: i + 1,
                    end,
                    key: None,
                    is_key: true,
                });
                let top = stack.last_mut().ok_or(NotJson)?;
                top.key = Some((i + 1, end));
                top.expect = Expect::Colon;
                i = end + 1;
            }
            (Expect::FirstKey, b'}') | (Expect::FirstValue, b']') => {
                stack.pop();
                top_done = finish_value(&mut stack);
                i += 1;
            }
            (Expect::Colon, b':') => {
                if let Some(top) = stack.last_mut() {
                    top.expect = Expect::Value;
                }
                i += 1;
            }
            (Expect::Value | Expect::FirstValue, _) => match b {
                b'"' => {
                    let end = string_end(text, i + 1, strict)?;
                    out.push(StringValue {
                        start: i + 1,
                        end,
                        key,
                        is_key: false,
                    });
                    i = end + 1;
                    top_done = finish_value(&mut stack);
                }
                b'{' | b'[' => {
                    if stack.len() >= MAX_NESTING {
                        return Err(NotJson);
                    }
                    let object = b == b'{';
                    let expect = if object {
                        Expect::FirstKey
                    } else {
                        Expect::FirstValue
                    };
                    stack.push(Frame {
                        object,
                        key,
                        expect,
                    });
                    i += 1;
                }
                _ => {
                    let len = text[i..]
                        .iter()
                        .position(|&c| {
                            !(c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-'))
                        })
                        .unwrap_or(text.len() - i);
                    let word = &text[i..i + len];
                    if !(is_number(word) || matches!(word, b"true" | b"false" | b"null")) {
                        return Err(NotJson);
                    }
                    i += len;
                    top_done = finish_value(&mut stack);
                }
            },
            (Expect::CommaOrEnd, b',') => {
                if let Some(top) = stack.last_mut() {
                    top.expect = if top.object {
                        Expect::Key
                    } else {
                        Expect::Value
                    };
                }
                i += 1;
            }
            (Expect::CommaOrEnd, b'}' | b']') => {
                let object = stack.last().is_some_and(|f| f.object);
                if object != (b == b'}') {
                    return Err(NotJson);
                }
                stack.pop();
                top_done = finish_value(&mut stack);
                i += 1;
            }
            _ => return Err(NotJson),
        }
    }
    if top_done {
        Ok(())
    } else {
        Err(NotJson)
    }
}

/// Whether `word` is a JSON number, strictly: a text that only looks like one (`10.20.0.14`
/// in `"[10.20.0.14]"`) is not JSON, so the string holding it is scanned as text.
fn is_number(word: &[u8]) -> bool {
    let digits = |i: usize| word[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = usize::from(word.first() == Some(&b'-'));
    match digits(i) {
        0 => return false,
        n if n > 1 && word[i] == b'0' => return false,
        n => i += n,
    }
    if word.get(i) == Some(&b'.') {
        match digits(i + 1) {
            0 => return false,
            n => i += 1 + n,
        }
    }
    if matches!(word.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(word.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(i) {
            0 => return false,
            n => i += n,
        }
    }
    i == word.len()
}

/// Marks the current container as having received a value; true when that was the top level.
fn finish_value(stack: &mut [Frame]) -> bool {
    match stack.last_mut() {
        Some(top) => {
            top.expect = Expect::CommaOrEnd;
            false
        }
        None => true,
    }
}

/// The index of the closing quote of a string whose contents start at `from`. `strict` also
/// fails on what JSON does not allow in a string: a control character, an escape it does not
/// define, half a surrogate pair.
fn string_end(text: &[u8], mut from: usize, strict: bool) -> Result<usize, NotJson> {
    loop {
        let rest = text.get(from..).ok_or(NotJson)?;
        let run = memchr::memchr2(b'"', b'\\', rest).ok_or(NotJson)?;
        // A fold, not `any`: no early exit, so the loop is vectorized.
        if strict
            && rest[..run]
                .iter()
                .fold(false, |control, &b| control | (b < 0x20))
        {
            return Err(NotJson);
        }
        let i = from + run;
        if text[i] == b'"' {
            return Ok(i);
        }
        from = if strict {
            i + escape_len(text, i).ok_or(NotJson)?
        } else {
            i + 2
        };
    }
}

/// The length of the escape at `text[at..]`, when JSON defines it.
fn escape_len(text: &[u8], at: usize) -> Option<usize> {
    let kind = *text.get(at + 1)?;
    if simple_escape(kind).is_some() {
        return Some(2);
    }
    match unicode_escape(text, at)? {
        (Some(_), len) if kind == b'u' => Some(len),
        _ => None,
    }
}

/// The byte a two-character escape `\{kind}` stands for.
fn simple_escape(kind: u8) -> Option<u8> {
    match kind {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'/' => Some(b'/'),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        _ => None,
    }
}

/// The four hex digits after the escape that starts at `raw[at]` (`\uXXXX`, the `u` not
/// checked), and what they stand for: a character, a surrogate pair joined with the `\uXXXX`
/// after it, or `None` for half a pair; with the length of what was read.
fn unicode_escape(raw: &[u8], at: usize) -> Option<(Option<char>, usize)> {
    Some(match hex4(raw, at + 2)? {
        hi @ 0xD800..=0xDBFF => match (raw.get(at + 6..at + 8), hex4(raw, at + 8)) {
            (Some(b"\\u"), Some(lo @ 0xDC00..=0xDFFF)) => (
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)),
                12,
            ),
            _ => (None, 6),
        },
        cp => (char::from_u32(cp), 6),
    })
}

/// Decodes raw string contents into `out`, and, when asked, fills `map` with `map[i]` the raw
/// offset of the escape or byte that produced decoded byte `i`. Malformed escapes are kept as
/// they are. The map is four bytes per byte: a text only searched needs none.
pub(crate) fn decode(raw: &[u8], out: &mut Vec<u8>, mut map: Option<&mut Vec<u32>>) {
    out.clear();
    out.reserve(raw.len());
    if let Some(map) = map.as_deref_mut() {
        map.clear();
        map.reserve(raw.len());
    }
    // `bytes` decoded from the raw bytes at `from`: a run copied as it is (each byte is its
    // own unit), or one escape.
    let mut push = |out: &mut Vec<u8>, bytes: &[u8], from: usize, run: bool| {
        out.extend_from_slice(bytes);
        if let Some(map) = map.as_deref_mut() {
            let from = from as u32;
            if run {
                map.extend(from..from + bytes.len() as u32);
            } else {
                map.extend(std::iter::repeat_n(from, bytes.len()));
            }
        }
    };
    let mut i = 0;
    while i < raw.len() {
        // The run up to the next backslash is copied as it is. Escaped JSON has many short
        // runs, which a plain look finds sooner than `memchr`.
        let rest = &raw[i..];
        let run = match rest.iter().take(16).position(|&b| b == b'\\') {
            Some(k) => k,
            None => memchr::memchr(b'\\', rest).unwrap_or(rest.len()),
        };
        push(out, &rest[..run], i, true);
        i += run;
        if i == raw.len() {
            break;
        }
        if i + 1 == raw.len() {
            push(out, &raw[i..], i, false);
            break;
        }
        if let Some(c) = simple_escape(raw[i + 1]) {
            push(out, &[c], i, false);
            i += 2;
            continue;
        }
        let Some((ch, len)) = unicode_escape(raw, i) else {
            // Not an escape we know: keep the backslash as a literal byte.
            push(out, &raw[i..i + 1], i, false);
            i += 1;
            continue;
        };
        let mut buf = [0u8; 4];
        let s = ch
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .encode_utf8(&mut buf);
        push(out, s.as_bytes(), i, false);
        i += len;
    }
}

/// The four hex digits at `raw[at..]` as a number.
pub(crate) fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| digits.iter().all(u8::is_ascii_hexdigit))
}

/// Raw range covering decoded `[start, end)`, widened to whole escape sequences.
pub(crate) fn raw_range(map: &[u32], raw_len: usize, start: usize, end: usize) -> (usize, usize) {
    let raw_start = map.get(start).map_or(raw_len, |&m| m as usize);
    let raw_end = if end == 0 {
        raw_start
    } else {
        let unit = map[end - 1];
        map[end..]
            .iter()
            .find(|&&m| m != unit)
            .map_or(raw_len, |&m| m as usize)
    };
    (raw_start, raw_end)
}

/// Appends `text` JSON-string-escaped (quotes, backslashes, control characters).
pub(crate) fn escape_into(text: &[u8], out: &mut Vec<u8>) {
    // Runs that need no escape (a whole mask, mostly) are copied at once.
    let mut copied = 0;
    for (i, &b) in text.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
        };
        out.extend_from_slice(&text[copied..i]);
        out.extend_from_slice(escape);
        copied = i + 1;
    }
    out.extend_from_slice(&text[copied..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `b` has to be escaped in a JSON string: a quote, a backslash, a control character.
pub(crate) fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_strict() {
        for ok in [
            "0",
            "-0",
            "12",
            "1.5",
            "-1.25e10",
            "1E+2",
            "2e-3",
            "1.2896516036385836e219",
        ] {
            assert!(is_number(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "10.20.0.14",
            "1.2.3",
            "12ab",
            "-Infinity",
            "0x10",
        ] {
            assert!(!is_number(bad.as_bytes()), "{bad}");
        }
    }

    fn values(text: &str) -> Result<Vec<(String, Option<String>)>, NotJson> {
        let mut out = Vec::new();
        tokenize(text.as_bytes(), &mut out, false)?;
        Ok(out
            .iter()
            .map(|v| {
                (
                    text[v.start..v.end].to_string(),
                    v.key.map(|(s, e)| text[s..e].to_string()),
                )
            })
            .collect())
    }

    #[test]
    fn finds_values_with_keys() {
        let v = values(r#"{"a":"x","b":[1,"y",{"c":"z"}],"d":null,"e":-1.5e3} "#).unwrap();
        let key = |k: &str| (k.to_string(), None);
        assert_eq!(
            v,
            vec![
                key("a"),
                ("x".into(), Some("a".into())),
                key("b"),
                ("y".into(), Some("b".into())),
                key("c"),
                ("z".into(), Some("c".into())),
                key("d"),
                key("e"),
            ]
        );
        assert_eq!(
            values(r#"["q\"uote"]"#).unwrap(),
            vec![(r#"q\"uote"#.into(), None)]
        );
    }

    #[test]
    fn rejects_non_json() {
        for t in [
            r#"{"a":"x""#,
            r#"{"a" "x"}"#,
            r#"{worker} password=x"#,
            r#"{"a":1} trailing"#,
            r#"[1,]x"#,
            r#"{"a":1]"#,
        ] {
            assert_eq!(values(t), Err(NotJson), "{t}");
        }
    }

    #[test]
    fn strict_refuses_strings_json_does_not_allow() {
        let strict = |t: &str| tokenize(t.as_bytes(), &mut Vec::new(), true);
        for t in [
            "[\"a\u{8}b\"]",
            r#"["\x"]"#,
            r#"["\u12"]"#,
            r#"["\ud800"]"#,
            r#"["\udc00\ud800"]"#,
        ] {
            assert_eq!(strict(t), Err(NotJson), "{t}");
            assert!(values(t).is_ok(), "lenient: {t}");
        }
        assert!(strict(r#"["\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]"#).is_ok());
    }

    #[test]
    fn decode_maps_escapes() {
        let raw = br#"a\"b\u0041\ud83d\ude00\/"#;
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode(raw, &mut out, Some(&mut map));
        assert_eq!(out, "a\"bA\u{1F600}/".as_bytes());
        assert_eq!(map, vec![0, 1, 3, 4, 10, 10, 10, 10, 22]);
        // Decoded "bA" is raw `b\u0041`.
        assert_eq!(raw_range(&map, raw.len(), 2, 4), (3, 10));
        assert_eq!(raw_range(&map, raw.len(), 4, 8), (10, 22));
    }

    proptest::proptest! {
        /// Decoding undoes escaping, and the map sends each decoded byte to the escape (or
        /// byte) it came from, in order.
        #[test]
        fn decode_undoes_escape(text in proptest::collection::vec(
            proptest::sample::select(b"ab\\\"/\n\x01\xc3\xa9u0".to_vec()), 0..200,
        )) {
            let mut raw = Vec::new();
            escape_into(&text, &mut raw);
            let (mut out, mut map) = (Vec::new(), Vec::new());
            decode(&raw, &mut out, Some(&mut map));
            proptest::prop_assert_eq!(&out, &text);
            proptest::prop_assert_eq!(map.len(), out.len());
            proptest::prop_assert!(map.windows(2).all(|w| w[0] < w[1]));
            proptest::prop_assert!(map.iter().all(|&m| (m as usize) < raw.len()));
        }
    }

    #[test]
    fn escape_round_trip() {
        let mut out = Vec::new();
        escape_into(b"a\"b\\c\nd\x01", &mut out);
        assert_eq!(out, br#"a\"b\\c\nd\u0001"#);
    }
}
