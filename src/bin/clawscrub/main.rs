//! The `clawscrub` command: a thin CLI over the library.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod follow;
mod tree;

use clawscrub::{
    check_examples, lint, openclaw, sample, Category, Error, Mask, RulePack, Scrubber, Stats,
};

/// Removes secrets (API keys, tokens, passwords, private keys, internal IPs) from logs and
/// JSONL agent transcripts. Reads FILEs (or stdin) and writes the scrubbed text to stdout.
#[derive(Parser, Debug)]
#[command(
    name = "clawscrub",
    version,
    after_help = "\
Examples:
  tail -f /tmp/openclaw/openclaw-$(date +%F).log | clawscrub
  clawscrub --mask openclaw session.jsonl > session.scrubbed.jsonl
  clawscrub --pattern 'internal\\.corp' --stats app.log > app.clean.log
  clawscrub rules list
  clawscrub rules test my-rules.toml

JSON lines are scrubbed inside string values only (escapes and nested JSON included), so the
output stays valid JSON. Structural transcript fields (id, parentId, toolCallId, type, role,
timestamp, thinkingSignature) are never changed.

Exit status: 0 done, 1 `rules test` failures, 2 usage, configuration or input errors."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    rules: RuleArgs,
    /// Files to scrub, in order, to stdout; `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print counts per rule at exit, to stderr (`--stats` or `--stats=json`).
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text", require_equals = true)]
    stats: Option<StatsFormat>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Scrub files on disk: a sessions tree, logs, SQLite transcript stores, in parallel.
    #[command(after_help = "\
Examples:
  clawscrub scrub --in-place                       # OpenClaw's state dir (~/.openclaw)
  clawscrub scrub --in-place --backup-suffix .orig ~/.openclaw/agents
  clawscrub scrub --out /tmp/clean ~/.openclaw/agents/main/sessions
  clawscrub scrub --in-place --glob '*.txt' --threads 2 ./exports

Directories are walked for *.jsonl and *.log files (--glob changes that) and OpenClaw's SQLite
transcript stores (openclaw-agent.sqlite); credentials/ and auth-profiles.json are never
touched, nor symlinks leading out of the tree. In place, each file is rewritten through a
synced temporary file renamed over it, so a crash leaves it wholly old or wholly new; lines
appended while it is scrubbed are scrubbed too. A file with nothing to redact is not written.

Exit status: 0 done, 1 some files failed (each reported, and left unchanged unless the report
says otherwise), 2 usage or configuration errors.")]
    Scrub(ScrubArgs),
    /// Audit files on disk, read-only: where each secret is and which rule found it (never
    /// the secret); exit 1 when anything is found, so it can gate CI.
    #[command(after_help = "\
Examples:
  clawscrub check                                  # OpenClaw's state dir (~/.openclaw)
  clawscrub check --summary ~/.openclaw/agents     # which sessions hold which kinds
  clawscrub check --format sarif . > clawscrub.sarif

Exit status: 0 nothing found, 1 secrets found, 2 errors (unreadable files included).")]
    Check(CheckArgs),
    /// Follow log files like `tail -F` and write them scrubbed, surviving rotation, restarts
    /// and crashes: a log shipper sidecar.
    #[command(after_help = "\
Examples:
  clawscrub follow '/tmp/openclaw/openclaw-*.log'
  clawscrub follow --from-beginning --state /var/lib/clawscrub/state.json \\
      --out-dir /var/log/openclaw-clean '/tmp/openclaw/openclaw-*.log'
  clawscrub follow --json --metrics-addr 127.0.0.1:9464 ~/.openclaw/logs/gateway.log

Files present at start are read from their end (--from-beginning: their start); files that
appear later, from their start. A file renamed away (rotation) is read to its end; a file that
shrinks (copytruncate) is read again from 0. With --state, a restart resumes just after the
last line written: with --out-dir exactly once (output written after the last checkpoint is
cut off and written again); on stdout, the lines after the last checkpoint may come out twice.
SIGTERM/SIGINT: flush, checkpoint, exit 0. SIGHUP: reopen --out-dir files.")]
    Follow(FollowArgs),
    /// Show or check the redaction rules.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// Which files a bulk command works on.
