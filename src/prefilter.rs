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
//! Where the CPU has AVX-512 VBMI, one `vpermb` per window position and table set looks a
//! byte's class (bits 0–4 and 6: all but the case bit and the high bit, see [`class`]) up in
//! a 64-entry table: half the lookups of the nibble pair, over 64 bytes at a time, and a
//! bucket admits the bytes its members have, not every pairing of their nibbles.
//!
//! Beside the literals it finds class windows, up to four positions each admitting a set of
//! bytes, in buckets of their own: the colon scanners' `[0-9A-Fa-f]{3}:` costs no pass of its
//! own.
//!
//! Candidates are verified exactly (`eq_ignore_ascii_case`). Without AVX2 (other CPUs, or
//! x86-64 machines that lack it) an aho-corasick DFA does the same job more slowly.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};

/// Bytes fingerprinted per literal; a shorter literal is fingerprinted whole.
const WIDTH: usize = 4;
/// Sets of tables, each serving eight buckets.
const MAX_SETS: usize = 4;
/// Literal sets up to this size are put in buckets by pairwise merging (the built-in rules have
/// about 200 literals to search; a user's pack of thousands gets a cheaper assignment).
const MAX_CLUSTERED: usize = 512;

/// Searches for a fixed set of literals (given lower case) anywhere in a text, any ASCII case,
/// and for a few class windows: short runs of bytes each from its own set (`[0-9a-f]{3}:`).
#[derive(Debug)]
pub(crate) struct Prefilter {
    imp: Imp,
    literals: usize,
    classes: Vec<ClassWindow>,
}

/// A class window: the bytes admitted at each of its (at most [`WIDTH`]) positions, exactly
/// (case is not folded). Reported where it starts, after the literals' indices.
pub(crate) type ClassWindow = Vec<Vec<u8>>;

/// How the literal search runs: the SIMD kernel for the CPU, else an automaton.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// AVX-512 BW and VBMI: class tables, 64 bytes at a time.
    Classes,
    /// AVX2: nibble tables, 32 bytes at a time.
    Nibbles,
    /// No SIMD kernel: aho-corasick's DFA.
    Automaton,
}

#[derive(Debug)]
enum Imp {
    Fingerprint(Box<Fingerprint>),
    Automaton(AhoCorasick),
    Empty,
}

impl Prefilter {
    /// A searcher for `literals` (ASCII lower case, none empty) and `classes` (at most eight,
    /// none empty, no set empty), with the fastest kernel the CPU runs.
    pub fn new(literals: &[Vec<u8>], classes: &[ClassWindow]) -> Result<Prefilter, String> {
        Prefilter::build(literals, classes, kernels()[0])
    }

    fn build(
        literals: &[Vec<u8>],
        classes: &[ClassWindow],
        kernel: Kernel,
    ) -> Result<Prefilter, String> {
        if classes.len() > 8
            || classes
                .iter()
                .any(|c| c.is_empty() || c.len() > WIDTH || c.iter().any(Vec::is_empty))
        {
            return Err("class windows: at most 8, of 1 to 4 non-empty sets".into());
        }
        let imp = if literals.is_empty() && classes.is_empty() {
            Imp::Empty
        } else if kernel != Kernel::Automaton {
            Imp::Fingerprint(Box::new(Fingerprint::new(literals, classes, kernel)))
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
        Ok(Prefilter {
            imp,
            literals: literals.len(),
            classes: classes.to_vec(),
        })
    }

    /// Fills `out`, sorted by start, with each `(start, index)` where a literal or a class
    /// window occurs in `text` starting in `starts` (it may end past it); class window `k` has
    /// index `literals + k`. When literals start at the same place, only the longest is
    /// reported: a set in which no literal contains another loses nothing.
    pub fn find_starting_in(
        &self,
        text: &[u8],
        starts: Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        out.clear();
        let (from, to) = (starts.start, starts.end.min(text.len()));
        if from >= to {
            return;
        }
        match &self.imp {
            Imp::Empty => {}
            // Leftmost-longest: one literal, the longest, per start.
            Imp::Automaton(ac) => {
                let mut at = from;
                while let Some(m) = ac.find(Input::new(text).span(at..text.len())) {
                    if m.start() >= to {
                        break;
                    }
                    out.push((m.start(), m.pattern().as_usize()));
                    at = m.start() + 1;
                }
                for (k, class) in self.classes.iter().enumerate() {
                    // A plain scan: only CPUs without a SIMD kernel come here.
                    out.extend(
                        (from..to)
                            .filter(|&p| class_at(text, p, class))
                            .map(|p| (p, self.literals + k)),
                    );
                }
                out.sort_unstable();
            }
            Imp::Fingerprint(fp) => {
                fp.find_starting_in(text, from..to, out);
                let len = |i: usize| fp.literals.get(i).map_or(0, Vec::len);
                out.sort_unstable_by_key(|&(start, i)| (start, std::cmp::Reverse(len(i)), i));
                // One literal per start; class windows are kept whatever starts with them.
                let literal = |i: usize| i < self.literals;
                out.dedup_by(|b, a| a.0 == b.0 && literal(a.1) && literal(b.1));
            }
        }
    }
}

/// Whether class window `class` occurs at `text[start..]`.
fn class_at(text: &[u8], start: usize, class: &ClassWindow) -> bool {
    text.get(start..start + class.len())
        .is_some_and(|t| t.iter().zip(class).all(|(b, set)| set.contains(b)))
}

/// Whether `lit` (lower case) occurs at `text[start..]`, any ASCII case.
pub(crate) fn occurs_at(text: &[u8], start: usize, lit: &[u8]) -> bool {
    text.get(start..start + lit.len())
        .is_some_and(|t| t.eq_ignore_ascii_case(lit))
}

/// The kernels this CPU runs, fastest first.
fn kernels() -> Vec<Kernel> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vbmi")
        {
            all.push(Kernel::Classes);
        }
        if std::is_x86_feature_detected!("avx2") {
            all.push(Kernel::Nibbles);
        }
    }
    all.push(Kernel::Automaton);
    all
}

