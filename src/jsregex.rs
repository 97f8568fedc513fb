//! Reads OpenClaw `logging.redactPatterns` entries (JavaScript regexes) and
//! rewrites them in the syntax of the `regex-syntax` crate, so that they run on
//! a linear-time engine with the meaning they have in OpenClaw.
//!
//! The output is meant for regex-syntax configured with `unicode(true)` and
//! `utf8(false)` and nothing else: every flag effect is written into the
//! output itself. Constructs that need backtracking (lookaround,
//! backreferences) are refused with [`JsRegexError::Unsupported`]; whatever
//! cannot be reproduced exactly is refused with [`JsRegexError::Syntax`]
//! rather than silently changed. Error texts carry offsets only, never pattern
//! text, because patterns often embed literal secrets.

use std::fmt::Write as _;

/// Flags of a JavaScript regex that change what it matches.
///
/// `g` and `y` are absent on purpose: they steer how matches are iterated,
/// not what a match is, so they are the caller's business.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsFlags {
    /// `i`: letters match regardless of case.
    pub ignore_case: bool,
    /// `m`: `^` and `$` also match at line breaks.
    pub multi_line: bool,
    /// `s`: `.` also matches line terminators.
    pub dot_all: bool,
    /// `u`: strict syntax, `\u{...}` and `\p{...}` escapes.
    pub unicode: bool,
}

/// Why a JavaScript pattern could not be translated.
///
/// Offsets are byte offsets into the string the caller passed in, so a user
/// can locate the problem without the message ever quoting the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsRegexError {
    /// A construct a linear-time engine cannot run (lookahead `(?=`, `(?!`, lookbehind `(?<=`, `(?<!`,
    /// backreference `\1`..`\99`, named backreference `\k<name>`).
    #[error("{construct} at offset {offset} cannot run in linear time")]
    Unsupported {
        /// Human name of the construct, e.g. "lookahead `(?=`".
        construct: &'static str,
        /// Byte offset of the construct's first character.
        offset: usize,
    },
    /// Anything else malformed: unterminated class/group, bad escape, bad flag, empty pattern...
    #[error("{message} at offset {offset}")]
    Syntax {
        /// What is wrong, in words that never include pattern text.
        message: String,
        /// Byte offset of the offending character (0 when regex-syntax refused the output).
        offset: usize,
    },
}

/// Class body of JS `\s`: WhiteSpace and LineTerminator of ECMA-262. Spelled out
/// because Unicode `\s` differs (it has U+0085 and lacks U+FEFF).
const JS_SPACE: &str =
    r"\t-\r\x{20}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
/// Class body of JS `\d` (ASCII only, unlike Unicode `\d`).
const JS_DIGIT: &str = "0-9";
/// Class body of JS `\w` (ASCII only, unlike Unicode `\w`).
const JS_WORD: &str = "0-9A-Za-z_";
/// JS `.` without `s`: anything but a LineTerminator.
const JS_DOT: &str = r"[^\n\r\x{2028}\x{2029}]";
/// Any character at all: JS `[^]` and `.` under `s`.
const ANY: &str = "(?s:.)";
/// A class that never matches: JS `[]`.
const NEVER: &str = r"[^\x{0}-\x{10FFFF}]";
/// Group nesting cap: keeps recursion off the stack limit on hostile input.
const MAX_DEPTH: usize = 128;

/// Parses one `redactPatterns` entry with OpenClaw's rules and translates it.
///
/// OpenClaw treats an entry matching `^/(.+)/([gimsuy]*)$` as a regex literal
/// (body and flags) and anything else as a source compiled with `gi`. A blank
/// entry is skipped by OpenClaw; here it is a [`JsRegexError::Syntax`] so the
/// caller can decide to skip it too.
pub fn translate_redact_pattern(entry: &str) -> Result<String, JsRegexError> {
    if entry.chars().all(is_js_space) {
        return Err(syntax("blank entry (OpenClaw skips it)", 0));
    }
    match split_literal(entry) {
        Some((body, flags)) => {
            let flags = parse_flags(flags, body.len() + 2)?;
            translate_at(body, flags, 1)
        }
        None => translate_at(
            entry,
            JsFlags {
                ignore_case: true,
                ..JsFlags::default()
            },
            0,
        ),
    }
}

/// Translates a JavaScript regex source with the given flags into regex-syntax syntax.
///
/// The result has been parsed by regex-syntax (`unicode(true)`, `utf8(false)`)
/// before being returned, so a caller using that configuration can compile it.
pub fn translate(source: &str, flags: JsFlags) -> Result<String, JsRegexError> {
    translate_at(source, flags, 0)
}

/// Splits `/body/flags` the way OpenClaw's `^\/(.+)\/([gimsuy]*)$` does: the
/// greedy `.+` ends at the last `/`, and `.` excludes line terminators.
fn split_literal(entry: &str) -> Option<(&str, &str)> {
    let rest = entry.strip_prefix('/')?;
    let (body, flags) = rest.rsplit_once('/')?;
    let is_flags = flags.chars().all(|c| "gimsuy".contains(c));
    (is_flags && !body.is_empty() && !body.contains(is_line_terminator)).then_some((body, flags))
}

/// Reads literal flags; a repeated flag makes JS's `RegExp` throw, so OpenClaw drops the entry.
fn parse_flags(flags: &str, base: usize) -> Result<JsFlags, JsRegexError> {
    let mut out = JsFlags::default();
    for (i, c) in flags.char_indices() {
        if flags[..i].contains(c) {
            return Err(syntax("repeated regex flag", base + i));
        }
        match c {
            'i' => out.ignore_case = true,
            'm' => out.multi_line = true,
            's' => out.dot_all = true,
            'u' => out.unicode = true,
            'g' | 'y' => {}
            _ => return Err(syntax("unknown regex flag", base + i)),
        }
    }
    Ok(out)
}

