//! The configuration examples people copy are valid: every ```toml block of
//! docs/OPERATIONS.md, the packaged example (packaging/deb/bridge.toml) and the config
//! module's documentation parses with the
//! bridge's own parser, and so does each commented alternative in them once uncommented.
//!
//! A commented alternative is a run of consecutive comment lines that are each one TOML
//! `key = value` once the `# ` is removed (prose comments and a bare `#` end a run). A run
//! that sets `kind` replaces the key lines of its table; any other run sets its keys (replacing
//! the same keys). `"vkpub1.…"` stands for a device key as `vbzkey-admin pair` prints it.

use vbzkey_host_bridge::config::{Config, ConfigProblem};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The key a line sets, if it is exactly one TOML `key = value`.
fn key_of(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('[') || t.starts_with('#') {
        return None;
    }
    let table: toml::Table = toml::from_str(t).ok()?;
    (table.len() == 1).then(|| table.keys().next().cloned()).flatten()
}

/// The line without its comment mark, if it is a commented `key = value`.
fn uncommented(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    key_of(rest).map(|k| (k, rest.to_string()))
}

/// Each commented alternative of `text`, applied: the whole text with that run uncommented.
fn alternatives(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(_) = uncommented(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut run = Vec::new();
        while let Some(kv) = lines.get(i).and_then(|l| uncommented(l)) {
            run.push(kv);
            i += 1;
        }
        // The table the run sits in: from its header (or the top) to the next header.
        let head = lines[..start].iter().rposition(|l| l.trim_start().starts_with('['));
        let from = head.map_or(0, |h| h + 1);
        let to = lines[start..]
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .map_or(lines.len(), |p| start + p);
        let replaces_all = run.iter().any(|(k, _)| k == "kind");
        let mut new: Vec<String> = Vec::new();
        for (n, line) in lines.iter().enumerate() {
            if n == start {
                new.extend(run.iter().map(|(_, l)| l.clone()));
            }
            let in_table = (from..to).contains(&n);
            let dropped = in_table
                && key_of(line).is_some_and(|k| replaces_all || run.iter().any(|(r, _)| *r == k));
            if !dropped && !(start..i).contains(&n) {
                new.push(line.to_string());
            }
        }
        out.push(new.join("\n"));
    }
    out
}

/// A block as the bridge would read it: a `[method]` fragment gets the required top-level
/// setting, placeholders become real values.
fn as_config(block: &str) -> String {
    let device = vbzkey_protocol::SecretKey::derive(&[7; 32]).public_key().to_text();
    let text = block.replace("vkpub1.…", &device);
    if text.contains("allowed_origins") {
        text
    } else {
        format!("allowed_origins = [\"https://shop.example\"]\n{text}")
    }
}

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(at) = rest.find("```toml\n") {
        let body = &rest[at + 8..];
        let end = body.find("```").expect("a closed block");
        blocks.push(body[..end].to_string());
        rest = &body[end..];
    }
    blocks
}

fn parses(what: &str, text: &str) {
    if let Err(e) = Config::parse(&as_config(text)) {
        panic!("{what} does not parse: {e}\n---\n{}", as_config(text));
    }
}

#[test]
fn every_toml_block_in_operations_and_each_commented_alternative_parse() {
    let blocks = toml_blocks(&read("docs/OPERATIONS.md"));
    assert!(blocks.len() >= 2, "the bridge's configuration and the LAN key server's");
    let mut tried = 0;
    for (n, block) in blocks.iter().enumerate() {
        parses(&format!("OPERATIONS.md toml block {n}"), block);
        for (a, alt) in alternatives(block).iter().enumerate() {
            parses(&format!("OPERATIONS.md toml block {n}, alternative {a}"), alt);
            tried += 1;
        }
    }
    // The serial, the emulated dongle, the LAN key server, a passphrase, a key file.
    assert!(tried >= 5, "only {tried} alternatives found");
}

#[test]
fn the_example_in_the_config_modules_documentation_parses_with_each_alternative() {
    let source = read("host-bridge/src/config.rs");
    let doc: String = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)))
        .collect();
    let blocks = toml_blocks(&doc);
    assert_eq!(blocks.len(), 1);
    parses("config.rs's example", &blocks[0]);
    let alts = alternatives(&blocks[0]);
    assert_eq!(alts.len(), 1, "host_key, vid, pid and serial together");
    parses("config.rs's example, uncommented", &alts[0]);
}

#[test]
fn the_packaged_example_parses_once_its_pair_lines_or_first_use_are_uncommented() {
    let text = read("packaging/deb/bridge.toml");
    // As installed it names no dongle: the bridge refuses to start, saying what to add.
    assert!(matches!(Config::parse(&as_config(&text)), Err(ConfigProblem::NoDeviceKey)));
    let alts = alternatives(&text);
    assert_eq!(alts.len(), 2, "the pair lines, or trust on first use");
    for (a, alt) in alts.iter().enumerate() {
        parses(&format!("packaging/deb/bridge.toml alternative {a}"), alt);
    }
}

#[test]
fn the_alternatives_rule_replaces_a_method_and_adds_a_key() {
    let text = "[method]\nkind = \"dongle\"\nx = 1\n# y = 2\n\n# kind = \"lan\"\n# z = 3\n";
    let alts = alternatives(text);
    assert_eq!(alts[0], "[method]\nkind = \"dongle\"\nx = 1\ny = 2\n\n# kind = \"lan\"\n# z = 3");
    assert_eq!(alts[1], "[method]\n# y = 2\n\nkind = \"lan\"\nz = 3");
    // Prose is not an alternative, even with an `=` in it.
    assert!(alternatives("# set port = 80 for a web server (no)\n# (a = b)\n").is_empty());
}
