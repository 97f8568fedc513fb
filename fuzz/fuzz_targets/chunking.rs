//! Read boundaries must not matter: the input fed through a reader that returns chunks of
//! fuzzer-chosen sizes comes out of `scrub` byte-identical to `scrub_bytes` of the whole.
//!
//! Layout of the fuzz input: byte 0 = number of size bytes `k` (taken mod 8, at least 1),
//! then `k` bytes of read sizes (each 1..=256, cycled; a size byte of 0 means a read of
//! 4097 bytes, so block-sized jumps are exercised too), then the text to scrub.
#![no_main]

use std::io::{self, Read};
use std::sync::OnceLock;

use clawscrub::Scrubber;
use libfuzzer_sys::fuzz_target;

fn scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::builder().build().expect("built-in rules compile"))
}

/// Hands out `data` in reads of the given sizes, cycling through them.
struct Chunked<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        let size = match self.sizes[self.next % self.sizes.len()] {
            0 => 4097,
            s => s as usize,
        };
        self.next += 1;
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = (k as usize % 8).max(1);
    if rest.len() < k {
        return;
    }
    let (sizes, text) = rest.split_at(k);
    let s = scrubber();
    let whole = s.scrub_bytes(text);
    let mut chunked = Vec::with_capacity(text.len());
    s.scrub(
        Chunked {
            data: text,
            sizes,
            next: 0,
        },
        &mut chunked,
    )
    .expect("reading a slice and writing a Vec cannot fail");
    if chunked != whole {
        panic!(
            "chunked output differs (read sizes {:?})\n   input: {:?}\n   whole: {:?}\n chunked: {:?}",
            sizes,
            String::from_utf8_lossy(text),
            String::from_utf8_lossy(&whole),
            String::from_utf8_lossy(&chunked),
        );
    }
});