fn translate_at(source: &str, flags: JsFlags, base: usize) -> Result<String, JsRegexError> {
    if source.is_empty() {
        return Err(syntax("empty pattern", base));
    }
    let mut out = String::with_capacity(source.len() + 16);
    if flags.ignore_case {
        out.push_str("(?i)");
    }
    if flags.multi_line {
        // CRLF mode: `$` also matches before `\r`, as JS's does.
        out.push_str("(?mR)");
    }
    // JS reparses with `\k` meaning a named backreference once the pattern has
    // any named group (ECMA-262 annex B); `u` mode always reads it that way.
    let mut parser = Parser::new(source, flags, base, flags.unicode);
    let mut result = parser.parse();
    if parser.saw_named_group && !parser.named_refs {
        parser = Parser::new(source, flags, base, true);
        result = parser.parse();
    }
    result?;
    out.push_str(&parser.out);
    verify(&out)?;
    Ok(out)
}

/// Runs regex-syntax over the output so the caller never gets a pattern it cannot compile.
fn verify(out: &str) -> Result<(), JsRegexError> {
    let parsed = regex_syntax::ParserBuilder::new()
        .unicode(true)
        .utf8(false)
        .build()
        .parse(out);
    parsed.map(drop).map_err(|err| {
        // The kinds' Display texts quote nothing from the pattern (unlike `err`'s own).
        let kind = match &err {
            regex_syntax::Error::Parse(e) => e.kind().to_string(),
            regex_syntax::Error::Translate(e) => e.kind().to_string(),
            _ => String::from("unknown error"),
        };
        JsRegexError::Syntax {
            message: format!("regex-syntax rejected the translation: {kind}"),
            offset: 0,
        }
    })
}

fn syntax(message: &str, offset: usize) -> JsRegexError {
    JsRegexError::Syntax {
        message: message.to_owned(),
        offset,
    }
}

/// ECMA-262 WhiteSpace or LineTerminator (what `\s` and `String.prototype.trim` use).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
    ) || matches!(
        c,
        '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}' | '\u{FEFF}'
    )
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// Appends `c` as a literal that means the same inside and outside a class.
fn push_literal(out: &mut String, c: char) {
    if regex_syntax::is_meta_character(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_control() || (!c.is_ascii() && c.is_whitespace()) {
        let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
    } else {
        out.push(c);
    }
}

/// A predefined character set: `\d`, `\w`, `\s`, `\p{..}` or a negation of one.
#[derive(Clone, Copy)]
struct Set<'a> {
    negated: bool,
    kind: SetKind<'a>,
}

#[derive(Clone, Copy)]
enum SetKind<'a> {
    Digit,
    Word,
    Space,
    Property(&'a str),
}

impl Set<'_> {
    /// Writes the set standalone, or as items of an enclosing class (negations nest).
    fn write(self, out: &mut String, in_class: bool) {
        let body = match self.kind {
            SetKind::Digit => JS_DIGIT,
            SetKind::Word => JS_WORD,
            SetKind::Space => JS_SPACE,
            SetKind::Property(name) => {
                out.push_str(if self.negated { r"\P{" } else { r"\p{" });
                out.push_str(name);
                out.push('}');
                return;
            }
        };
        if in_class && !self.negated {
            out.push_str(body);
        } else {
            out.push_str(if self.negated { "[^" } else { "[" });
            out.push_str(body);
            out.push(']');
        }
    }
}

/// What an escape or a class member stands for. `Char` holds a code point that
/// may still be a lone surrogate; [`Parser::scalar`] rejects those.
#[derive(Clone, Copy)]
enum Atom<'a> {
    Char(u32),
    Set(Set<'a>),
}

/// Human names for backreferences, indexed by the first digit.
const BACKREFS: [&str; 9] = [
    "backreference `\\1`",
    "backreference `\\2`",
    "backreference `\\3`",
    "backreference `\\4`",
    "backreference `\\5`",
    "backreference `\\6`",
    "backreference `\\7`",
    "backreference `\\8`",
    "backreference `\\9`",
];