#[derive(Args, Debug)]
struct TreeArgs {
    /// Files and directories; none means OpenClaw's state dir ($OPENCLAW_STATE_DIR or
    /// ~/.openclaw): agents/*/sessions/*.jsonl, logs/*.log, logs/*.jsonl and the
    /// agents/*/agent/openclaw-agent.sqlite transcript stores.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// File names to take in directories (default `*.jsonl` and `*.log`); a pattern with a
    /// `/` matches the path below the directory given. Repeatable.
    #[arg(long, value_name = "GLOB")]
    glob: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct ScrubArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// Rewrite each file in place (atomically: temporary file, fsync, rename).
    #[arg(long, conflicts_with = "out", required_unless_present = "out")]
    in_place: bool,
    /// Write the scrubbed files under DIR at their paths relative to each PATH instead.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Keep each rewritten file's modification time.
    #[arg(long)]
    keep_mtime: bool,
    /// Keep each original rewritten in place as FILE+SUFFIX (a hard link).
    #[arg(long, value_name = "SUFFIX", requires = "in_place")]
    backup_suffix: Option<std::ffi::OsString>,
    /// The summary as text (default) or JSON, on stderr.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "text", require_equals = true)]
    stats: Option<StatsFormat>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// Report format: text (`path:line:column rule-id`), json (one object per line) or sarif
    /// (SARIF 2.1.0).
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
    /// One line per file instead of per finding: its kinds and rules of secret, and its
    /// first and last timestamp (text or json).
    #[arg(long)]
    summary: bool,
}

#[derive(Args, Debug)]
struct FollowArgs {
    /// Files, or globs in the file name (`/tmp/openclaw/openclaw-*.log`; quote them).
    #[arg(value_name = "PATH|GLOB", required = true)]
    paths: Vec<PathBuf>,
    /// Read files present at start from their beginning.
    #[arg(long)]
    from_beginning: bool,
    /// Write `{"path":…,"line":…}` objects instead of bare lines.
    #[arg(long)]
    json: bool,
    /// Mirror each input file as a scrubbed file in DIR instead of writing to stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Checkpoint file: device, inode, fingerprint and offset of each file, written
    /// atomically after the output it covers is flushed (and fsynced with --out-dir).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Seconds to hold a last line without its newline before writing it as it is.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
    partial_timeout: f64,
    /// Seconds between looks at the files when no file-system event comes.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_seconds)]
    poll_interval: f64,
    /// Serve Prometheus metrics on this loopback address (lines, bytes, redactions by rule,
    /// files followed, lag per file).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Print id, category, description and trigger of every active rule.
    List,
    /// Check every example and negative example of the built-in packs and of FILEs
    /// (rule files in clawscrub's TOML format), and that no `hit_check` holds back what its
    /// regex finds in the examples stretched (one character repeated past each bound of the
    /// check); exit 1 on any failure.
    Test {
        /// Extra rule files to check.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Flag rules that will be slow or blind (no anchor literal, anchors under 3 bytes,
    /// Unicode classes where ASCII would do), then time each rule alone on a sample; exit 1 on
    /// any flag.
    Lint {
        /// Sample to time the rules on (default: 8 MB of generated OpenClaw-like JSONL).
        #[arg(long, value_name = "FILE")]
        sample: Option<PathBuf>,
        /// Only the static checks, no timing.
        #[arg(long)]
        no_cost: bool,
    },
    /// Show which rule finds what where in TEXT (or in each line of stdin), with every
    /// secret masked: `clawscrub rules explain 'curl -H "x-api-key: sk-ant-…"'`.
    Explain {
        /// Text to explain; none reads stdin.
        #[arg(value_name = "TEXT")]
        text: Vec<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StatsFormat {
    Text,
    Json,
}

/// Which rules run and how secrets are masked.
#[derive(Args, Debug, Clone)]
struct RuleArgs {
    /// Replacement style: tag ([REDACTED:rule-id]), openclaw (sk-123…cdef, as OpenClaw shows),
    /// hash ([REDACTED:rule-id:HMAC8], needs a key) or fixed=TEXT (3 characters or more, one
    /// of them not a letter, digit or -_+/=., so that secrets are unlikely to hold it:
    /// '<redacted>', '***').
    #[arg(long, value_name = "STYLE", default_value = "tag", global = true)]
    mask: String,
    /// File holding the HMAC key for `--mask hash` (else the CLAWSCRUB_HASH_KEY variable).
    #[arg(long, value_name = "PATH", global = true)]
    hash_key_file: Option<PathBuf>,
    /// OpenClaw config whose logging.redactPatterns are added to the rules. Default:
    /// $OPENCLAW_STATE_DIR/openclaw.json or ~/.openclaw/openclaw.json, when it exists.
    #[arg(long, value_name = "PATH", global = true)]
    openclaw_config: Option<PathBuf>,
    /// Do not read any OpenClaw config.
    #[arg(long, global = true, conflicts_with = "openclaw_config")]
    no_openclaw_config: bool,
    /// Skip (with a warning) user patterns and gitleaks rules a linear-time engine cannot run,
    /// instead of failing.
    #[arg(long, global = true)]
    lenient: bool,
    /// Use only user rules (--pattern, --rules, redactPatterns), not the built-in packs.
    #[arg(long, global = true)]
    no_builtin: bool,
    /// Add a pattern, written like an OpenClaw redactPatterns entry: a JavaScript regex
    /// source (matched case-insensitively) or /body/flags. Repeatable.
    #[arg(long, value_name = "REGEX", global = true)]
    pattern: Vec<String>,
    /// Add the rules of a TOML rule file: clawscrub's format (as the built-in packs) or a
    /// gitleaks config (`[[rules]]` with regex, secretGroup, keywords, entropy, allowlists).
    /// Repeatable.
    #[arg(long, value_name = "FILE", global = true)]
    rules: Vec<PathBuf>,
    /// Turn a rule off by id. Repeatable.
    #[arg(long, value_name = "ID", global = true)]
    disable: Vec<String>,
    /// Turn on an opt-in rule by id. Repeatable.
    #[arg(long, value_name = "ID", global = true)]
    enable: Vec<String>,
    /// Keep only rules of this category: key, token, credential, network, pii, custom. Repeatable.
    #[arg(long, value_name = "CATEGORY", global = true, value_parser = parse_category)]
    only: Vec<Category>,
    /// Also redact the whole string value of this JSON key. Repeatable.
    #[arg(long, value_name = "KEY", global = true)]
    sensitive_key: Vec<String>,
    /// Never change string values of this JSON key. Repeatable.
    #[arg(long, value_name = "KEY", global = true)]
    structural_key: Vec<String>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of seconds between 0 and 86400"
        )),
    }
}

