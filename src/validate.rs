//! Validators: checks a regex match must pass before it counts as a secret.
//!
//! A regex can say "four dotted numbers"; only parsing can say "a private address". Validators
//! see the whole text and the secret's span, so they can also reject a match that is part of a
//! longer token (a version string such as `1.10.2.3.4`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A check applied to a candidate secret.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Validator {
    /// IPv4 in 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT, Tailscale) or 169.254/16.
    Ipv4Private,
    /// IPv6 in fc00::/7 (ULA, Tailscale) or fe80::/10 (link-local).
    Ipv6Private,
    /// Shannon entropy of the secret, in bits per byte, at least this.
    Entropy(f64),
    /// Not a placeholder such as `$VAR`, `${VAR}`, `<your-key>`, `***`, `null`, `changeme`.
    NotPlaceholder,
    /// The last 6 characters are the base62 CRC32 of the 30 before them, as in GitHub's
    /// `ghp_…` and npm's `npm_…` tokens: a look-alike fails, a real token always passes.
    GithubChecksum,
    /// The digits (spaces and dashes ignored) pass the Luhn check, as every card number does.
    Luhn,
}

impl Validator {
    /// Parses the rule-file spelling: `ipv4-private`, `ipv6-private`, `entropy >= 3.5`,
    /// `not-placeholder`, `github-checksum`, `luhn`.
    pub fn parse(text: &str) -> Result<Validator, String> {
        let t = text.trim();
        match t {
            "ipv4-private" => return Ok(Validator::Ipv4Private),
            "ipv6-private" => return Ok(Validator::Ipv6Private),
            "not-placeholder" => return Ok(Validator::NotPlaceholder),
            "github-checksum" => return Ok(Validator::GithubChecksum),
            "luhn" => return Ok(Validator::Luhn),
            _ => {}
        }
        if let Some(rest) = t.strip_prefix("entropy") {
            let value = rest.trim_start().strip_prefix(">=").map(str::trim);
            if let Some(x) = value
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|x| (0.0..=8.0).contains(x))
            {
                return Ok(Validator::Entropy(x));
            }
            return Err(format!(
                "bad validator `{t}`: expected `entropy >= X` with X in 0..=8"
            ));
        }
        Err(format!(
            "unknown validator `{t}` (known: ipv4-private, ipv6-private, entropy >= X, \
             not-placeholder, github-checksum, luhn)"
        ))
    }

    /// True when `text[start..end]` passes.
    pub fn check(&self, text: &[u8], start: usize, end: usize) -> bool {
        let secret = &text[start..end];
        match self {
            Validator::Ipv4Private => ipv4_private(text, start, end),
            Validator::Ipv6Private => ipv6_private(secret),
            Validator::Entropy(min) => entropy(secret) >= *min,
            Validator::NotPlaceholder => !is_placeholder(secret),
            Validator::GithubChecksum => github_checksum(secret),
            Validator::Luhn => luhn(secret),
        }
    }
}

fn ipv4_private(text: &[u8], start: usize, end: usize) -> bool {
    // Part of a longer dotted number (`1.10.2.3.4`, `10.0.0.1.2`) is a version, not an address.
    let before = start.checked_sub(1).map(|i| text[i]);
    if matches!(before, Some(b) if b.is_ascii_digit() || b == b'.' || b.is_ascii_alphabetic()) {
        return false;
    }
    if matches!(text.get(end), Some(b) if b.is_ascii_digit())
        || (text.get(end) == Some(&b'.') && text.get(end + 1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    let Ok(s) = std::str::from_utf8(&text[start..end]) else {
        return false;
    };
    let Ok(ip) = Ipv4Addr::from_str(s) else {
        return false;
    };
    let [a, b, ..] = ip.octets();
    ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b))
}