/// The tables and buckets of the SIMD search.
#[derive(Debug)]
struct Fingerprint {
    kernel: Kernel,
    literals: Vec<Vec<u8>>,
    class_windows: Vec<ClassWindow>,
    max_offset: usize,
    /// Sets of tables in use (1 to [`MAX_SETS`]): fewer literals, fewer sets, faster.
    sets: usize,
    /// `lo[j][s][n]`: bit `b` set when a literal of bucket `8·s + b` may have a byte with low
    /// nibble `n` at window position `j` (after folding); `hi` likewise for the high nibble.
    lo: [[[u8; 16]; MAX_SETS]; WIDTH],
    hi: [[[u8; 16]; MAX_SETS]; WIDTH],
    /// `classes[j][s][c]`: bit `b` set when a literal of bucket `8·s + b` may have a byte of
    /// class `c` at window position `j`.
    classes: [[[u8; 64]; MAX_SETS]; WIDTH],
    /// The literals of every bucket, bucket by bucket: bucket `b` is
    /// `entries[bucket_ends[b]..bucket_ends[b + 1]]`.
    entries: Vec<Entry>,
    bucket_ends: Vec<usize>,
}

/// A literal in its bucket.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The literal's window, folded, as a little-endian word, and the mask of its bytes: most
    /// candidates are rejected on this one comparison.
    key: u32,
    mask: u32,
    /// Where the window starts in the literal.
    offset: usize,
    literal: usize,
}

