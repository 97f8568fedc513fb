//! The block-level literal search: every occurrence of a set of literals, ASCII case ignored,
//! found in one SIMD pass over the text as it is.
//!
//! aho-corasick's Teddy fingerprints the first bytes of each literal and matches case exactly,
//! so the matcher used to search a lower-cased copy of every block, in four passes of at most
//! 64 literals (Teddy's limit), and half of its candidates failed verification: many anchors
//! begin alike (`\"`, `api`, `sk-`, `tok`). This searcher keeps Teddy's idea (Langdale's
//! nibble tables: for each window position, a byte's low and high nibble each select a bitmask
//! of the buckets of literals that may have that byte there) and changes three things:
//!
//! - each literal is fingerprinted on its rarest window of four bytes, wherever it lies
//!   (`\"password` on `swor`, not on `\"pa`);
//! - case is folded in the register (`byte | 0x20` on both sides), not in a copy;
//! - up to 32 buckets (four sets of tables) are searched in one pass.
//!
//! Candidates are verified exactly (`eq_ignore_ascii_case`). Without AVX2 (other CPUs, or
//! x86-64 machines that lack it) an aho-corasick DFA does the same job more slowly.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

/// Bytes fingerprinted per literal; a shorter literal is fingerprinted whole.
const WIDTH: usize = 4;
/// Sets of nibble tables, each serving eight buckets.
const MAX_SETS: usize = 4;

/// Searches for a fixed set of literals (given lower case) anywhere in a text, any ASCII case.
#[derive(Debug)]
pub(crate) struct Prefilter {
    imp: Imp,
}

#[derive(Debug)]
enum Imp {
    Fingerprint(Box<Fingerprint>),
    Automaton(AhoCorasick),
    Empty,
}

impl Prefilter {
    /// A searcher for `literals` (ASCII lower case, none empty). The SIMD path is taken when
    /// the CPU has AVX2.
    pub fn new(literals: &[Vec<u8>]) -> Result<Prefilter, String> {
        Prefilter::build(literals, simd_available())
    }

    fn build(literals: &[Vec<u8>], simd: bool) -> Result<Prefilter, String> {
        let imp = if literals.is_empty() {
            Imp::Empty
        } else if simd {
            Imp::Fingerprint(Box::new(Fingerprint::new(literals)))
        } else {
            Imp::Automaton(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::LeftmostLongest)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(literals)
                    .map_err(|e| format!("literal automaton: {e}"))?,
            )
        };
        Ok(Prefilter { imp })
    }

    /// Appends to `out`, sorted by start, each `(start, literal index)` where a literal occurs
    /// in `text` starting in `starts` (it may end past it). When literals start at the same
    /// place, only the longest is reported: a set in which no literal contains another loses
    /// nothing.
    pub fn find_starting_in(
        &self,
        text: &[u8],
        starts: Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        let (from, to) = (starts.start, starts.end.min(text.len()));
        if from >= to {
            return;
        }
        match &self.imp {
            Imp::Empty => {}
            Imp::Automaton(ac) => {
                let mut at = from;
                while let Some(m) = ac.find(Input::new(text).span(at..text.len())) {
                    if m.start() >= to {
                        break;
                    }
                    out.push((m.start(), m.pattern().as_usize()));
                    at = m.start() + 1;
                }
            }
            Imp::Fingerprint(fp) => {
                let first = out.len();
                fp.find_starting_in(text, from..to, out);
                out[first..].sort_unstable();
                // Literals starting at the same place: keep the longest.
                let mut kept = first;
                for i in first..out.len() {
                    let (start, lit) = out[i];
                    if kept > first && out[kept - 1].0 == start {
                        if fp.literals[lit].len() > fp.literals[out[kept - 1].1].len() {
                            out[kept - 1] = (start, lit);
                        }
                    } else {
                        out[kept] = (start, lit);
                        kept += 1;
                    }
                }
                out.truncate(kept);
            }
        }
    }
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The nibble tables and buckets of the SIMD search.
#[derive(Debug)]
struct Fingerprint {
    literals: Vec<Vec<u8>>,
    /// Where each literal's fingerprinted window starts in it.
    offsets: Vec<usize>,
    max_offset: usize,
    /// Sets of tables in use (1 to [`MAX_SETS`]): fewer literals, fewer sets, faster.
    sets: usize,
    /// `lo[j][s][n]`: bit `b` set when a literal of bucket `8·s + b` may have a byte with low
    /// nibble `n` at window position `j` (after folding); `hi` likewise for the high nibble.
    lo: [[[u8; 16]; MAX_SETS]; WIDTH],
    hi: [[[u8; 16]; MAX_SETS]; WIDTH],
    buckets: Vec<Vec<usize>>,
    /// Each literal's window, folded, as a little-endian word, and the mask of its bytes: a
    /// candidate is rejected on one comparison before its literal is compared whole.
    keys: Vec<(u32, u32)>,
}