fn ipv6_private(secret: &[u8]) -> bool {
    let addr = secret.split(|&b| b == b'%').next().unwrap_or(secret);
    let Ok(s) = std::str::from_utf8(addr) else {
        return false;
    };
    let Ok(ip) = Ipv6Addr::from_str(s) else {
        return false;
    };
    let first = ip.segments()[0];
    (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}

fn github_checksum(secret: &[u8]) -> bool {
    let Some(start) = secret.len().checked_sub(36) else {
        return false;
    };
    let (payload, checksum) = secret[start..].split_at(30);
    checksum == github_checksum_of(payload)
}

/// The six-character checksum GitHub and npm append to a token's random part: its CRC32 in
/// base62, zero-padded.
pub(crate) fn github_checksum_of(payload: &[u8]) -> [u8; 6] {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut crc = crc32fast::hash(payload);
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    // CRC32 < 62^6, so six base62 digits always hold it.
    digits
}

fn luhn(secret: &[u8]) -> bool {
    let digits = secret.iter().rev().filter(|b| b.is_ascii_digit());
    let (mut sum, mut count) = (0u32, 0usize);
    for (i, &b) in digits.enumerate() {
        let d = u32::from(b - b'0');
        sum += if i % 2 == 1 {
            if d > 4 {
                2 * d - 9
            } else {
                2 * d
            }
        } else {
            d
        };
        count += 1;
    }
    count >= 12 && sum % 10 == 0
}

/// Shannon entropy in bits per byte.
///
/// A secret has a few distinct counts (most bytes occur once or twice), so each count's term
/// is worked out once: `log2` was most of the cost of confirming a key with an entropy floor.
/// The terms are the same and summed in the same byte order as the plain formula, so the
/// result is identical to the bit.
pub(crate) fn entropy(s: &[u8]) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in s {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    let term = |c: u32| {
        let p = f64::from(c) / n;
        -p * p.log2()
    };
    let mut small = [None; 8];
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| match small.get_mut(c as usize) {
            Some(slot) => *slot.get_or_insert_with(|| term(c)),
            None => term(c),
        })
        .sum()
}

