//! PHP (Debian's php-cli, ext-sodium + hash only) against Rust, across processes: the
//! Composer package `clients/php` passes its PHPUnit suite (Debian's phpunit) on the shared
//! vectors and installs into a store with `composer require` from a path repository; records
//! sealed by PHP open in Rust, records sealed by Rust open in PHP, and the clear-field split
//! gives the same fields. `scripts/test` installs php-cli, phpunit and composer; without them
//! these tests fail loudly.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use vbzkey_protocol::SecretKey;
use vbzkey_protocol::record;
use vbzkey_protocol::split::{self, CustomerInput};

fn php_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/php")
}

fn php(args: &[&str], stdin: &str) -> String {
    php_with_stdin(&php_dir(), args, stdin)
}

fn php_in(dir: &std::path::Path, args: &[&str]) -> String {
    php_with_stdin(dir, args, "")
}

fn php_with_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new("php")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("php is not installed: `apt-get install php-cli` (scripts/test does this)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "php {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn values() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (0..25)
        .map(|i| (format!("cust_cards/{i}/card_number"), format!("41111111111{i:05}")))
        .collect();
    v.push(("cust_addrs/1/address".into(), "Hauptstraße 5\n10115 Berlin".into()));
    v.push(("cust_phones/1/phone".into(), "+81 3-1234-5678 ☎".into()));
    v.push(("".into(), "".into()));
    v.push(("c".into(), "x".repeat(4096)));
    v
}

fn run(program: &str, args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test installs it)"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?}: {text}");
    text
}

#[test]
fn the_php_package_passes_its_phpunit_suite_on_the_shared_vectors() {
    let out = run("phpunit", &["-c", "phpunit.xml.dist"], &php_dir(), &[]);
    let tests: usize = out
        .split("OK (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("PHPUnit did not pass: {out}"));
    assert!(tests >= 60, "the RFC, record and split kits ran ({tests} tests): {out}");
}

#[test]
fn a_store_installs_the_php_package_with_composer_from_a_path_repository() {
    // Exactly what clients/php/README.md tells a store, offline (no Packagist).
    let dir = vbzkey_e2e::TempDir::new("composer");
    let home = dir.path("composer-home");
    let shop = dir.path("shop");
    std::fs::create_dir_all(&shop).unwrap();
    std::fs::write(shop.join("composer.json"), "{}\n").unwrap();
    let package = php_dir().canonicalize().unwrap();
    let env = [("COMPOSER_HOME", home.to_str().unwrap()), ("COMPOSER_NO_INTERACTION", "1")];
    run("composer", &["validate", "--strict"], &package, &env);
    run("composer", &["config", "repo.packagist", "false"], &shop, &env);
    run(
        "composer",
        &["config", "repositories.vbzkey", "path", package.to_str().unwrap()],
        &shop,
        &env,
    );
    run("composer", &["require", "vbzkey/vbzkey:@dev"], &shop, &env);
    let key = SecretKey::generate().unwrap();
    let sealed = php_in(
        &shop,
        &[
            "-r",
            "require 'vendor/autoload.php'; echo \\VbzKey\\Sealer::seal($argv[1], 'cust_phones/7/phone', '+442079460958');",
            &key.public_key().to_text(),
        ],
    );
    let bytes = record::from_text(sealed.trim()).unwrap();
    assert_eq!(&record::open(&key, b"cust_phones/7/phone", &bytes).unwrap()[..], b"+442079460958");
}

#[test]
fn php_seals_and_rust_opens() {
    let key = SecretKey::generate().unwrap();
    let vals = values();
    let input =
        Value::from(vals.iter().map(|(c, v)| json!([c, v])).collect::<Vec<_>>()).to_string();
    let out: Vec<String> = serde_json::from_str(&php(
        &["tests/interop.php", "seal", &key.public_key().to_text()],
        &input,
    ))
    .unwrap();
    assert_eq!(out.len(), vals.len());
    for ((ctx, value), rec) in vals.iter().zip(&out) {
        let bytes = record::from_text(rec).unwrap();
        assert_eq!(&record::open(&key, ctx.as_bytes(), &bytes).unwrap()[..], value.as_bytes());
        assert!(record::open(&key, b"another/place/entirely", &bytes).is_err());
    }
}

#[test]
fn rust_seals_and_php_opens() {
    let key = SecretKey::generate().unwrap();
    let vals = values();
    let mut pairs: Vec<Value> = vals
        .iter()
        .map(|(c, v)| {
            json!([
                c,
                record::to_text(
                    &record::seal(key.public_key(), c.as_bytes(), v.as_bytes()).unwrap()
                )
            ])
        })
        .collect();
    // One moved to another row must fail in PHP too.
    let moved = record::to_text(
        &record::seal(key.public_key(), b"cust_cards/1/card_number", b"4111111111111111").unwrap(),
    );
    pairs.push(json!(["cust_cards/2/card_number", moved]));
    let out: Vec<Value> = serde_json::from_str(&php(
        &["tests/interop.php", "open", &key.to_text()],
        &Value::from(pairs).to_string(),
    ))
    .unwrap();
    for ((_, value), got) in vals.iter().zip(&out) {
        assert_eq!(got["value"], *value);
    }
    assert_eq!(out.last().unwrap()["error"], "tag_mismatch");
}

#[test]
fn php_and_rust_split_customers_the_same_way() {
    let kit: Value =
        serde_json::from_str(include_str!("../../protocol/tests/vectors/split-v1.json")).unwrap();
    let key = SecretKey::generate().unwrap();
    let mut compared = 0;
    for case in kit["cases"].as_array().unwrap() {
        let Ok(input) = serde_json::from_value::<CustomerInput>(case["input"].clone()) else {
            continue;
        };
        let Ok(rust) = split::split(&input) else { continue };
        let out: Value = serde_json::from_str(&php(
            &["tests/interop.php", "seal-customer", &key.public_key().to_text()],
            &case["input"].to_string(),
        ))
        .unwrap();
        assert_eq!(out["clear"], serde_json::to_value(&rust.clear).unwrap(), "{}", case["name"]);
        for field in &rust.sealed {
            let rec = out["sealed"][field.field]["record"].as_str().unwrap();
            assert_eq!(out["sealed"][field.field]["context"], field.context);
            let opened =
                record::open(&key, field.context.as_bytes(), &record::from_text(rec).unwrap())
                    .unwrap();
            assert_eq!(&opened[..], field.value.as_bytes(), "{}", case["name"]);
        }
        compared += 1;
    }
    assert!(compared >= 6, "the kit's good cases were compared");
}
