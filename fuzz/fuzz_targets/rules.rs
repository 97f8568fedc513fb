//! User rules from arbitrary text: OpenClaw `redactPatterns` entries (what `--pattern` and
//! `logging.redactPatterns` go through) and rule files (clawscrub TOML or gitleaks
//! `[[rules]]`, what `--rules` goes through). Building a scrubber from them either fails with a
//! clean error or gives a scrubber that works: scrubbing a fixed ~4 KB sample plus the fuzz text
//! finishes, keeps the number of lines, and keeps the sample's JSON lines valid JSON.
//!
//! Nothing is asserted about time (a timing ratio is too flaky on a shared 2-core machine);
//! libFuzzer's `-timeout` (30 s in `run.sh`) catches a rule that makes scrubbing blow up.
//! The built-in rules are left out: building them takes seconds per input in an instrumented
//! build, and the user rules are what is under test here.
//!
//! Layout of the fuzz input: byte 0 holds flags (bit 0: a rule file, else patterns; bit 1:
//! lenient; bit 2: OpenClaw's mask style, else tags), so the ASCII digits `0`–`7` spell every
//! combination; the rest is the text. Patterns are one a line (or `\0`-separated when the text
//! holds a `\0`, so that a pattern can contain a line break), at most 8.
#![no_main]

use clawscrub::{openclaw, Mask, RulePack, Scrubber};
use libfuzzer_sys::fuzz_target;

/// Realistic input: an OpenClaw session (JSONL, nested tool result, escapes), a tslog line, a
/// plain gateway log, an env file and a PEM block.
const SAMPLE: &str = concat!(
    r#"{"type":"session","version":3,"id":"5d0c1f0e-6a53-4bd1-9a43-2f0c7e4f1b2a","timestamp":"2026-03-11T08:31:23.799Z","cwd":"/home/molt/.openclaw/workspace"}"#,
    "\n",
    r#"{"type":"model_change","id":"2c472eb0","parentId":null,"timestamp":"2026-03-11T08:31:23.803Z","provider":"anthropic","modelId":"claude-opus-4-5"}"#,
    "\n",
    r#"{"type":"message","id":"813a837d","parentId":"2c472eb0","timestamp":"2026-03-11T08:32:01.120Z","message":{"role":"user","content":[{"type":"text","text":"deploy the staging box at 10.20.0.14, the key is sk-proj-dnGN9ojVu8pVF7y0wfU8VWyGAM4hRcp7509hQkVO"}],"timestamp":1773217921120}}"#,
    "\n",
    r#"{"type":"message","id":"dd433acd","parentId":"813a837d","timestamp":"2026-03-11T08:32:09.471Z","message":{"role":"assistant","content":[{"type":"thinking","thinking":"I should check the service first.","thinkingSignature":"c2a2f355d04987bcf2946e5e577e078eea8a52fad6ce3090411d4534d2e2d050"},{"type":"toolCall","id":"call_h2qhff6fkoax_1","name":"exec","arguments":{"command":"curl -s http:\/\/10.20.0.14:8080\/health -H \"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZXBsb3kifQ.4pXcJ2xg1kVb8Qz7TrW3nYs5\""}}],"api":"anthropic-messages","provider":"anthropic","model":"claude-opus-4-5","usage":{"input":28,"output":167,"totalTokens":16647},"stopReason":"toolUse","timestamp":1773217929471}}"#,
    "\n",
    r#"{"type":"message","id":"e0f1c758","parentId":"dd433acd","timestamp":"2026-03-11T08:32:09.544Z","message":{"role":"toolResult","toolCallId":"call_h2qhff6fkoax_1","toolName":"exec","content":[{"type":"text","text":"{\"status\":\"ok\",\"db\":\"postgres:\/\/app:hunter2@10.20.0.15:5432\/app\",\"env\":{\"GROQ_API_KEY\":\"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\",\"NODE_ENV\":\"production\"},\"note\":\"sk-\\u0061nt-api03-kEsz3zZC5DIjTcIvQUQ42gQ4v0HxWxAgtzBjJ1qi-E-CMaih\"}"}],"details":{"status":"completed","exitCode":0,"durationMs":47},"isError":false,"timestamp":1773217929542}}"#,
    "\n",
    r#"{"type":"message","id":"f1a2b3c4","parentId":"e0f1c758","timestamp":"2026-03-11T08:32:15.001Z","message":{"role":"assistant","content":[{"type":"text","text":"Done. The gateway token is b857ea25c0ec0fb452c188d15c7a63f9eece862d6cdeb4c2 and the node is fd7a:115c:a1e0::1f \u00e9t\u00e9 \ud83d\ude00"}],"usage":{"input":31,"output":40,"totalTokens":16718},"timestamp":1773217935001}}"#,
    "\n",
    r#"{"0":"{\"subsystem\":\"gateway/canvas\"}","1":"canvas host mounted at http://127.0.0.1:18789/__openclaw__/canvas/ token=xoxb-123456789012-1234567890123-NskFpYsCXvxXswPiTbfJpJHp","_meta":{"runtime":"node","runtimeVersion":"24.14.0","hostname":"5cf8d6625e09","name":"{\"subsystem\":\"gateway/canvas\"}","parentNames":["openclaw"],"date":"2026-03-14T13:44:56.379Z","logLevelId":3,"logLevelName":"INFO"},"time":"2026-03-14T13:44:56.380Z"}"#,
    "\n",
    r#"{"gateway":{"auth":{"token":"3f1e9b0c2d8a7e6f5d4c"},"port":18789},"env":{"MISTRAL_API_KEY":"vrOx1kq9Lm2Pz8TnW4sY7bC3dF6gH0jK"},"logging":{"redactPatterns":["internal\\.corp","/tok_[a-z]+/"]}}"#,
    "\n",
    "2026-03-11T08:02:00.000Z [gateway] starting on 0.0.0.0:18789\n",
    "2026-03-11T08:02:01.000Z [gateway] auth: Authorization: Bearer Zx81kQmP0vLr7TnW3sY6bC2dF5gH9jKa\n",
    "2026-03-11T08:02:02.000Z [gateway] slack xoxb-123456789012-1234567890123-NskFpYsCXvxXswPiTbfJpJHp connected\n",
    "2026-03-11T08:02:03.000Z [gateway] upstream https://admin:Zq8vLm2RtXw4@db.internal.corp:5432/app\n",
    "2026-03-11T08:02:04.000Z [gateway] resolved to 93.184.216.34 build 1a2b3c4 version 1.2.3, peer 192.168.1.20\n",
    "2026-03-11T08:02:05.000Z [agent] exec: openclaw login --token abc123def456ghi --api-key AIzaL8RO3_CXUoCXEQpqeHTXG8WEUT4fqEw14aO\n",
    "2026-03-11T08:02:06.000Z [agent] telegram bot 7123456789:AAJLZ4HetUQBbAAdYnrHVaTm9JBc8v0Tb__ ready\n",
    "OPENAI_API_KEY=sk-proj-dnGN9ojVu8pVF7y0wfU8VWyGAM4hRcp7509hQkVO\n",
    "AWS_ACCESS_KEY_ID=AKIAUSO3CPOEFQZ6A4ZT\n",
    "AWS_SECRET_ACCESS_KEY=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\n",
    "DB_PASSWORD='hunter2-but-longer'\n",
    "export GITHUB_TOKEN=ghp_LKlg4hpljEsO2vU7RkoIIR1ONZhu30nzZ28K\n",
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n",
    "-----END RSA PRIVATE KEY-----\n",
    "plain line with internal.corp.example and tok_abcdef and nothing else\n",
    "",
);

