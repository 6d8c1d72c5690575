//! PHP (Debian's php-cli, ext-sodium + hash only) against Rust, across processes: records
//! sealed by PHP open in Rust, records sealed by Rust open in PHP, and the clear-field split
//! gives the same fields. `scripts/test` installs php-cli; without it these tests fail loudly.

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
    let mut child = Command::new("php")
        .args(args)
        .current_dir(php_dir())
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

#[test]
fn the_php_sealer_passes_its_own_tests_on_the_shared_vectors() {
    let out = php(&["tests/run.php"], "");
    assert!(out.trim_end().ends_with(", 0 failed"), "{out}");
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