/// Recursive-descent reader of one JS pattern that writes regex-syntax as it goes.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Offset of `src` inside the string the user gave (for error offsets).
    base: usize,
    unicode: bool,
    /// ES `[+NamedCaptureGroups]`: `\k` starts a named backreference.
    named_refs: bool,
    saw_named_group: bool,
    dot_all: bool,
    names: Vec<&'a str>,
    out: String,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, flags: JsFlags, base: usize, named_refs: bool) -> Self {
        let (unicode, dot_all) = (flags.unicode, flags.dot_all);
        let out = String::with_capacity(src.len() * 2);
        Parser {
            src,
            pos: 0,
            base,
            unicode,
            named_refs,
            saw_named_group: false,
            dot_all,
            names: Vec::new(),
            out,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += c.len_utf8();
        }
        hit
    }

    fn err(&self, message: &str, at: usize) -> JsRegexError {
        syntax(message, self.base + at)
    }

    fn unsupported(&self, construct: &'static str, at: usize) -> JsRegexError {
        JsRegexError::Unsupported {
            construct,
            offset: self.base + at,
        }
    }

    /// Turns a code point into a char; a lone surrogate (only JS strings have
    /// them) can never occur in UTF-8 text, and JS code relying on one means
    /// half of an astral character, which cannot be expressed here.
    fn scalar(&self, cp: u32, at: usize) -> Result<char, JsRegexError> {
        char::from_u32(cp)
            .ok_or_else(|| self.err("lone surrogate escape cannot match UTF-8 text", at))
    }

    fn parse(&mut self) -> Result<(), JsRegexError> {
        self.disjunction(0)?;
        match self.peek() {
            Some(_) => Err(self.err("unmatched `)`", self.pos)),
            None => Ok(()),
        }
    }

    fn disjunction(&mut self, depth: usize) -> Result<(), JsRegexError> {
        loop {
            while !matches!(self.peek(), None | Some('|' | ')')) {
                self.term(depth)?;
            }
            if !self.eat('|') {
                return Ok(());
            }
            self.out.push('|');
        }
    }

    fn term(&mut self, depth: usize) -> Result<(), JsRegexError> {
        let start = self.pos;
        if self.peek() == Some('{') {
            if self.braced_quantifier()?.is_some() {
                return Err(self.err("nothing to repeat", start));
            }
            if self.unicode {
                return Err(self.err("lone quantifier bracket", start));
            }
        }
        let Some(c) = self.bump() else { return Ok(()) };
        match c {
            '^' | '$' => {
                self.out.push(c);
                return Ok(());
            }
            '*' | '+' | '?' => return Err(self.err("nothing to repeat", start)),
            '}' | ']' if self.unicode => return Err(self.err("lone bracket", start)),
            '.' => self.out.push_str(if self.dot_all { ANY } else { JS_DOT }),
            '[' => self.class(start)?,
            '(' => self.group(start, depth)?,
            '\\' if matches!(self.peek(), Some('b' | 'B')) => {
                let word = self.bump() == Some('b');
                self.out
                    .push_str(if word { r"(?-u:\b)" } else { r"(?-u:\B)" });
                return Ok(());
            }
            '\\' => match self.escape(start, false)? {
                Atom::Char(cp) => {
                    let c = self.scalar(cp, start)?;
                    push_literal(&mut self.out, c);
                }
                Atom::Set(set) => set.write(&mut self.out, false),
            },
            _ => push_literal(&mut self.out, c),
        }
        self.quantifier()
    }

    fn quantifier(&mut self) -> Result<(), JsRegexError> {
        match self.peek() {
            Some(c @ ('*' | '+' | '?')) => {
                self.pos += 1;
                self.out.push(c);
            }
            Some('{') => match self.braced_quantifier()? {
                Some(q) => self.out.push_str(&q),
                // Not a quantifier: the next term reads `{` as a literal (or rejects it).
                None => return Ok(()),
            },
            _ => return Ok(()),
        }
        if self.eat('?') {
            self.out.push('?');
        }
        Ok(())
    }

    /// Consumes `{n}`, `{n,}` or `{n,m}` and returns it normalized; leaves the
    /// cursor alone when the text is none of those (JS then reads a literal `{`).
    fn braced_quantifier(&mut self) -> Result<Option<String>, JsRegexError> {
        fn number(bytes: &[u8], i: &mut usize) -> Option<u64> {
            let start = *i;
            let mut n: u64 = 0;
            while let Some(d) = bytes.get(*i).filter(|b| b.is_ascii_digit()) {
                n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                *i += 1;
            }
            (*i > start).then_some(n)
        }
        let bytes = self.rest().as_bytes();
        let mut i = 1;
        let Some(min) = number(bytes, &mut i) else {
            return Ok(None);
        };
        let max = if bytes.get(i) == Some(&b',') {
            i += 1;
            Some(number(bytes, &mut i))
        } else {
            None
        };
        if bytes.get(i) != Some(&b'}') {
            return Ok(None);
        }
        let start = self.pos;
        self.pos += i + 1;
        let count =
            |n: u64| u32::try_from(n).map_err(|_| self.err("repetition count too large", start));
        let min = count(min)?;
        Ok(Some(match max {
            None => format!("{{{min}}}"),
            Some(None) => format!("{{{min},}}"),
            Some(Some(max)) => {
                let max = count(max)?;
                if max < min {
                    return Err(self.err("numbers out of order in quantifier", start));
                }
                format!("{{{min},{max}}}")
            }
        }))
    }

    fn group(&mut self, start: usize, depth: usize) -> Result<(), JsRegexError> {
        if depth >= MAX_DEPTH {
            return Err(self.err("groups nested too deeply", start));
        }
        let outer_dot_all = self.dot_all;
        if self.eat('?') {
            match self.bump() {
                Some(':') => self.out.push_str("(?:"),
                Some('=') => return Err(self.unsupported("lookahead `(?=`", start)),
                Some('!') => return Err(self.unsupported("negative lookahead `(?!`", start)),
                Some('<') if self.eat('=') => {
                    return Err(self.unsupported("lookbehind `(?<=`", start))
                }
                Some('<') if self.eat('!') => {
                    return Err(self.unsupported("negative lookbehind `(?<!`", start))
                }
                Some('<') => self.group_name(start)?,
                _ => {
                    self.pos = start + 2;
                    self.modifiers(start)?;
                }
            }
        } else {
            self.out.push('(');
        }
        self.disjunction(depth + 1)?;
        if !self.eat(')') {
            return Err(self.err("unterminated group", start));
        }
        self.out.push(')');
        self.dot_all = outer_dot_all;
        Ok(())
    }

    /// `(?<name>`: still a capture group; named in the output when regex-syntax
    /// accepts the name and it is not a (JS 2025 alternative-scoped) duplicate.
    fn group_name(&mut self, start: usize) -> Result<(), JsRegexError> {
        let rest = self.rest();
        let Some(len) = rest.find('>') else {
            return Err(self.err("unterminated group name", start));
        };
        let name = &rest[..len];
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
        let id_continue =
            |c: char| c.is_alphanumeric() || matches!(c, '_' | '$' | '\u{200C}' | '\u{200D}');
        if !first_ok || !chars.all(id_continue) {
            return Err(self.err("invalid capture group name", start));
        }
        self.pos += len + 1;
        self.saw_named_group = true;
        let ascii = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ascii && !self.names.contains(&name) {
            self.names.push(name);
            let _ = write!(self.out, "(?P<{name}>");
        } else {
            self.out.push('(');
        }
        Ok(())
    }

    /// ES2025 modifiers `(?ims-ims:`; the cursor is just past `(?`.
    fn modifiers(&mut self, start: usize) -> Result<(), JsRegexError> {
        let (mut on, mut off, mut negative) = (String::new(), String::new(), false);
        loop {
            match self.bump() {
                Some(c @ ('i' | 'm' | 's')) if !on.contains(c) && !off.contains(c) => {
                    let list = if negative { &mut off } else { &mut on };
                    list.push(c);
                }
                Some('-') if !negative => negative = true,
                Some(':') if !(on.is_empty() && off.is_empty()) => break,
                _ => return Err(self.err("invalid group", start)),
            }
        }
        if on.contains('s') || off.contains('s') {
            self.dot_all = on.contains('s');
        }
        self.out.push_str("(?");
        self.out.push_str(&on.replace('m', "mR"));
        if !off.is_empty() {
            self.out.push('-');
            self.out.push_str(&off);
        }
        self.out.push(':');
        Ok(())
    }

    /// A JS class `[...]`; the cursor is just past `[`.
    fn class(&mut self, start: usize) -> Result<(), JsRegexError> {
        let negated = self.eat('^');
        let mut body = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated character class", start)),
                Some(']') => break,
                Some(_) => {}
            }
            let first_at = self.pos;
            let first = self.class_atom()?;
            let is_range = self.peek() == Some('-') && self.peek_second().is_some_and(|c| c != ']');
            if !is_range {
                self.push_class_atom(&mut body, first, first_at)?;
                continue;
            }
            self.pos += 1;
            let second_at = self.pos;
            match (first, self.class_atom()?) {
                (Atom::Char(lo), Atom::Char(hi)) => {
                    if lo > hi {
                        return Err(self.err("range out of order in character class", first_at));
                    }
                    push_literal(&mut body, self.scalar(lo, first_at)?);
                    body.push('-');
                    push_literal(&mut body, self.scalar(hi, second_at)?);
                }
                _ if self.unicode => {
                    return Err(self.err("class escape used as a range bound", first_at))
                }
                // Annex B: with a class escape on either side, `-` is a literal.
                (first, second) => {
                    self.push_class_atom(&mut body, first, first_at)?;
                    body.push_str(r"\-");
                    self.push_class_atom(&mut body, second, second_at)?;
                }
            }
        }
        self.pos += 1;
        match (body.is_empty(), negated) {
            (true, false) => self.out.push_str(NEVER),
            (true, true) => self.out.push_str(ANY),
            (false, _) => {
                self.out.push_str(if negated { "[^" } else { "[" });
                self.out.push_str(&body);
                self.out.push(']');
            }
        }
        Ok(())
    }

    fn class_atom(&mut self) -> Result<Atom<'a>, JsRegexError> {
        let start = self.pos;
        match self.bump() {
            Some('\\') => self.escape(start, true),
            Some(c) => Ok(Atom::Char(u32::from(c))),
            None => Err(self.err("unterminated character class", start)),
        }
    }

    fn push_class_atom(
        &self,
        body: &mut String,
        atom: Atom<'_>,
        at: usize,
    ) -> Result<(), JsRegexError> {
        match atom {
            Atom::Char(cp) => push_literal(body, self.scalar(cp, at)?),
            Atom::Set(set) => set.write(body, true),
        }
        Ok(())
    }

    /// The escape whose `\` is at `start` (cursor just past it), except `\b`/`\B`
    /// outside classes, which the caller handles as assertions.
    fn escape(&mut self, start: usize, in_class: bool) -> Result<Atom<'a>, JsRegexError> {
        let Some(c) = self.bump() else {
            return Err(self.err("`\\` at end of pattern", start));
        };
        let set = |negated, kind| Ok(Atom::Set(Set { negated, kind }));
        let ch = |c: char| Ok(Atom::Char(u32::from(c)));
        match c {
            'd' | 'D' => set(c == 'D', SetKind::Digit),
            'w' | 'W' => set(c == 'W', SetKind::Word),
            's' | 'S' => set(c == 'S', SetKind::Space),
            'p' | 'P' if self.unicode => set(c == 'P', SetKind::Property(self.property(start)?)),
            'b' => ch('\u{8}'),
            't' => ch('\t'),
            'n' => ch('\n'),
            'v' => ch('\u{B}'),
            'f' => ch('\u{C}'),
            'r' => ch('\r'),
            'c' => self.control(start, in_class),
            'x' => match self.hex(2) {
                Some(v) => Ok(Atom::Char(v)),
                None if self.unicode => Err(self.err("invalid `\\x` escape", start)),
                None => ch('x'),
            },
            'u' => self.unicode_escape(start),
            '0' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => ch('\0'),
            '1'..='9' if !in_class => {
                let digits = self.rest().bytes().take_while(u8::is_ascii_digit).count();
                let single = c.to_digit(10).and_then(|d| BACKREFS.get(d as usize - 1));
                let construct = match (digits, single) {
                    (0, Some(name)) => name,
                    _ => "multi-digit backreference `\\NN`",
                };
                Err(self.unsupported(construct, start))
            }
            '0'..='9' if self.unicode => Err(self.err("invalid decimal escape", start)),
            '8' | '9' => ch(c),
            '0'..='7' => Ok(Atom::Char(self.legacy_octal(c))),
            'k' if self.named_refs && !in_class && self.peek() == Some('<') => {
                Err(self.unsupported("named backreference `\\k<name>`", start))
            }
            'k' if self.named_refs => Err(self.err("invalid named reference", start)),
            '-' if in_class => ch('-'),
            // With `u` only syntax characters and `/` may be escaped; without, anything.
            _ if self.unicode
                && !matches!(
                    c,
                    '^' | '$'
                        | '\\'
                        | '.'
                        | '*'
                        | '+'
                        | '?'
                        | '('
                        | ')'
                        | '['
                        | ']'
                        | '{'
                        | '}'
                        | '|'
                        | '/'
                ) =>
            {
                Err(self.err("invalid escape", start))
            }
            _ => ch(c),
        }
    }

    /// `\c` + letter is a control character. Otherwise, without `u`, annex B
    /// reads the `\` as a literal (and, in a class, also accepts a digit or `_`).
    fn control(&mut self, start: usize, in_class: bool) -> Result<Atom<'a>, JsRegexError> {
        match self.peek() {
            Some(l)
                if l.is_ascii_alphabetic()
                    || (in_class && !self.unicode && (l.is_ascii_digit() || l == '_')) =>
            {
                self.pos += 1;
                Ok(Atom::Char(u32::from(l) % 32))
            }
            _ if self.unicode => Err(self.err("invalid `\\c` escape", start)),
            _ => {
                self.pos = start + 1;
                Ok(Atom::Char(u32::from('\\')))
            }
        }
    }

    /// `\uXXXX` (a surrogate pair of two of them is one code point) or, with `u`, `\u{X...}`.
    fn unicode_escape(&mut self, start: usize) -> Result<Atom<'a>, JsRegexError> {
        if self.unicode && self.eat('{') {
            let digits = self
                .rest()
                .bytes()
                .take_while(u8::is_ascii_hexdigit)
                .count();
            let value = u32::from_str_radix(&self.rest()[..digits], 16)
                .ok()
                .filter(|v| *v <= 0x10FFFF);
            self.pos += digits;
            return match value {
                Some(v) if self.eat('}') => Ok(Atom::Char(v)),
                _ => Err(self.err("invalid `\\u{...}` escape", start)),
            };
        }
        let Some(high) = self.hex(4) else {
            return match self.unicode {
                true => Err(self.err("invalid `\\u` escape", start)),
                false => Ok(Atom::Char(u32::from('u'))),
            };
        };
        if (0xD800..0xDC00).contains(&high) && self.rest().starts_with("\\u") {
            let before = self.pos;
            self.pos += 2;
            match self.hex(4) {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    return Ok(Atom::Char(
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00),
                    ));
                }
                _ => self.pos = before,
            }
        }
        Ok(Atom::Char(high))
    }

    /// Consumes exactly `n` hex digits if they are there.
    fn hex(&mut self, n: usize) -> Option<u32> {
        let digits = self
            .rest()
            .get(..n)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
        let value = u32::from_str_radix(digits, 16).ok()?;
        self.pos += n;
        Some(value)
    }

    /// Annex B octal escape (`\0`-`\377`) whose first digit was just read.
    fn legacy_octal(&mut self, first: char) -> u32 {
        let mut value = u32::from(first) - u32::from('0');
        let max_len = if first <= '3' { 3 } else { 2 };
        for _ in 1..max_len {
            match self.peek().and_then(|d| d.to_digit(8)) {
                Some(d) => {
                    value = value * 8 + d;
                    self.pos += 1;
                }
                None => break,
            }
        }
        value
    }

    /// The `{Name}` or `{Name=Value}` after `\p`/`\P` (only with `u`).
    fn property(&mut self, start: usize) -> Result<&'a str, JsRegexError> {
        let rest = self.rest();
        let name = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .map(|(name, _)| name);
        let valid = |n: &&str| {
            let parts: Vec<&str> = n.split('=').collect();
            parts.len() <= 2
                && parts.iter().all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                })
        };
        let name = name
            .filter(valid)
            .ok_or_else(|| self.err("invalid property escape", start))?;
        self.pos += name.len() + 2;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::{meta::Regex, util::syntax::Config};

    fn compile(out: &str) -> Regex {
        let built = Regex::builder()
            .syntax(Config::new().utf8(false))
            .build(out);
        built.unwrap_or_else(|e| panic!("{out:?} does not compile: {e}"))
    }

    /// Translates an entry with OpenClaw's rules and compiles the result.
    fn entry(e: &str) -> Regex {
        compile(&translate_redact_pattern(e).unwrap_or_else(|err| panic!("{e:?}: {err}")))
    }

    fn is_match(e: &str, hay: &str) -> bool {
        entry(e).is_match(hay.as_bytes())
    }

    fn found<'h>(e: &str, hay: &'h str) -> Option<&'h str> {
        entry(e).find(hay.as_bytes()).map(|m| &hay[m.range()])
    }

    fn source(src: &str, flags: JsFlags) -> Regex {
        compile(&translate(src, flags).unwrap_or_else(|err| panic!("{src:?}: {err}")))
    }

    fn unsupported(e: &str) -> (&'static str, usize) {
        match translate_redact_pattern(e) {
            Err(JsRegexError::Unsupported { construct, offset }) => (construct, offset),
            other => panic!("{e:?}: expected Unsupported, got {other:?}"),
        }
    }

    fn syntax_offset(e: &str) -> usize {
        match translate_redact_pattern(e) {
            Err(JsRegexError::Syntax { offset, .. }) => offset,
            other => panic!("{e:?}: expected Syntax, got {other:?}"),
        }
    }

    const U: JsFlags = JsFlags {
        ignore_case: false,
        multi_line: false,
        dot_all: false,
        unicode: true,
    };

    #[test]
    fn openclaw_defaults_match_secrets_and_skip_noise() {
        let cases: [(&str, &str, &str); 14] = [
            (
                r#""(?:apiKey|token|secret|password|passwd|accessToken|refreshToken)"\s*:\s*"([^"]+)""#,
                r#"{"apiKey": "abc123"}"#,
                r#"{"apiKey": "", "name": "abc"}"#,
            ),
            (
                r"Authorization\s*[:=]\s*Bearer\s+([A-Za-z0-9._\-+=]+)",
                "authorization=bearer abc.def-ghi",
                "Authorization: Basic abc",
            ),
            (r"\bBearer\s+([A-Za-z0-9._\-+=]{18,})\b", "Bearer abcdefghijklmnopqrstu", "Bearer short-token"),
            (
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJB\r\n-----END RSA PRIVATE KEY-----",
                "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
            ),
            (r"\b(sk-[A-Za-z0-9_-]{8,})\b", "key=SK-abcdefgh12 end", "task-abcdefghij sk-short"),
            (r"\b(ghp_[A-Za-z0-9]{20,})\b", "ghp_0123456789abcdefghij", "ghp_0123456789abcdefgh"),
            (r"\b(github_pat_[A-Za-z0-9_]{20,})\b", "github_pat_11ABCDEFG0123456789_xy", "github_pat_short"),
            (r"\b(xox[baprs]-[A-Za-z0-9-]{10,})\b", "xoxb-1234567890-abcdef", "xoxz-1234567890-abcdef"),
            (r"\b(xapp-[A-Za-z0-9-]{10,})\b", "xapp-1-A0123456789", "xapp-123"),
            (r"\b(gsk_[A-Za-z0-9_-]{10,})\b", "gsk_abcdefghij", "gsk_abc"),
            (r"\b(AIza[0-9A-Za-z\-_]{20,})\b", "AIzaSyA1234567890abcdefghij", "AIza123456"),
            (r"\b(pplx-[A-Za-z0-9_-]{10,})\b", "pplx-0123456789", "pplx-01"),
            (r"\b(npm_[A-Za-z0-9]{10,})\b", "token npm_0123456789", "npm_01234"),
            (
                r"\b(\d{6,}:[A-Za-z0-9_-]{20,})\b",
                "id 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
                "bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw 12345:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            ),
        ];
        for (pattern, secret, noise) in cases {
            assert!(!is_match(pattern, noise), "{pattern} matched {noise:?}");
            assert!(is_match(pattern, secret), "{pattern} missed {secret:?}");
        }
        // The PEM pattern is lazy: it stops at the first END line.
        let pem = "-----BEGIN PRIVATE KEY-----\na\n-----END PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----";
        assert_eq!(
            found(cases[3].0, pem),
            pem.split_once("\nx").map(|(first, _)| first)
        );
    }

    #[test]
    fn openclaw_defaults_with_backreferences_are_unsupported() {
        let env =
            r#"\b[A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD)\b\s*[=:]\s*(["']?)([^\s"'\\]+)\1"#;
        let cli = r#"--(?:api[-_]?key|token|secret|password|passwd)\s+(["']?)([^\s"']+)\1"#;
        for pattern in [env, cli] {
            assert_eq!(
                unsupported(pattern),
                ("backreference `\\1`", pattern.len() - 2)
            );
        }
    }

    #[test]
    fn literal_form_keeps_its_own_flags() {
        assert!(is_match("/sk-[a-z]+/", "sk-abc"));
        assert!(!is_match("/sk-[a-z]+/", "SK-ABC"));
        assert!(is_match("/sk-[a-z]+/i", "SK-ABC"));
        assert!(is_match("/sk-[a-z]+/gi", "SK-ABC"));
        assert!(
            is_match("sk-[a-z]+", "SK-ABC"),
            "plain sources are case-insensitive"
        );
        // Not literal forms, so plain sources matching themselves (with `gi`).
        assert!(is_match("/x/q", "/X/Q"));
        assert!(is_match("//", "//"));
        assert!(is_match("/a\n/", "/A\n/"));
    }

    #[test]
    fn bad_flags_are_syntax_errors() {
        assert_eq!(syntax_offset("/x/gig"), 5);
        assert_eq!(syntax_offset("/x/ii"), 4);
        assert_eq!(syntax_offset("/ab/uu"), 5);
        assert_eq!(parse_flags("q", 7), Err(syntax("unknown regex flag", 7)));
        assert!(matches!(
            translate_redact_pattern("  \t"),
            Err(JsRegexError::Syntax { .. })
        ));
        assert!(matches!(
            translate("", JsFlags::default()),
            Err(JsRegexError::Syntax { .. })
        ));
    }

    #[test]
    fn dot_and_dot_all() {
        assert!(is_match("/a.b/s", "a\nb"));
        assert!(!is_match("/a.b/", "a\nb"));
        assert!(!is_match("/a.b/", "a\rb"));
        assert!(!is_match("/a.b/", "a\u{2028}b"));
        assert!(is_match("/a.b/", "a\u{e9}b"));
        assert!(is_match("/a(?s:.)b/", "a\nb"));
        assert!(!is_match("/a(?-s:.)b/s", "a\nb"));
        assert!(
            is_match("/(?-s:x).b/s", "x\nb"),
            "modifiers end with their group"
        );
    }

    #[test]
    fn escaped_slashes_in_urls() {
        let url = r"/https:\/\/api\.example\.com\/v1\?key=\w+/";
        assert!(is_match(url, "GET https://api.example.com/v1?key=abc123"));
        assert!(!is_match(url, "GET https://apiXexample.com/v1?key=abc123"));
        assert!(is_match(r"https:\/\/[^\s\/]+", "HTTPS://host/"));
    }

    #[test]
    fn character_escapes() {
        assert!(is_match(r"/\u0041\x42/", "AB"));
        assert!(!is_match(r"/\u0041\x42/", "ab"));
        assert!(is_match(r"/\uD83D\uDE00/", "\u{1F600}"));
        assert!(is_match(r"/[\uD83D\uDE00]/", "\u{1F600}"));
        assert!(is_match(r"/\u{1F600}/u", "\u{1F600}"));
        assert!(
            is_match(r"/\u{41}/", &"u".repeat(41)),
            "without `u`, `\\u{{41}}` is 41 `u`s"
        );
        assert!(is_match(r"/a\0b/", "a\0b"));
        assert!(is_match(r"/\cJ\t\v\f\r/", "\n\t\u{b}\u{c}\r"));
        assert!(
            is_match(r"/\c1/", "\\c1"),
            "annex B: a bare `\\c` is a backslash"
        );
        assert!(is_match(r"/[\c1]/", "\u{11}"));
        assert_eq!(
            unsupported(r"/\101/"),
            ("multi-digit backreference `\\NN`", 1)
        );
        assert!(is_match(r"/[\101\8]/", "A") && is_match(r"/[\101\8]/", "8"));
        assert!(is_match(r"/\012/", "\n"));
        assert!(is_match(r"/\q\-\//", "q-/"));
        assert!(is_match(r"/\p{Lu}/u", "\u{c9}"));
        assert!(!is_match(r"/\P{Lu}/u", "\u{c9}"));
        assert!(
            is_match(r"/\p{L}/", "p{L}"),
            "without `u`, `\\p` is the letter p"
        );
        assert!(is_match(r"/[\b]/", "\u{8}"));
        assert!(is_match(
            r"/\.\*\+\?\(\)\[\]\{\}\|\^\$\\/",
            r".*+?()[]{}|^$\"
        ));
    }

    #[test]
    fn lone_surrogates_are_refused() {
        assert_eq!(syntax_offset(r"/a\uD83D[\uDE00-\uDE4F]/"), 2);
        assert_eq!(syntax_offset(r"/[\uDC00]/"), 2);
        assert!(is_match(r"/[\u0000-\uFFFF]/", "\u{FFFD}"));
    }

    #[test]
    fn perl_classes_are_ascii_like_javascript() {
        assert!(is_match(r"/^\d+$/", "0123456789"));
        assert!(
            !is_match(r"/\d/", "\u{663}"),
            "Arabic-Indic digit is not JS \\d"
        );
        assert!(!is_match(r"/\w/", "\u{e9}"));
        assert!(is_match(r"/\W/", "\u{e9}"));
        assert!(is_match(r"/a\b/", "a\u{e9}"), "é is not a JS word char");
        assert!(!is_match(r"/a\B/", "a\u{e9}"));
        assert!(is_match(r"/\s/", "\u{feff}"));
        assert!(!is_match(r"/\s/", "\u{85}"));
        assert!(is_match(r"/^[\d\w]+$/", "a_1"));
        assert!(is_match(r"/^[\D]+$/", "ab") && !is_match(r"/[\D]/", "12"));
        assert!(!is_match(r"/[^\d\s]/", "1 2") && is_match(r"/[^\d\s]/", "1x"));
        assert!(is_match(r"/[\W\d]/", "%") && !is_match(r"/[\W\d]/", "a"));
    }

    #[test]
    fn classes_follow_javascript_rules() {
        assert!(is_match("/a[^]b/", "a\nb"));
        assert!(!is_match("/a[]b/", "ab") && !is_match("/[]/", "[]"));
        assert!(is_match("/x[]|y/", "y"));
        assert!(is_match("/[[]/", "["));
        assert!(is_match("/[a&&b]/", "&") && !is_match("/[a&&b]/", "c"));
        assert_eq!(syntax_offset("/[a--b]/"), 2);
        assert!(is_match("/[--a]/", "0"));
        assert!(is_match("/[!--]/", ",") && is_match("/[x~~]/", "~"));
        assert!(is_match("/[a-]/", "-") && is_match("/[-a]/", "-"));
        assert!(is_match(r"/[\w-%]/", "-") && is_match(r"/[\w-%]/", "%"));
        assert!(!is_match(r"/[\w-%]/", "$"));
        assert!(is_match(r"/[\-]/", "-"));
        assert!(is_match("/]/", "]") && is_match("/}/", "}"));
        assert_eq!(syntax_offset("/x[z-a]/"), 3);
        assert_eq!(syntax_offset(r"/[\w-a]/u"), 2);
        assert_eq!(syntax_offset("/ab[cd/"), 3);
    }

    #[test]
    fn groups_and_quantifiers() {
        assert!(is_match("/(?<name>x)y/", "xy"));
        let out = translate_redact_pattern("/(?<tok>a)|(?<tok>b)|(?<$x>c)/").expect("translates");
        assert!(out.contains("(?P<tok>") && compile(&out).is_match(b"c"));
        assert_eq!(found("/a+?/", "aaa"), Some("a"));
        assert_eq!(found("/a*?b/", "aab"), Some("aab"));
        assert_eq!(found("/a{2,}?/", "aaaa"), Some("aa"));
        assert_eq!(found("/a??/", "a"), Some(""));
        assert_eq!(found("/a{2,3}/", "aaaa"), Some("aaa"));
        assert!(is_match("/a{/", "a{") && is_match("/a{,5}/", "a{,5}") && is_match("/a{1/", "a{1"));
        assert!(is_match("/x{2}/", "xx") && !is_match("/^x{2}$/", "xxx"));
        assert!(is_match("/(?:)a|b/", "b") && is_match("/a|/", ""));
        assert!(is_match("/(?i:a)b/", "Ab") && !is_match("/(?i:a)b/", "AB"));
        assert!(is_match("/(?-i:a)b/i", "aB") && !is_match("/(?-i:a)b/i", "AB"));
        assert!(source(
            "a|b",
            JsFlags {
                ignore_case: true,
                ..JsFlags::default()
            }
        )
        .is_match(b"B"));
        assert_eq!(syntax_offset("/a{3,2}/"), 2);
        assert_eq!(syntax_offset("/{2}/"), 1);
        assert_eq!(syntax_offset("/a**/"), 3);
        assert_eq!(syntax_offset("/^*/"), 2);
        assert_eq!(syntax_offset("/a{99999999999}/"), 2);
        assert_eq!(syntax_offset("/a(b/"), 2);
        assert_eq!(syntax_offset("/a)/"), 2);
        assert_eq!(syntax_offset("/(?ii:a)/"), 1);
        assert_eq!(syntax_offset("/(?-:a)/"), 1);
        assert_eq!(syntax_offset("/(?<1a>x)/"), 1);
        assert_eq!(syntax_offset("/a{/u"), 2);
        assert_eq!(syntax_offset(r"/\q/u"), 1);
        assert_eq!(syntax_offset(r"/a\/"), 2);
        assert!(matches!(
            translate_redact_pattern(&"(".repeat(200)),
            Err(JsRegexError::Syntax { .. })
        ));
    }

    #[test]
    fn anchors_and_multi_line() {
        assert!(is_match("/^a$/", "a") && !is_match("/^a$/", "a\nb") && !is_match("/^b/", "a\nb"));
        assert!(is_match("/^b$/m", "a\nb") && is_match("/^a$/m", "a\r\nb"));
        let flags = JsFlags {
            multi_line: true,
            ..JsFlags::default()
        };
        assert!(source("^x$", flags).is_match(b"w\r\nx\r\ny"));
        assert!(is_match("/a(?-m:$)/m", "a") && !is_match("/a(?-m:$)/m", "a\nb"));
    }

    #[test]
    fn unsupported_constructs_name_and_locate_themselves() {
        assert_eq!(unsupported("a(?=b)"), ("lookahead `(?=`", 1));
        assert_eq!(unsupported("ab(?!c)"), ("negative lookahead `(?!`", 2));
        assert_eq!(unsupported("(?<=a)b"), ("lookbehind `(?<=`", 0));
        assert_eq!(unsupported("x(?<!a)b"), ("negative lookbehind `(?<!`", 1));
        assert_eq!(unsupported("/ab(?=c)/"), ("lookahead `(?=`", 3));
        assert_eq!(unsupported(r"(a)\1"), ("backreference `\\1`", 3));
        assert_eq!(unsupported(r"/(a)(b)\2/"), ("backreference `\\2`", 7));
        assert_eq!(unsupported(r"\12"), ("multi-digit backreference `\\NN`", 0));
        assert_eq!(
            unsupported(r"/(?<n>a)\k<n>/"),
            ("named backreference `\\k<name>`", 8)
        );
        assert_eq!(
            unsupported(r"/\k<n>(?<n>a)/"),
            ("named backreference `\\k<name>`", 1)
        );
        assert_eq!(
            unsupported(r"/\k<n>/u"),
            ("named backreference `\\k<name>`", 1)
        );
        assert!(
            is_match(r"/\k<n>/", "k<n>"),
            "without named groups `\\k` is a letter"
        );
        assert_eq!(syntax_offset(r"/(?<n>a)\k/"), 8);
    }

    #[test]
    fn errors_never_quote_the_pattern() {
        let bad = [
            "(?=SECRETVALUE)",
            r"SECRETVALUE\1",
            "[SECRETVALUE",
            "(SECRETVALUE",
            "SECRETVALUE)",
            "*SECRETVALUE",
            "/SECRETVALUE/gg",
            r"/SECRETVALUE\q/u",
            r"/\p{SECRETVALUE}/u",
            r"/SECRETVALUE\uD800/",
            "SECRETVALUE{5,1}",
        ];
        for pattern in bad {
            let err = translate_redact_pattern(pattern).expect_err(pattern);
            let texts = [err.to_string(), format!("{err:?}")];
            assert!(
                texts.iter().all(|t| !t.contains("SECRET")),
                "{pattern}: {texts:?}"
            );
        }
        let err = translate_redact_pattern(r"/\p{SECRETVALUE}/u").expect_err("unknown property");
        assert!(
            matches!(err, JsRegexError::Syntax { offset: 0, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn unicode_mode_is_strict() {
        assert!(source(r"\u{1F600}\/", U).is_match("\u{1F600}/".as_bytes()));
        for bad in [
            r"\-",
            r"\a",
            "}",
            "]",
            r"\c1",
            r"\x4",
            r"\u12",
            r"\u{110000}",
            r"\00",
            r"[\1]",
            r"\p{}",
            r"\k",
        ] {
            assert!(
                matches!(translate(bad, U), Err(JsRegexError::Syntax { .. })),
                "{bad}"
            );
        }
        assert!(source(r"[\-\/]", U).is_match(b"-"));
    }

    #[test]
    fn no_panics_and_every_success_compiles() {
        const PIECES: [&str; 40] = [
            "\\", "(", ")", "[", "]", "{", "}", "^", "$", ".", "*", "+", "?", "|", "-", "/", "<",
            ">", "=", "!", ":", ",", "0", "1", "8", "a", "b", "c", "d", "k", "p", "u", "x", "D",
            "W", "B", "{2}", "é", "😀", "\n",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..600 {
            let len = (next() % 12) as usize;
            let mut pattern: String = (0..len).map(|_| PIECES[(next() % 40) as usize]).collect();
            if round % 3 == 0 {
                pattern = format!(
                    "/{pattern}/{}",
                    ["", "u", "s", "m", "i", "gu", "msiu"][round % 7]
                );
            }
            if let Ok(out) = translate_redact_pattern(&pattern) {
                compile(&out);
            }
            let flags = JsFlags {
                ignore_case: round & 1 != 0,
                multi_line: round & 2 != 0,
                dot_all: round & 4 != 0,
                unicode: round & 8 != 0,
            };
            if let Ok(out) = translate(&pattern, flags) {
                compile(&out);
            }
        }
    }
}