fn parse_category(s: &str) -> Result<Category, String> {
    Category::from_name(s).ok_or_else(|| {
        format!("unknown category `{s}` (key, token, credential, network, pii, custom)")
    })
}

/// An error already reported, carrying the exit code.
struct Exit(u8);

fn report(err: &Error) -> Exit {
    eprintln!("clawscrub: {err}");
    Exit(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        // Rule flags are global: `clawscrub --only key rules list` and
        // `clawscrub rules list --only key` both work.
        Some(Command::Rules(RulesCommand::List)) => list_rules(&cli.rules),
        Some(Command::Rules(RulesCommand::Test { files })) => {
            let files: Vec<PathBuf> = files.iter().chain(&cli.rules.rules).cloned().collect();
            test_rules(&files, cli.rules.lenient)
        }
        Some(Command::Rules(RulesCommand::Lint { sample, no_cost })) => {
            lint_rules(&cli.rules, sample.as_deref(), *no_cost)
        }
        Some(Command::Rules(RulesCommand::Explain { text })) => explain(&cli.rules, text),
        Some(Command::Scrub(args)) => cli.rules.build().and_then(|s| tree::scrub(s, args)),
        Some(Command::Check(args)) => cli.rules.build().and_then(|s| tree::check(s, args)),
        Some(Command::Follow(args)) => cli.rules.build().and_then(|s| follow::follow(s, args)),
        None => filter(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(code)) => ExitCode::from(code),
    }
}