const MAX_PATTERNS: usize = 8;

fn newlines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (toml, lenient) = (flags & 1 != 0, flags & 2 != 0);
    let mask = if flags & 4 != 0 {
        Mask::OpenClaw
    } else {
        Mask::Tag
    };
    let text = String::from_utf8_lossy(rest);
    let pack = if toml {
        match RulePack::load("fuzz.toml", &text, lenient) {
            Ok((pack, _warnings)) => pack,
            Err(_) => return,
        }
    } else {
        let sep = if text.contains('\0') { '\0' } else { '\n' };
        let patterns: Vec<String> = text
            .split(sep)
            .take(MAX_PATTERNS)
            .map(str::to_string)
            .collect();
        match openclaw::patterns_to_pack("--pattern", "pattern-", &patterns, lenient) {
            Ok((pack, _warnings)) => pack,
            Err(e) => {
                // The entry itself is never printed: users paste secrets into patterns.
                let message = e.to_string();
                // An entry can also read like the message's own wording (the fuzzer learns
                // `]: unmatched `)` at offset 1` from it). A quote follows the entry when its
                // letters change case; the wording does not.
                let swapped: Vec<String> = patterns.iter().map(|p| swap_case(p)).collect();
                let message_swapped =
                    openclaw::patterns_to_pack("--pattern", "pattern-", &swapped, lenient)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default();
                if let Some(p) = patterns.iter().find(|p| {
                    let q = swap_case(p);
                    p.len() >= 20
                        && message.contains(p.as_str())
                        && (q == **p || message_swapped.contains(q.as_str()))
                }) {
                    panic!("error message quotes pattern {p:?}: {message}");
                }
                return;
            }
        }
    };
    let Ok(scrubber) = Scrubber::builder()
        .builtin(false)
        .mask(mask)
        .pack(pack)
        .build()
    else {
        return;
    };

    let mut input = Vec::with_capacity(SAMPLE.len() + rest.len());
    input.extend_from_slice(SAMPLE.as_bytes());
    input.extend_from_slice(rest);
    let output = scrubber.scrub_bytes(&input);
    assert_eq!(
        newlines(&output),
        newlines(&input),
        "newline count changed\n input: {:?}\noutput: {:?}",
        String::from_utf8_lossy(&input),
        String::from_utf8_lossy(&output),
    );
    // The sample's JSON lines come first and stay valid JSON whatever the rules.
    for (n, (line_in, line_out)) in input
        .split(|&b| b == b'\n')
        .zip(output.split(|&b| b == b'\n'))
        .take(newlines(SAMPLE.as_bytes()))
        .enumerate()
    {
        if line_in.first() == Some(&b'{')
            && serde_json::from_slice::<serde_json::Value>(line_out).is_err()
        {
            panic!(
                "sample line {} is no longer JSON\n input: {}\noutput: {}",
                n + 1,
                String::from_utf8_lossy(line_in),
                String::from_utf8_lossy(line_out),
            );
        }
    }
    // Findings agree with scrubbing about where secrets are: inside their lines.
    let lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    for f in scrubber.findings(&input) {
        let line = lines[usize::try_from(f.line).expect("line number fits") - 1];
        assert!(
            f.start < f.end && f.end <= line.len(),
            "finding {f:?} outside its line of {} bytes",
            line.len()
        );
    }
});

/// `text` with the case of its ASCII letters swapped.
fn swap_case(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => c.to_ascii_uppercase(),
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => c,
        })
        .collect()
}
