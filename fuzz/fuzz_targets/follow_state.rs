//! Arbitrary bytes as a `follow --state` checkpoint: rejected with an error, or accepted and
//! then written back and read again unchanged. Never a panic.

#![no_main]

use clawscrub::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = Checkpoint::parse(data) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("clawscrub-fuzz-state-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("state.json");
    state
        .save(&path)
        .expect("an accepted checkpoint can be written");
    let again = Checkpoint::load(&path)
        .expect("a written checkpoint can be read")
        .expect("it exists");
    assert_eq!(again, state);
});