impl RuleArgs {
    /// The scrubber lives until the process exits: freeing its hundreds of regexes and tables
    /// would cost about a millisecond, for nothing (a tenth of the start-up).
    fn build(&self) -> Result<&'static Scrubber, Exit> {
        let hash_key = match &self.hash_key_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| report(&Error::io(path, e)))?),
            None => std::env::var_os("CLAWSCRUB_HASH_KEY").map(|k| k.into_encoded_bytes()),
        };
        let hash_key = hash_key.map(|mut k| {
            // A key file usually ends in a newline that is not part of the key.
            while k.last().is_some_and(|b| b.is_ascii_whitespace()) {
                k.pop();
            }
            k
        });
        let mask = Mask::parse(&self.mask, hash_key).map_err(|e| report(&e))?;
        let mut builder = Scrubber::builder().builtin(!self.no_builtin).mask(mask);
        for pack in self.user_packs()? {
            builder = builder.pack(pack);
        }
        for id in &self.disable {
            builder = builder.disable(id);
        }
        for id in &self.enable {
            builder = builder.enable(id);
        }
        for &c in &self.only {
            builder = builder.only(c);
        }
        for k in &self.sensitive_key {
            builder = builder.sensitive_key(k);
        }
        for k in &self.structural_key {
            builder = builder.structural_key(k);
        }
        let scrubber = builder.build().map_err(|e| report(&e))?;
        Ok(Box::leak(Box::new(scrubber)))
    }

    /// The rule packs the user adds: OpenClaw's redactPatterns, `--pattern`s, `--rules` files.
    fn user_packs(&self) -> Result<Vec<RulePack>, Exit> {
        let mut packs = Vec::new();
        let config = match (&self.openclaw_config, self.no_openclaw_config) {
            (_, true) => None,
            (Some(path), false) => Some(path.clone()),
            (None, false) => openclaw::default_config_path(),
        };
        if let Some(path) = config {
            let patterns = openclaw::read_redact_patterns(&path).map_err(|e| report(&e))?;
            let origin = format!("{}: logging.redactPatterns", path.display());
            packs.push(self.user_pack(&origin, "redact-pattern-", &patterns)?);
        }
        if !self.pattern.is_empty() {
            packs.push(self.user_pack("--pattern", "pattern-", &self.pattern)?);
        }
        for path in &self.rules {
            packs.push(load_rule_file(path, self.lenient)?);
        }
        Ok(packs)
    }

    fn user_pack(&self, origin: &str, prefix: &str, patterns: &[String]) -> Result<RulePack, Exit> {
        let (pack, warnings) = openclaw::patterns_to_pack(origin, prefix, patterns, self.lenient)
            .map_err(|e| report(&e))?;
        for w in warnings {
            eprintln!("clawscrub: warning: {w}");
        }
        Ok(pack)
    }
}

trait IoContext {
    fn io(path: &std::path::Path, e: io::Error) -> Error;
}

impl IoContext for Error {
    fn io(path: &std::path::Path, e: io::Error) -> Error {
        Error::Io {
            context: path.display().to_string(),
            source: e,
        }
    }
}

fn filter(cli: &Cli) -> Result<(), Exit> {
    let scrubber = cli.rules.build()?;
    let stdout = io::stdout();
    let mut total = Stats::default();
    let mut failed = false;
    let stdin_only = [PathBuf::from("-")];
    let files = if cli.files.is_empty() {
        &stdin_only[..]
    } else {
        &cli.files[..]
    };
    for path in files {
        let result = if path.as_os_str() == "-" {
            scrubber.scrub(io::stdin().lock(), stdout.lock())
        } else {
            match File::open(path) {
                Ok(file) => scrubber.scrub(file, stdout.lock()),
                Err(e) => Err(Error::io(path, e)),
            }
        };
        match result {
            Ok(stats) => total.merge(&stats),
            Err(e) if e.is_broken_pipe() => return Ok(()),
            Err(Error::Io { context, source }) if context == "reading input" => {
                eprintln!("clawscrub: {}: {source}", path.display());
                failed = true;
            }
            Err(e) => {
                let _ = report(&e);
                failed = true;
            }
        }
    }
    match cli.stats {
        Some(StatsFormat::Text) => eprint!("{}", total.to_text()),
        Some(StatsFormat::Json) => eprintln!("{}", total.to_json()),
        None => {}
    }
    if failed {
        Err(Exit(2))
    } else {
        Ok(())
    }
}

fn list_rules(args: &RuleArgs) -> Result<(), Exit> {
    let scrubber = args.build()?;
    let mut out = io::stdout().lock();
    let rules = scrubber.rules();
    let width = rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for r in &rules {
        let line = format!(
            "{:width$}  {:10}  {}  [{}]\n",
            r.id,
            r.category.name(),
            r.description,
            r.trigger
        );
        if out.write_all(line.as_bytes()).is_err() {
            return Ok(()); // Broken pipe: `clawscrub rules list | head`.
        }
    }
    let _ = writeln!(out, "{} rules", rules.len());
    Ok(())
}