/// How a byte is compared in the fingerprint: ASCII letters of either case become one.
/// (Some punctuation pairs up too, `@` with `` ` ``, `_` with DEL: verification tells them
/// apart.)
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// A rough rarity (−log₂ of frequency) of a folded byte in agent transcripts and gateway logs,
/// for choosing the window a literal is fingerprinted on. Counted on generated transcripts and
/// blended with English letter frequencies; only the order matters, and only roughly.
fn rarity(b: u8) -> u32 {
    match b {
        b'"' | b' ' => 4,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 5,
        b'|' => 5, // `\` folded: escaped JSON is full of it
        b'h' | b'l' | b'd' | b'c' | b'u' | b'm' | b'p' | b'f' | b'g' => 6,
        b'0'..=b'9' | b':' | b',' | b'/' => 6,
        b'w' | b'y' | b'b' | b'v' | b'k' => 7,
        b'.' | b'-' | 0x7f | b'{' | b'}' => 7,
        b'x' | b'j' | b'q' | b'z' | b'=' | b'+' => 8,
        b'\'' | b'(' | b')' | b';' => 9,
        0x80..=0xff => 11,
        b'\t' | b'\n' | b'\r' => 10,
        0..=0x1f => 14,
        _ => 10,
    }
}

impl Fingerprint {
    fn new(literals: &[Vec<u8>]) -> Fingerprint {
        let offsets: Vec<usize> = literals.iter().map(|l| rarest_window(l)).collect();
        let window = |i: usize| -> Vec<u8> {
            let l = &literals[i];
            l[offsets[i]..(offsets[i] + WIDTH).min(l.len())]
                .iter()
                .map(|&b| fold(b))
                .collect()
        };
        let sets = literals.len().div_ceil(8).clamp(1, MAX_SETS);
        let buckets = assign_buckets(
            &(0..literals.len()).map(window).collect::<Vec<_>>(),
            8 * sets,
        );
        let mut lo = [[[0u8; 16]; MAX_SETS]; WIDTH];
        let mut hi = [[[0u8; 16]; MAX_SETS]; WIDTH];
        for (b, members) in buckets.iter().enumerate() {
            let (s, bit) = (b / 8, 1u8 << (b % 8));
            for &i in members {
                let w = window(i);
                for j in 0..WIDTH {
                    match w.get(j) {
                        Some(&c) => {
                            lo[j][s][usize::from(c & 0xf)] |= bit;
                            hi[j][s][usize::from(c >> 4)] |= bit;
                        }
                        // Past a short literal's end: any byte.
                        None => {
                            for n in 0..16 {
                                lo[j][s][n] |= bit;
                                hi[j][s][n] |= bit;
                            }
                        }
                    }
                }
            }
        }
        let keys = (0..literals.len())
            .map(|i| {
                let (mut key, mut mask) = (0u32, 0u32);
                for (j, &c) in window(i).iter().enumerate() {
                    key |= u32::from(c) << (8 * j);
                    mask |= 0xff << (8 * j);
                }
                (key, mask)
            })
            .collect();
        Fingerprint {
            keys,
            max_offset: offsets.iter().copied().max().unwrap_or(0),
            literals: literals.to_vec(),
            offsets,
            sets,
            lo,
            hi,
            buckets,
        }
    }

