//! Converts the built-in rule packs (`patterns/*.toml`) to JSON for the binary to embed: the
//! start-up parse of 200 KB of TOML cost 12 M instructions, a seventh of start-up, and the
//! same packs as JSON cost 3 M. The TOML files stay the source; a pack that does not parse
//! fails the build here, with the parser's message.

use std::path::Path;
use std::{env, fs};

fn main() {
    // A directory is rescanned whole: an edited, added or removed pack reruns this script.
    println!("cargo:rerun-if-changed=patterns");
    let out = env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let manifest = env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    // A pack removed or renamed since the last build must not live on in its old JSON: the
    // binary names each pack it embeds, and a stale file would still compile.
    for entry in fs::read_dir(&out).expect("OUT_DIR can be listed") {
        let path = entry.expect("OUT_DIR can be listed").path();
        if path.extension().is_some_and(|e| e == "json") {
            fs::remove_file(&path).expect("OUT_DIR is writable");
        }
    }
    let packs = fs::read_dir(Path::new(&manifest).join("patterns"))
        .expect("patterns/ holds the built-in rule packs");
    for entry in packs {
        let path = entry.expect("patterns/ can be listed").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a rule pack is UTF-8 text");
        let pack: toml::Value = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid TOML: {e}", path.display()));
        let json = serde_json::to_string(&pack).expect("a TOML value converts to JSON");
        let stem = path.file_stem().expect("a .toml file has a stem");
        let target = Path::new(&out).join(stem).with_extension("json");
        fs::write(&target, json).expect("OUT_DIR is writable");
    }
}