fn lint_rules(
    args: &RuleArgs,
    sample: Option<&std::path::Path>,
    no_cost: bool,
) -> Result<(), Exit> {
    let mut packs = if args.no_builtin {
        Vec::new()
    } else {
        RulePack::builtin()
    };
    packs.extend(args.user_packs()?);
    let lints = lint::lint(&packs).map_err(|e| report(&e))?;
    let mut out = io::stdout().lock();
    for l in &lints {
        let _ = writeln!(out, "{}: {}: {}", l.origin, l.rule, l.message);
    }
    let rules: usize = packs.iter().map(|p| p.rules.len()).sum();
    let _ = writeln!(out, "{rules} rules, {} flagged", lints.len());
    if !no_cost {
        let sample = match sample {
            Some(path) => std::fs::read(path).map_err(|e| report(&Error::io(path, e)))?,
            None => sample::generate(7, 8 << 20, sample::Shape::Mixed, 0.01).bytes,
        };
        let costs = lint::measure_costs(&packs, &sample, 3).map_err(|e| report(&e))?;
        let _ = writeln!(
            out,
            "\ncost of each rule alone on {} bytes (slowest first):\n{:>10}  {:>10}  rule",
            sample.len(),
            "MB/s",
            "redactions"
        );
        for c in &costs {
            let _ = writeln!(
                out,
                "{:>10.0}  {:>10}  {}",
                c.mb_per_s, c.redactions, c.rule
            );
        }
    }
    if lints.is_empty() {
        Ok(())
    } else {
        Err(Exit(1))
    }
}

fn explain(args: &RuleArgs, text: &[String]) -> Result<(), Exit> {
    let scrubber = args.build()?;
    let input = if text.is_empty() {
        let mut input = Vec::new();
        io::Read::read_to_end(&mut io::stdin().lock(), &mut input)
            .map_err(|e| report(&Error::io(std::path::Path::new("stdin"), e)))?;
        input
    } else {
        text.join("\n").into_bytes()
    };
    let rules = scrubber.rules();
    let findings = scrubber.findings(&input);
    let scrubbed = scrubber.scrub_bytes(&input);
    let mut out = io::stdout().lock();
    for (n, line) in scrubbed.split(|&b| b == b'\n').enumerate() {
        let here: Vec<_> = findings.iter().filter(|f| f.line == n as u64 + 1).collect();
        if line.is_empty() && here.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}: {}", n + 1, String::from_utf8_lossy(line));
        if here.is_empty() {
            let _ = writeln!(out, "   no secret found");
        }
        for f in here {
            let description = rules
                .iter()
                .find(|r| r.id == f.rule)
                .map_or("", |r| r.description.as_str());
            let _ = writeln!(
                out,
                "   bytes {}..{} ({} bytes): {} [{}] {}",
                f.start,
                f.end,
                f.end - f.start,
                f.rule,
                f.category,
                description
            );
        }
    }
    Ok(())
}

/// Reads a `--rules` file (clawscrub or gitleaks format), printing conversion warnings.
fn load_rule_file(path: &std::path::Path, lenient: bool) -> Result<RulePack, Exit> {
    let text = std::fs::read_to_string(path).map_err(|e| report(&Error::io(path, e)))?;
    let (pack, warnings) =
        RulePack::load(&path.display().to_string(), &text, lenient).map_err(|e| report(&e))?;
    for w in warnings {
        eprintln!("clawscrub: warning: {w}");
    }
    Ok(pack)
}

fn test_rules(files: &[PathBuf], lenient: bool) -> Result<(), Exit> {
    let mut packs = RulePack::builtin();
    for path in files {
        packs.push(load_rule_file(path, lenient)?);
    }
    let (mut failed, mut checked) = (0, 0);
    for pack in &packs {
        let (failures, n) = check_examples(pack).map_err(|e| report(&e))?;
        checked += n;
        for f in &failures {
            failed += 1;
            println!(
                "FAIL {} {} {}\n  input:    {:?}\n  expected: {:?}\n  actual:   {:?}",
                f.origin, f.rule, f.which, f.input, f.expected, f.actual
            );
        }
    }
    println!("{} passed, {} failed", checked - failed, failed);
    if failed > 0 {
        Err(Exit(1))
    } else {
        Ok(())
    }
}
