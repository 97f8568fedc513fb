//! Arbitrary bytes through `scrub_bytes`: never panics, and the line structure is kept
//! (redaction replaces text inside a line; it never adds or removes a newline).
#![no_main]

use std::sync::OnceLock;

use clawscrub::Scrubber;
use libfuzzer_sys::fuzz_target;

fn scrubber() -> &'static Scrubber {
    static S: OnceLock<Scrubber> = OnceLock::new();
    S.get_or_init(|| Scrubber::builder().build().expect("built-in rules compile"))
}

fn newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fuzz_target!(|data: &[u8]| {
    let out = scrubber().scrub_bytes(data);
    assert_eq!(
        newlines(&out),
        newlines(data),
        "newline count changed\n input: {:?}\noutput: {:?}",
        String::from_utf8_lossy(data),
        String::from_utf8_lossy(&out),
    );
});