/// Values people write where a secret would go but which are not secrets.
pub(crate) fn is_placeholder(secret: &[u8]) -> bool {
    let s = secret.trim_ascii();
    if s.len() < 3 {
        return true;
    }
    // `$VAR`, `${VAR}`, `%VAR%`, `{{ var }}`, `<your-key-here>`, `[REDACTED…]`.
    let wrapped = |open: &[u8], close: &[u8]| s.starts_with(open) && s.ends_with(close);
    if (s[0] == b'$'
        && s[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_'))
        // A value cut at a space (`<your key here>` read as `<your`) is still a template.
        || s.starts_with(b"${")
        || s.starts_with(b"$(")
        || wrapped(b"{{", b"}}")
        || s[0] == b'<'
        || (wrapped(b"%", b"%") && s.len() > 2)
        || s.starts_with(b"[REDACTED")
    {
        return true;
    }
    // One character repeated: `***`, `xxxxxxxx`, `........`, `00000000`.
    if s.iter().all(|&b| b == s[0]) {
        return true;
    }
    const WORDS: &[&[u8]] = &[
        b"null",
        b"none",
        b"nil",
        b"undefined",
        b"true",
        b"false",
        b"changeme",
        b"change-me",
        b"change_me",
        b"example",
        b"placeholder",
        b"redacted",
        b"secret",
        b"password",
        b"token",
        b"your-api-key",
        b"your_api_key",
        b"yourapikey",
        b"your-key-here",
        b"your-token",
        b"dummy",
        b"test",
        b"todo",
        b"tbd",
        b"hidden",
        b"masked",
        b"xxx",
        b"****",
        b"string",
    ];
    WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The memoized terms give the plain formula's value to the bit: a floor such as
        /// `entropy >= 3.0` decides the same either way.
        #[test]
        fn entropy_is_the_plain_formula(s in proptest::collection::vec(
            proptest::prop_oneof![proptest::num::u8::ANY, 0x61u8..0x65], 0..300)
        ) {
            let n = s.len() as f64;
            let mut counts = [0u32; 256];
            for &b in &s {
                counts[usize::from(b)] += 1;
            }
            let plain: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| -(f64::from(c) / n) * (f64::from(c) / n).log2())
                .sum();
            let plain = if s.is_empty() { 0.0 } else { plain };
            proptest::prop_assert_eq!(entropy(&s).to_bits(), plain.to_bits());
        }
    }

    fn v4(t: &str) -> bool {
        let start = t.find(|c: char| c.is_ascii_digit()).unwrap();
        let end = start
            + t[start..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len() - start);
        ipv4_private(t.as_bytes(), start, end)
    }

    #[test]
    fn private_ipv4() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.3.4",
            "169.254.169.254",
            " 10.20.0.14:8080",
        ] {
            assert!(v4(ip), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "127.0.0.1",
            "172.32.0.1",
            "100.128.0.1",
            "10.300.1.1",
            "a 1.10.2.3.4",
        ] {
            assert!(!v4(ip), "{ip}");
        }
        assert!(!ipv4_private(b"1.10.2.3", 2, 8));
        assert!(!ipv4_private(b"10.0.0.1.5", 0, 8));
    }

    #[test]
    fn private_ipv6() {
        for ip in [
            "fd7a:115c:a1e0::1",
            "fe80::1%eth0",
            "fc00::",
            "fdff:ffff::1",
            "febf::1",
        ] {
            assert!(ipv6_private(ip.as_bytes()), "{ip}");
        }
        for ip in ["2001:db8::1", "::1", "fe7f::1", "fec0::1", "fd00:zz::1"] {
            assert!(!ipv6_private(ip.as_bytes()), "{ip}");
        }
    }

    #[test]
    fn placeholders() {
        for p in [
            "$OPENAI_API_KEY",
            "${TOKEN}",
            "<your-key-here>",
            "***",
            "null",
            "",
            "changeme",
            "[REDACTED:x]",
            "xxxxxxxx",
        ] {
            assert!(is_placeholder(p.as_bytes()), "{p}");
        }
        for p in ["hunter2", "sk-abcdef123456", "s3cr3t-P4ss"] {
            assert!(!is_placeholder(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn parse_validators() {
        assert_eq!(
            Validator::parse("entropy >= 3.5"),
            Ok(Validator::Entropy(3.5))
        );
        assert!(Validator::parse("entropy > 3").is_err());
        assert!(Validator::parse("luhn?").is_err());
    }

    #[test]
    fn github_checksums() {
        // Payload and checksum computed with Python's zlib.crc32 and a base62 encoder.
        let token = github_token("ghp_", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcd");
        assert_eq!(token, "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");
        assert!(github_checksum(token.as_bytes()), "{token}");
        let mut wrong = token.into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'a' { b'b' } else { b'a' };
        assert!(!github_checksum(&wrong));
        assert!(!github_checksum(b"ghp_short"));
    }

    /// An independent encoder for the test: repeated division written out over `u64`.
    fn github_token(prefix: &str, payload: &str) -> String {
        let alphabet: Vec<char> = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            .chars()
            .collect();
        let mut n = u64::from(crc32fast::hash(payload.as_bytes()));
        let mut digits = String::new();
        while n > 0 {
            digits.insert(0, alphabet[(n % 62) as usize]);
            n /= 62;
        }
        format!("{prefix}{payload}{digits:0>6}")
    }

    #[test]
    fn luhn_numbers() {
        for card in [
            "4111 1111 1111 1111",
            "5555-5555-5555-4444",
            "378282246310005",
        ] {
            assert!(luhn(card.as_bytes()), "{card}");
        }
        for not in ["4111 1111 1111 1112", "1234", "0000"] {
            assert!(!luhn(not.as_bytes()), "{not}");
        }
    }
}