    /// Pushes the occurrences starting in `from..to`, unsorted.
    fn find_starting_in(&self, text: &[u8], starts: Range<usize>, out: &mut Vec<(usize, usize)>) {
        // A literal starting at `s` has its window at `s + offset`.
        let end = (starts.end + self.max_offset).min(text.len());
        let mut pos = starts.start;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a `Fingerprint` is only built when the CPU has AVX2 (see `Prefilter::new`
            // and the tests, which check before building one).
            pos = unsafe {
                match self.sets {
                    1 => avx2::scan::<1>(self, text, pos, end, &starts, out),
                    2 => avx2::scan::<2>(self, text, pos, end, &starts, out),
                    3 => avx2::scan::<3>(self, text, pos, end, &starts, out),
                    _ => avx2::scan::<4>(self, text, pos, end, &starts, out),
                }
            };
        }
        self.scan_scalar(text, pos, end, &starts, out);
    }

    /// The same search a window position at a time, for the tail the SIMD loop cannot load.
    fn scan_scalar(
        &self,
        text: &[u8],
        pos: usize,
        end: usize,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        for p in pos..end {
            for s in 0..self.sets {
                let mut bits = 0xff;
                for (j, &b) in text[p..].iter().take(WIDTH).enumerate() {
                    let b = fold(b);
                    bits &=
                        self.lo[j][s][usize::from(b & 0xf)] & self.hi[j][s][usize::from(b >> 4)];
                }
                self.verify(text, p, s, bits, starts, out);
            }
        }
    }

    /// Checks the literals of the buckets in `bits` (of table set `s`) whose window would lie
    /// at `p`.
    #[inline]
    fn verify(
        &self,
        text: &[u8],
        p: usize,
        s: usize,
        mut bits: u8,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        // The (folded) bytes at the window position, zero past the end of the text.
        let mut word = [0u8; WIDTH];
        for (w, &b) in word.iter_mut().zip(&text[p.min(text.len())..]) {
            *w = fold(b);
        }
        let word = u32::from_le_bytes(word);
        while bits != 0 {
            let bucket = 8 * s + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            for &i in &self.buckets[bucket] {
                let (key, mask) = self.keys[i];
                if word & mask != key {
                    continue;
                }
                let Some(start) = p.checked_sub(self.offsets[i]) else {
                    continue;
                };
                let lit = &self.literals[i];
                if starts.contains(&start)
                    && text
                        .get(start..start + lit.len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(lit))
                {
                    out.push((start, i));
                }
            }
        }
    }
}

/// How often, roughly, a folded byte occurs (see [`rarity`]), as a fraction of all bytes.
fn frequencies() -> [f64; 256] {
    let mut f = [0.0; 256];
    for (b, x) in f.iter_mut().enumerate() {
        *x = (-f64::from(rarity(b as u8))).exp2();
    }
    let total: f64 = f.iter().sum();
    f.map(|x| x / total)
}

/// The nibbles a bucket admits at each window position, as bit sets.
#[derive(Clone, Copy, Default)]
struct Shape {
    lo: [u16; WIDTH],
    hi: [u16; WIDTH],
}

impl Shape {
    fn with(mut self, window: &[u8]) -> Shape {
        for j in 0..WIDTH {
            match window.get(j) {
                Some(&c) => {
                    self.lo[j] |= 1 << (c & 0xf);
                    self.hi[j] |= 1 << (c >> 4);
                }
                None => (self.lo[j], self.hi[j]) = (u16::MAX, u16::MAX),
            }
        }
        self
    }

    /// The chance that a window position of text passes this bucket's tables.
    fn pass_rate(&self, freq: &[f64; 256]) -> f64 {
        (0..WIDTH)
            .map(|j| {
                if self.lo[j] == u16::MAX && self.hi[j] == u16::MAX {
                    return 1.0;
                }
                let mut p = 0.0;
                for h in (0..16).filter(|h| self.hi[j] & (1 << h) != 0) {
                    for l in (0..16).filter(|l| self.lo[j] & (1 << l) != 0) {
                        p += freq[h << 4 | l];
                    }
                }
                p
            })
            .product()
    }
}

/// Puts each window (folded) in one of `n` buckets. Windows shorter than [`WIDTH`] admit any
/// byte after their end, which would spoil a bucket of full windows: they get buckets of their
/// own, as many as their share of the windows.
fn assign_buckets(windows: &[Vec<u8>], n: usize) -> Vec<Vec<usize>> {
    let (short, full): (Vec<usize>, Vec<usize>) =
        (0..windows.len()).partition(|&i| windows[i].len() < WIDTH);
    let n_short = match (short.len(), full.len()) {
        (0, _) => 0,
        (_, 0) => n,
        (s, _) => (s * n).div_ceil(windows.len()).clamp(1, n - 1),
    };
    let mut buckets = fill_buckets(windows, &short, n_short);
    buckets.extend(fill_buckets(windows, &full, n - n_short));
    buckets
}