/// How a byte is compared in the fingerprint: ASCII letters of either case become one.
/// (Some punctuation pairs up too, `@` with `` ` ``, `_` with DEL: verification tells them
/// apart.)
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// A byte's class in the AVX-512 kernel's tables: its bits 0–4, and bit 6 as bit 5. The case
/// bit (5) is dropped, as [`fold`] drops it; so is bit 7, so a byte above 127 shares a class
/// with an ASCII one, which costs a verification, never a miss.
fn class(b: u8) -> usize {
    usize::from((b & 0x1f) | ((b >> 1) & 0x20))
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
    fn new(literals: &[Vec<u8>], classes: &[ClassWindow], kernel: Kernel) -> Fingerprint {
        let offsets: Vec<usize> = literals.iter().map(|l| rarest_window(l)).collect();
        let windows: Vec<Vec<u8>> = literals
            .iter()
            .zip(&offsets)
            .map(|(l, &k)| {
                l[k..(k + WIDTH).min(l.len())]
                    .iter()
                    .map(|&b| fold(b))
                    .collect()
            })
            .collect();
        let sets = (literals.len() + classes.len())
            .div_ceil(8)
            .clamp(1, MAX_SETS);
        // A class window has a bucket of its own, after the literals' buckets.
        let mut buckets = assign_buckets(&windows, 8 * sets - classes.len(), kernel);
        buckets.extend((0..classes.len()).map(|k| vec![literals.len() + k]));
        let shape_of = |i: usize| match classes.get(i.wrapping_sub(literals.len())) {
            Some(class) => Shape::of_class(class),
            None => Shape::default().with(&windows[i]),
        };
        // Each bucket's tables admit the nibbles and classes its shape does.
        let mut lo = [[[0u8; 16]; MAX_SETS]; WIDTH];
        let mut hi = [[[0u8; 16]; MAX_SETS]; WIDTH];
        let mut class_tables = [[[0u8; 64]; MAX_SETS]; WIDTH];
        for (b, members) in buckets.iter().enumerate() {
            let (s, bit) = (b / 8, 1u8 << (b % 8));
            let shape = members
                .iter()
                .fold(Shape::default(), |shape, &i| shape.union(&shape_of(i)));
            for j in 0..WIDTH {
                for n in 0..16 {
                    if shape.lo[j] & (1 << n) != 0 {
                        lo[j][s][n] |= bit;
                    }
                    if shape.hi[j] & (1 << n) != 0 {
                        hi[j][s][n] |= bit;
                    }
                }
                for (c, entry) in class_tables[j][s].iter_mut().enumerate() {
                    if shape.classes[j] & (1 << c) != 0 {
                        *entry |= bit;
                    }
                }
            }
        }
        let mut entries = Vec::with_capacity(literals.len());
        let mut bucket_ends = vec![0];
        for members in &buckets {
            for &i in members {
                let (mut key, mut mask) = (0u32, 0u32);
                // A class window's entry passes the word test and is checked in full.
                let window = windows.get(i).map_or(&[][..], Vec::as_slice);
                for (j, &c) in window.iter().enumerate() {
                    key |= u32::from(c) << (8 * j);
                    mask |= 0xff << (8 * j);
                }
                entries.push(Entry {
                    key,
                    mask,
                    offset: offsets.get(i).copied().unwrap_or(0),
                    literal: i,
                });
            }
            bucket_ends.push(entries.len());
        }
        Fingerprint {
            kernel,
            classes: class_tables,
            entries,
            bucket_ends,
            max_offset: offsets.iter().copied().max().unwrap_or(0),
            literals: literals.to_vec(),
            class_windows: classes.to_vec(),
            sets,
            lo,
            hi,
        }
    }

    /// Pushes the occurrences starting in `starts`, unsorted.
    fn find_starting_in(&self, text: &[u8], starts: Range<usize>, out: &mut Vec<(usize, usize)>) {
        // A literal starting at `s` has its window at `s + offset`.
        let end = (starts.end + self.max_offset).min(text.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a `Fingerprint` is only built for a kernel the CPU runs (see `kernels`).
        unsafe {
            match (self.kernel, self.sets) {
                (Kernel::Classes, 1) => avx512::scan::<1>(self, text, end, &starts, out),
                (Kernel::Classes, 2) => avx512::scan::<2>(self, text, end, &starts, out),
                (Kernel::Classes, 3) => avx512::scan::<3>(self, text, end, &starts, out),
                (Kernel::Classes, _) => avx512::scan::<4>(self, text, end, &starts, out),
                (_, 1) => avx2::scan::<1>(self, text, end, &starts, out),
                (_, 2) => avx2::scan::<2>(self, text, end, &starts, out),
                (_, 3) => avx2::scan::<3>(self, text, end, &starts, out),
                (_, _) => avx2::scan::<4>(self, text, end, &starts, out),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (text, end, starts, out);
    }

    /// Calls `scan_block(pos, block)` for the window positions `pos..pos + B - WIDTH + 1` of
    /// each block, from `from` on while `pos < end`; `block` is the `B` bytes they read, or for
    /// the last positions a zero-padded copy of what is left. Zeros fold to spaces; a literal
    /// that would run into them fails verification, which reads the text itself. The SIMD
    /// kernels pass their per-block work, which is inlined here.
    #[inline(always)]
    fn for_each_block<const B: usize>(
        text: &[u8],
        from: usize,
        end: usize,
        mut scan_block: impl FnMut(usize, &[u8; B]),
    ) {
        let mut tail;
        let mut pos = from;
        while pos < end {
            let whole = text.get(pos..pos + B).and_then(|b| b.try_into().ok());
            let block: &[u8; B] = match whole {
                Some(block) => block,
                None => {
                    let rest = &text[pos..];
                    tail = [0u8; B];
                    tail[..rest.len()].copy_from_slice(rest);
                    &tail
                }
            };
            scan_block(pos, block);
            pos += B + 1 - WIDTH;
        }
    }

    /// Verifies the candidates `hits` (bits) of the window positions from `base`, where bit `b`
    /// of `lanes[s][i]` says that bucket `8·s + b` admits the bytes at `base + i`.
    fn report<const L: usize, const S: usize>(
        &self,
        text: &[u8],
        base: usize,
        mut hits: u64,
        lanes: &[[u8; L]; S],
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        while hits != 0 {
            let i = hits.trailing_zeros() as usize;
            hits &= hits - 1;
            let p = base + i;
            let word = Fingerprint::word_at(text, p);
            for (s, lane) in lanes.iter().enumerate() {
                let mut bits = lane[i];
                while bits != 0 {
                    let bucket = 8 * s + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    self.verify(text, p, word, bucket, starts, out);
                }
            }
        }
    }

    /// The four (folded) bytes at `p` as a little-endian word, zero past the end of the text.
    #[inline]
    fn word_at(text: &[u8], p: usize) -> u32 {
        match text.get(p..p + WIDTH) {
            Some(w) => u32::from_le_bytes([w[0], w[1], w[2], w[3]]) | 0x2020_2020,
            None => {
                let mut word = [0u8; WIDTH];
                for (w, &b) in word.iter_mut().zip(text.get(p..).unwrap_or_default()) {
                    *w = fold(b);
                }
                u32::from_le_bytes(word)
            }
        }
    }

    /// Checks the literals of `bucket` whose window would lie at `p`, where the text reads
    /// `word` (see [`Fingerprint::word_at`]).
    #[inline]
    fn verify(
        &self,
        text: &[u8],
        p: usize,
        word: u32,
        bucket: usize,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        let members = &self.entries[self.bucket_ends[bucket]..self.bucket_ends[bucket + 1]];
        for e in members {
            if word & e.mask != e.key {
                continue;
            }
            let Some(start) = p.checked_sub(e.offset) else {
                continue;
            };
            let found = match self.literals.get(e.literal) {
                Some(lit) => occurs_at(text, start, lit),
                None => class_at(
                    text,
                    start,
                    &self.class_windows[e.literal - self.literals.len()],
                ),
            };
            if found && starts.contains(&start) {
                out.push((start, e.literal));
            }
        }
    }
}

/// How often, roughly, each folded byte (see [`rarity`]) and each class of folded bytes
/// occurs, as a fraction of all bytes.
struct Frequencies {
    /// By high nibble, then low nibble.
    byte: [[f64; 16]; 16],
    /// `class_octets[k][m]`: the frequency of the classes `8·k + i` for the bits `i` set in
    /// `m`, so that a set of classes is summed in eight lookups (bucket assignment sums
    /// some hundred thousand sets).
    class_octets: [[f64; 256]; 8],
    /// Sums of nibble sets already taken, `(lo << 16 | hi, sum)`, one slot per hash, a later
    /// set evicting an earlier: for the built-in rules, bucket assignment asks 150,000 times
    /// about 11,000 sets. A hit is the sum as [`Frequencies::of_nibbles`] adds it up: summed
    /// another way (exactly, then rounded once) it rounds otherwise, which changed the buckets
    /// of 4 in 10 random literal sets. (The empty slot `(0, 0.0)` is the empty set's sum.)
    nibble_sums: Vec<(u32, f64)>,
}

/// Slots of [`Frequencies::nibble_sums`], as a power of two.
const NIBBLE_SUM_BITS: u32 = 12;

impl Frequencies {
    fn new() -> Frequencies {
        let mut byte = [0.0; 256];
        for (b, x) in byte.iter_mut().enumerate() {
            *x = (-f64::from(rarity(b as u8))).exp2();
        }
        let total: f64 = byte.iter().sum();
        let byte = byte.map(|x| x / total);
        let mut class = [0.0; 64];
        for b in (0..=255u8).filter(|&b| b == fold(b)) {
            class[self::class(b)] += byte[usize::from(b)];
        }
        let mut class_octets = [[0.0; 256]; 8];
        for (k, sums) in class_octets.iter_mut().enumerate() {
            for (m, sum) in sums.iter_mut().enumerate() {
                *sum = (0..8)
                    .filter(|i| m & (1 << i) != 0)
                    .map(|i| class[8 * k + i])
                    .sum();
            }
        }
        Frequencies {
            byte: std::array::from_fn(|h| std::array::from_fn(|l| byte[h << 4 | l])),
            class_octets,
            nibble_sums: vec![(0, 0.0); 1 << NIBBLE_SUM_BITS],
        }
    }

    /// The frequency of a set of classes (bit `c` for class `c`).
    fn of_classes(&self, set: u64) -> f64 {
        let octets = set.to_le_bytes();
        (0..8)
            .map(|k| self.class_octets[k][usize::from(octets[k])])
            .sum()
    }

    /// The frequency of the bytes whose low nibble is in `lo` and high nibble in `hi` (a bit
    /// each), summed in byte order.
    fn of_nibbles(&mut self, lo: u16, hi: u16) -> f64 {
        let key = u32::from(lo) << 16 | u32::from(hi);
        let slot = (key.wrapping_mul(0x9e37_79b9) >> (32 - NIBBLE_SUM_BITS)) as usize;
        if self.nibble_sums[slot].0 == key {
            return self.nibble_sums[slot].1;
        }
        let mut p = 0.0;
        let mut highs = hi;
        while highs != 0 {
            let row = &self.byte[highs.trailing_zeros() as usize & 0xf];
            highs &= highs - 1;
            let mut lows = lo;
            while lows != 0 {
                p += row[lows.trailing_zeros() as usize & 0xf];
                lows &= lows - 1;
            }
        }
        self.nibble_sums[slot] = (key, p);
        p
    }
}

/// The nibbles and the classes a bucket admits at each window position, as bit sets.
#[derive(Clone, Copy, Default)]
struct Shape {
    lo: [u16; WIDTH],
    hi: [u16; WIDTH],
    classes: [u64; WIDTH],
}

impl Shape {
    fn union(&self, other: &Shape) -> Shape {
        let mut u = *self;
        for j in 0..WIDTH {
            u.lo[j] |= other.lo[j];
            u.hi[j] |= other.hi[j];
            u.classes[j] |= other.classes[j];
        }
        u
    }

    /// The shape of a class window: its sets, folded.
    fn of_class(window: &ClassWindow) -> Shape {
        let mut shape = Shape::default();
        for (j, set) in window.iter().enumerate() {
            for &b in set {
                let c = fold(b);
                shape.lo[j] |= 1 << (c & 0xf);
                shape.hi[j] |= 1 << (c >> 4);
                shape.classes[j] |= 1 << class(c);
            }
        }
        for j in window.len()..WIDTH {
            (shape.lo[j], shape.hi[j], shape.classes[j]) = (u16::MAX, u16::MAX, u64::MAX);
        }
        shape
    }

    fn with(mut self, window: &[u8]) -> Shape {
        for j in 0..WIDTH {
            match window.get(j) {
                Some(&c) => {
                    self.lo[j] |= 1 << (c & 0xf);
                    self.hi[j] |= 1 << (c >> 4);
                    self.classes[j] |= 1 << class(c);
                }
                None => (self.lo[j], self.hi[j], self.classes[j]) = (u16::MAX, u16::MAX, u64::MAX),
            }
        }
        self
    }

    /// The chance that a window position of text passes this bucket's tables.
    fn pass_rate(&self, freq: &mut Frequencies, kernel: Kernel) -> f64 {
        if kernel == Kernel::Classes {
            return (0..WIDTH)
                .map(|j| freq.of_classes(self.classes[j]))
                .product();
        }
        (0..WIDTH)
            .map(|j| {
                if self.lo[j] == u16::MAX && self.hi[j] == u16::MAX {
                    return 1.0;
                }
                freq.of_nibbles(self.lo[j], self.hi[j])
            })
            .product()
    }
}

/// Puts each window (folded) in one of `n` buckets, keeping the expected verification work
/// (Σ pass rate × literals, over buckets) low. A bucket admits every combination of its
/// members' nibbles, and a window shorter than [`WIDTH`] admits any byte after its end, so
/// like windows belong together (`mta`, `mte`, `mti`; not `mta` with `secret`). Starting from
/// a bucket per window, the two buckets whose union adds the least work are merged until `n`
/// are left.
fn assign_buckets(windows: &[Vec<u8>], n: usize, kernel: Kernel) -> Vec<Vec<usize>> {
    if windows.len() > MAX_CLUSTERED {
        // Too many for pairwise merging (quadratic memory, cubic time): like windows are
        // neighbours in sorted order, so consecutive runs of it make fair buckets.
        let mut order: Vec<usize> = (0..windows.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(windows[i].len()), &windows[i]));
        let mut buckets = vec![Vec::new(); n];
        for (k, &i) in order.iter().enumerate() {
            buckets[k * n / order.len()].push(i);
        }
        return buckets;
    }
    let mut freq = Frequencies::new();
    let mut clusters: Vec<Option<(Shape, Vec<usize>)>> = windows
        .iter()
        .enumerate()
        .map(|(i, w)| Some((Shape::default().with(w), vec![i])))
        .collect();
    let mut work = |shape: &Shape, size: usize| shape.pass_rate(&mut freq, kernel) * size as f64;
    let mut alone: Vec<f64> = clusters
        .iter()
        .flatten()
        .map(|(shape, members)| work(shape, members.len()))
        .collect();
    // The added work of merging `a` and `b`, for each pair `a < b` of live clusters.
    let m = clusters.len();
    let mut added = vec![f64::INFINITY; m * m];
    let mut merged = |x: &(Shape, Vec<usize>), y: &(Shape, Vec<usize>)| {
        let shape = x.0.union(&y.0);
        (shape, work(&shape, x.1.len() + y.1.len()))
    };
    for a in 0..m {
        for b in a + 1..m {
            if let (Some(x), Some(y)) = (&clusters[a], &clusters[b]) {
                added[a * m + b] = merged(x, y).1 - alone[a] - alone[b];
            }
        }
    }
    // Each cluster's cheapest merge with a later one.
    let row_best = |added: &[f64], a: usize| {
        (a + 1..m)
            .map(|b| (added[a * m + b], b))
            .min_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap_or((f64::INFINITY, a))
    };
    let mut best: Vec<(f64, usize)> = (0..m).map(|a| row_best(&added, a)).collect();
    let mut live = m;
    while live > n {
        let Some(a) = (0..m).min_by(|&x, &y| best[x].0.total_cmp(&best[y].0)) else {
            break;
        };
        let (cost, b) = best[a];
        if !cost.is_finite() || a == b || clusters[a].is_none() || clusters[b].is_none() {
            break;
        }
        let (Some(x), Some(y)) = (clusters[a].take(), clusters[b].take()) else {
            break;
        };
        let (shape, w) = merged(&x, &y);
        let mut members = x.1;
        members.extend(y.1);
        clusters[a] = Some((shape, members));
        alone[a] = w;
        live -= 1;
        for k in 0..m {
            added[k * m + b] = f64::INFINITY;
            added[b * m + k] = f64::INFINITY;
        }
        best[b] = (f64::INFINITY, b);
        for k in (0..m).filter(|&k| k != a) {
            let (lo, hi) = (k.min(a), k.max(a));
            added[lo * m + hi] = match (&clusters[lo], &clusters[hi]) {
                (Some(x), Some(y)) => merged(x, y).1 - alone[lo] - alone[hi],
                _ => f64::INFINITY,
            };
        }
        for k in 0..m {
            if clusters[k].is_none() {
                continue;
            }
            if k == a || best[k].1 == a || best[k].1 == b {
                best[k] = row_best(&added, k);
            } else if k < a && added[k * m + a] < best[k].0 {
                best[k] = (added[k * m + a], a);
            }
        }
    }
    let mut buckets: Vec<Vec<usize>> = clusters.into_iter().flatten().map(|(_, m)| m).collect();
    // (Only if merging stopped early: never drop a literal.)
    while buckets.len() > n.max(1) {
        let extra = buckets.pop().unwrap_or_default();
        if let Some(last) = buckets.last_mut() {
            last.extend(extra);
        }
    }
    buckets.resize(n, Vec::new());
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

    const LANES: usize = 32;
    /// The bytes read for 32 window positions.
    const BLOCK: usize = LANES + WIDTH - 1;

    /// The nibble tables of one window position and table set, in both halves of a register.
    type Tables<const S: usize> = [[__m256i; S]; WIDTH];

    /// Scans window positions `0..end`, 32 at a time, verifying candidates whose literal would
    /// start in `starts`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan<const S: usize>(
        fp: &Fingerprint,
        text: &[u8],
        end: usize,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        let table = |t: &[u8; 16]| {
            // SAFETY: `t` is 16 readable bytes; an unaligned load needs nothing more.
            _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr().cast()) })
        };
        let mut lo: Tables<S> = [[_mm256_setzero_si256(); S]; WIDTH];
        let mut hi: Tables<S> = [[_mm256_setzero_si256(); S]; WIDTH];
        for j in 0..WIDTH {
            for s in 0..S {
                lo[j][s] = table(&fp.lo[j][s]);
                hi[j][s] = table(&fp.hi[j][s]);
            }
        }
        Fingerprint::for_each_block(text, starts.start, end, |pos, block: &[u8; BLOCK]| {
            let acc = fingerprint(&lo, &hi, block);
            let hits = candidates(&acc, end - pos);
            if hits != 0 {
                fp.report(text, pos, u64::from(hits), &lanes(acc), starts, out);
            }
        });
    }

    /// For each of the 32 window positions of `block`: the buckets (one bit each, per table
    /// set) whose tables admit the four bytes there.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn fingerprint<const S: usize>(
        lo: &Tables<S>,
        hi: &Tables<S>,
        block: &[u8; BLOCK],
    ) -> [__m256i; S] {
        let folded = _mm256_set1_epi8(fold(0) as i8);
        let nibble = _mm256_set1_epi8(0xf);
        let mut acc = [_mm256_set1_epi8(-1); S];
        for j in 0..WIDTH {
            // SAFETY: reads `block[j..j + 32]`, within its 35 bytes as `j < 4`.
            let bytes = unsafe { _mm256_loadu_si256(block.as_ptr().add(j).cast()) };
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
        acc
    }

    /// The window positions (bits) among the first `limit` where some bucket's tables admit
    /// the bytes: the loop tests these inline and calls out only for a block with candidates.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn candidates<const S: usize>(acc: &[__m256i; S], limit: usize) -> u32 {
        let mut any = acc[0];
        for a in &acc[1..] {
            any = _mm256_or_si256(any, *a);
        }
        let none = _mm256_cmpeq_epi8(any, _mm256_setzero_si256());
        let hits = !(_mm256_movemask_epi8(none) as u32);
        if limit < LANES {
            hits & ((1u32 << limit) - 1)
        } else {
            hits
        }
    }

    /// The bucket bits of each table set, by window position, for [`Fingerprint::report`].
    #[target_feature(enable = "avx2")]
    fn lanes<const S: usize>(acc: [__m256i; S]) -> [[u8; LANES]; S] {
        let mut lanes = [[0u8; LANES]; S];
        for (lane, a) in lanes.iter_mut().zip(acc) {
            // SAFETY: `lane` is 32 writable bytes.
            unsafe { _mm256_storeu_si256(lane.as_mut_ptr().cast(), a) };
        }
        lanes
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Fingerprint, Range, WIDTH};
    use std::arch::x86_64::*;

    const LANES: usize = 64;
    /// The bytes read for 64 window positions.
    const BLOCK: usize = LANES + WIDTH - 1;

    /// The class table of each window position and table set.
    type Tables<const S: usize> = [[__m512i; S]; WIDTH];

    /// Scans window positions `0..end`, 64 at a time, verifying candidates whose literal would
    /// start in `starts`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 BW and VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn scan<const S: usize>(
        fp: &Fingerprint,
        text: &[u8],
        end: usize,
        starts: &Range<usize>,
        out: &mut Vec<(usize, usize)>,
    ) {
        let mut tables: Tables<S> = [[_mm512_setzero_si512(); S]; WIDTH];
        for (position, classes) in tables.iter_mut().zip(&fp.classes) {
            for (table, class) in position.iter_mut().zip(classes) {
                // SAFETY: `class` is 64 readable bytes; an unaligned load needs nothing more.
                *table = unsafe { _mm512_loadu_si512(class.as_ptr().cast()) };
            }
        }
        Fingerprint::for_each_block(text, starts.start, end, |pos, block: &[u8; BLOCK]| {
            let acc = fingerprint(&tables, block);
            let hits = candidates(&acc, end - pos);
            if hits != 0 {
                fp.report(text, pos, hits, &lanes(acc), starts, out);
            }
        });
    }

    /// For each of the 64 window positions of `block`: the buckets (one bit each, per table
    /// set) whose tables admit the four bytes there.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    #[inline]
    fn fingerprint<const S: usize>(tables: &Tables<S>, block: &[u8; BLOCK]) -> [__m512i; S] {
        let low5 = _mm512_set1_epi8(0x1f);
        let mut acc = [_mm512_set1_epi8(-1); S];
        for (j, tables) in tables.iter().enumerate() {
            // SAFETY: reads `block[j..j + 64]`, within its 67 bytes as `j < 4`.
            let bytes = unsafe { _mm512_loadu_si512(block.as_ptr().add(j).cast()) };
            // Each byte's class (`super::class`): bits 0-4 from the byte and bit 5 from the
            // byte shifted right by one (0xE4 selects the first operand where the third has
            // a 1). The bits above are junk that `vpermb` ignores.
            let class = _mm512_ternarylogic_epi32::<0xE4>(bytes, _mm512_srli_epi16(bytes, 1), low5);
            for (a, table) in acc.iter_mut().zip(tables) {
                *a = _mm512_and_si512(*a, _mm512_permutexvar_epi8(class, *table));
            }
        }
        acc
    }

    /// The window positions (bits) among the first `limit` where some bucket's tables admit
    /// the bytes.
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    fn candidates<const S: usize>(acc: &[__m512i; S], limit: usize) -> u64 {
        let mut any = acc[0];
        for a in &acc[1..] {
            any = _mm512_or_si512(any, *a);
        }
        let hits = _mm512_test_epi8_mask(any, any);
        if limit < LANES {
            hits & ((1u64 << limit) - 1)
        } else {
            hits
        }
    }

    /// The bucket bits of each table set, by window position, for [`Fingerprint::report`].
    #[target_feature(enable = "avx512f")]
    fn lanes<const S: usize>(acc: [__m512i; S]) -> [[u8; LANES]; S] {
        let mut lanes = [[0u8; LANES]; S];
        for (lane, a) in lanes.iter_mut().zip(acc) {
            // SAFETY: `lane` is 64 writable bytes.
            unsafe { _mm512_storeu_si512(lane.as_mut_ptr().cast(), a) };
        }
        lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every occurrence, the longest literal at each start, then the class windows, by brute
    /// force.
    fn naive_with(
        lits: &[Vec<u8>],
        classes: &[ClassWindow],
        text: &[u8],
        from: usize,
        to: usize,
    ) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for start in from..to.min(text.len()) {
            let best = (0..lits.len())
                .filter(|&i| {
                    text.get(start..start + lits[i].len())
                        .is_some_and(|t| t.eq_ignore_ascii_case(&lits[i]))
                })
                .max_by_key(|&i| (lits[i].len(), std::cmp::Reverse(i)));
            out.extend(best.map(|i| (start, i)));
            for (k, class) in classes.iter().enumerate() {
                let found = text
                    .get(start..start + class.len())
                    .is_some_and(|t| t.iter().zip(class).all(|(b, set)| set.contains(b)));
                if found {
                    out.push((start, lits.len() + k));
                }
            }
        }
        out
    }

    fn naive(lits: &[Vec<u8>], text: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
        naive_with(lits, &[], text, from, to)
    }

    fn search(p: &Prefilter, text: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        p.find_starting_in(text, from..to, &mut out);
        out
    }

    fn builds(lits: &[Vec<u8>]) -> Vec<Prefilter> {
        builds_with(lits, &[])
    }

    /// The prefilter with each kernel this CPU runs.
    fn builds_with(lits: &[Vec<u8>], classes: &[ClassWindow]) -> Vec<Prefilter> {
        kernels()
            .into_iter()
            .map(|k| Prefilter::build(lits, classes, k).unwrap())
            .collect()
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
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(300)))]
        #[test]
        fn finds_what_brute_force_finds(
            lits in literal_set(),
            classes in prop::collection::vec(
                prop::collection::vec(
                    prop::sample::subsequence(b"aAbB\\\"_:-@`\x7f\n".to_vec(), 1..5),
                    1..=WIDTH,
                ),
                0..3,
            ),
            text in prop::collection::vec(prop::sample::select(b"aAbB\\\"_:-@`\x7f\n".to_vec()), 0..300),
            cut in (0usize..300, 0usize..300),
        ) {
            let (from, to) = (cut.0.min(cut.1), cut.0.max(cut.1));
            let want = naive_with(&lits, &classes, &text, from, to);
            for p in builds_with(&lits, &classes) {
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

    proptest! {
        #[test]
        fn every_window_gets_one_bucket(
            windows in prop::sample::select(vec![1..120usize, 500..600]).prop_flat_map(|sizes| {
                prop::collection::vec(prop::collection::vec(b'a'..b'h', 1..5), sizes)
            }),
            n in 1usize..33,
        ) {
            let buckets = assign_buckets(&windows, n, Kernel::Classes);
            prop_assert_eq!(buckets.len(), n);
            let mut all: Vec<usize> = buckets.concat();
            all.sort_unstable();
            prop_assert_eq!(all, (0..windows.len()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn like_windows_share_buckets() {
        let windows: Vec<Vec<u8>> = ["mta", "mte", "mti", "secr", "sk-", "toke", "mtc", "pass"]
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .collect();
        for kernel in [Kernel::Nibbles, Kernel::Classes] {
            let buckets = assign_buckets(&windows, 4, kernel);
            let of = |i: usize| buckets.iter().position(|b| b.contains(&i));
            assert_eq!(of(0), of(1));
            assert_eq!(of(0), of(6));
            assert_ne!(of(0), of(3));
        }
    }

    #[test]
    fn windows_avoid_common_bytes() {
        assert_eq!(rarest_window(b"\\\"password"), 6);
        assert_eq!(rarest_window(b"sk-"), 0);
        assert_eq!(rarest_window(b"x-api-key"), 0);
    }
}
