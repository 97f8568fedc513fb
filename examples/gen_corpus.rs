//! Writes a generated OpenClaw-like corpus for whole-process timings:
//! `cargo run --release --example gen_corpus -- OUT.jsonl SIZE_MB [DENSITY] [session|tslog|plain|mixed]`.

use std::process::ExitCode;

use clawscrub::sample as corpus;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gen_corpus OUT SIZE_MB [DENSITY=0.001] [session|tslog|plain|mixed]";
    let (Some(out), Some(Ok(mb))) = (args.first(), args.get(1).map(|s| s.parse::<usize>())) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let density = match args.get(2).map(|s| s.parse::<f64>()) {
        None => 0.001,
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let shape = match args.get(3).map(String::as_str) {
        None | Some("mixed") => corpus::Shape::Mixed,
        Some("session") => corpus::Shape::Session,
        Some("tslog") => corpus::Shape::Tslog,
        Some("plain") => corpus::Shape::Plain,
        Some(_) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let c = corpus::generate(42, mb << 20, shape, density);
    if let Err(e) = std::fs::write(out, &c.bytes) {
        eprintln!("gen_corpus: {out}: {e}");
        return ExitCode::from(2);
    }
    eprintln!(
        "gen_corpus: {} bytes, {} secrets planted, {} decoys",
        c.bytes.len(),
        c.secrets.len(),
        c.decoys.len()
    );
    ExitCode::SUCCESS
}