/// Puts `members` of `windows` in `n` buckets, greedily keeping the expected verification
/// work (Σ pass rate × literals) low: a bucket admits every combination of its members'
/// nibbles, so a window goes where it adds the fewest combinations that occur in text. The
/// most common windows are placed first, while buckets are still empty.
fn fill_buckets(windows: &[Vec<u8>], members: &[usize], n: usize) -> Vec<Vec<usize>> {
    let freq = frequencies();
    let mut order: Vec<(f64, usize)> = members
        .iter()
        .map(|&i| (Shape::default().with(&windows[i]).pass_rate(&freq), i))
        .collect();
    order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut shapes = vec![Shape::default(); n];
    let mut work = vec![0.0; n];
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (_, i) in order {
        let Some((best, shape, cost)) = (0..n)
            .map(|b| {
                let shape = shapes[b].with(&windows[i]);
                let cost = shape.pass_rate(&freq) * (buckets[b].len() + 1) as f64;
                (b, shape, cost)
            })
            .min_by(|x, y| (x.2 - work[x.0]).total_cmp(&(y.2 - work[y.0])))
        else {
            break;
        };
        shapes[best] = shape;
        work[best] = cost;
        buckets[best].push(i);
    }
    buckets
}

/// The window of `WIDTH` bytes (or the whole literal, if shorter) with the rarest bytes.
fn rarest_window(lit: &[u8]) -> usize {
    let width = WIDTH.min(lit.len());
    (0..=lit.len() - width)
        .max_by_key(|&k| {
            let score: u32 = lit[k..k + width].iter().map(|&b| rarity(fold(b))).sum();
            // Ties go to the leftmost window.
            (score, std::cmp::Reverse(k))
        })
        .unwrap_or(0)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{fold, Fingerprint, Range, WIDTH};
    use std::arch::x86_64::*;

    /// Scans window positions `pos..end` 32 at a time while four 32-byte loads fit in `text`;
    /// returns where it stopped, for the scalar loop to go on.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan<const S: usize>(
        fp: &Fingerprint,
        text: &[u8],
        mut pos: usize,
        end: usize,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) -> usize {
        const LANES: usize = 32;
        let table = |t: &[u8; 16]| {
            // SAFETY: `t` is 16 readable bytes; an unaligned load needs nothing more.
            let half = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
            _mm256_broadcastsi128_si256(half)
        };
        let mut lo = [[_mm256_setzero_si256(); S]; WIDTH];
        let mut hi = [[_mm256_setzero_si256(); S]; WIDTH];
        for j in 0..WIDTH {
            for s in 0..S {
                lo[j][s] = table(&fp.lo[j][s]);
                hi[j][s] = table(&fp.hi[j][s]);
            }
        }
        let folded = _mm256_set1_epi8(fold(0) as i8);
        let nibble = _mm256_set1_epi8(0xf);
        let mut lanes = [[0u8; LANES]; S];
        while pos < end && pos + LANES + WIDTH - 1 <= text.len() {
            let mut acc = [_mm256_set1_epi8(-1); S];
            for j in 0..WIDTH {
                // SAFETY: `pos + j + 32 <= pos + 35 <= text.len()` by the loop condition.
                let bytes = unsafe { _mm256_loadu_si256(text.as_ptr().add(pos + j).cast()) };
                let bytes = _mm256_or_si256(bytes, folded);
                let low = _mm256_and_si256(bytes, nibble);
                let high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), nibble);
                for s in 0..S {
                    let m = _mm256_and_si256(
                        _mm256_shuffle_epi8(lo[j][s], low),
                        _mm256_shuffle_epi8(hi[j][s], high),
                    );
                    acc[s] = _mm256_and_si256(acc[s], m);
                }
            }
            let mut any = acc[0];
            for a in &acc[1..] {
                any = _mm256_or_si256(any, *a);
            }
            let none = _mm256_cmpeq_epi8(any, _mm256_setzero_si256());
            let mut hits = !(_mm256_movemask_epi8(none) as u32);
            if end - pos < LANES {
                hits &= (1u32 << (end - pos)) - 1;
            }
            if hits != 0 {
                for s in 0..S {
                    // SAFETY: `lanes[s]` is 32 writable bytes.
                    unsafe { _mm256_storeu_si256(lanes[s].as_mut_ptr().cast(), acc[s]) };
                }
                while hits != 0 {
                    let i = hits.trailing_zeros() as usize;
                    hits &= hits - 1;
                    for (s, lane) in lanes.iter().enumerate() {
                        fp.verify(text, pos + i, s, lane[i], starts, out);
                    }
                }
            }
            pos += LANES;
        }
        pos.min(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every occurrence, the longest at each start, by brute force.
    fn naive(lits: &[Vec<u8>], text: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for start in from..to.min(text.len()) {
            let best = (0..lits.len())
                .filter(|&i| {
                    text.get(start..start + lits[i].len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(&lits[i]))
                })
                .max_by_key(|&i| (lits[i].len(), std::cmp::Reverse(i)));
            out.extend(best.map(|i| (start, i)));
        }
        out
    }

    fn search(p: &Prefilter, text: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        p.find_starting_in(text, from..to, &mut out);
        out
    }

    fn builds(lits: &[Vec<u8>]) -> Vec<Prefilter> {
        let mut all = vec![Prefilter::build(lits, false).unwrap()];
        if simd_available() {
            all.push(Prefilter::build(lits, true).unwrap());
        }
        all
    }

    /// Literals over a small alphabet (so they occur), none containing another.
    fn literal_set() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let byte = prop::sample::select(b"aAbB\\\"_:-@`".to_vec());
        prop::collection::vec(prop::collection::vec(byte, 1..9), 1..80).prop_map(|lits| {
            let mut lits: Vec<Vec<u8>> = lits.into_iter().map(|l| l.to_ascii_lowercase()).collect();
            lits.sort();
            lits.dedup();
            let keep: Vec<Vec<u8>> = lits
                .iter()
                .filter(|l| {
                    !lits
                        .iter()
                        .any(|o| o.len() < l.len() && memchr::memmem::find(l, o).is_some())
                })
                .cloned()
                .collect();
            keep
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn finds_what_brute_force_finds(
            lits in literal_set(),
            text in prop::collection::vec(prop::sample::select(b"aAbB\\\"_:-@`\x7f\n".to_vec()), 0..300),
            cut in (0usize..300, 0usize..300),
        ) {
            let (from, to) = (cut.0.min(cut.1), cut.0.max(cut.1));
            let want = naive(&lits, &text, from, to);
            for p in builds(&lits) {
                prop_assert_eq!(&search(&p, &text, from, to), &want);
            }
        }
    }

    #[test]
    fn case_and_folding_neighbours() {
        let lits = vec![b"\\\"password".to_vec(), b"sk-".to_vec(), b"a_b".to_vec()];
        let text = b"x \\\"PassWord sK- A_B a\x7fb |\"password SK_ a_b";
        for p in builds(&lits) {
            assert_eq!(
                search(&p, text, 0, text.len()),
                vec![(2, 0), (13, 1), (17, 2), (40, 2)]
            );
        }
    }

    #[test]
    fn long_text_with_hits_near_the_ends() {
        let lits: Vec<Vec<u8>> = (0..200).map(|i| format!("k{i:03}x").into_bytes()).collect();
        let mut text = vec![b'.'; 5000];
        for (at, lit) in [(0, 7), (27, 199), (32, 3), (1000, 42), (4995, 100)] {
            text[at..at + 5].copy_from_slice(&lits[lit]);
        }
        for p in builds(&lits) {
            assert_eq!(
                search(&p, &text, 0, text.len()),
                naive(&lits, &text, 0, text.len())
            );
            assert_eq!(search(&p, &text, 0, text.len()).len(), 5);
            assert_eq!(search(&p, &text, 32, 4995), vec![(32, 3), (1000, 42)]);
        }
    }

    #[test]
    fn windows_avoid_common_bytes() {
        assert_eq!(rarest_window(b"\\\"password"), 6);
        assert_eq!(rarest_window(b"sk-"), 0);
        assert_eq!(rarest_window(b"x-api-key"), 0);
    }
}
