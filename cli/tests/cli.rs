//! The `vbzkey` binary as a user runs it: real processes, real files, stdin and stdout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;
use vbzkey_protocol::SecretKey;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("vbzkey-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vbzkey() -> Command {
    Command::cargo_bin("vbzkey").unwrap()
}

fn keygen(dir: &Dir) -> (PathBuf, String) {
    let key = dir.path("key.txt");
    let out = vbzkey().args(["keygen", "-o"]).arg(&key).assert().success().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let pk = stderr.trim().strip_prefix("Public key: ").expect("public key on stderr").to_string();
    (key, pk)
}

fn seal(pk: &str, ctx: &str, value: &[u8]) -> String {
    let out =
        vbzkey().args(["seal", "--to", pk, "--context", ctx]).write_stdin(value).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn open(key: &Path, ctx: &str, record: impl Into<Vec<u8>>) -> assert_cmd::assert::Assert {
    vbzkey().args(["open", "--context", ctx, "-k"]).arg(key).write_stdin(record.into()).assert()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stderr.clone()).unwrap()
}

#[test]
fn keygen_writes_a_private_file_and_never_overwrites() {
    let d = Dir::new("keygen");
    let (key, pk) = keygen(&d);
    assert!(pk.starts_with("vkpub1."));
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let before = std::fs::read(&key).unwrap();
    let again = vbzkey().args(["keygen", "-o"]).arg(&key).assert().code(2);
    assert!(stderr(&again).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    let shown = vbzkey().args(["pubkey", "-k"]).arg(&key).assert().success();
    assert_eq!(String::from_utf8_lossy(&shown.get_output().stdout).trim(), pk);
}

#[test]
fn seal_then_open_round_trips_text_and_binary() {
    let d = Dir::new("roundtrip");
    let (key, pk) = keygen(&d);
    let ctx = "cust_cards/1001/card_number";
    let rec = seal(&pk, ctx, b"4111111111111111\n");
    assert!(rec.starts_with("vk1.") && rec.ends_with('\n'));
    open(&key, ctx, rec.clone()).success().stdout("4111111111111111");

    let bin = vbzkey()
        .args(["seal", "--binary", "--keep-newline", "--context", ctx, "--to"])
        .arg(&key)
        .write_stdin("line\n")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(&bin[..4], b"VK\x01\x01");
    open(&key, ctx, bin).success().stdout("line\n");
}

#[test]
/// The shared table (docs/CLI.md): a record for another key is "not found" (4), one that does
/// not open under this context, or was altered, "does not verify" (9) — as an audit log.
fn records_that_do_not_open_exit_not_found_or_not_verified_with_a_hint() {
    let d = Dir::new("noopen");
    let (key, pk) = keygen(&d);
    let rec = seal(&pk, "cust_cards/1/card_number", b"4111111111111111");
    let wrong_ctx = open(&key, "cust_cards/2/card_number", rec.clone()).code(9).stdout("");
    assert!(stderr(&wrong_ctx).contains("--context"));

    let other = Dir::new("noopen-other");
    let (other_key, _) = keygen(&other);
    let wrong_key = open(&other_key, "cust_cards/1/card_number", rec.clone()).code(4).stdout("");
    assert!(stderr(&wrong_key).contains("sealed to key"));

    let mut tampered = rec.trim().to_string().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    open(&key, "cust_cards/1/card_number", tampered).code(9).stdout("");
}

#[test]
fn malformed_input_exits_3_and_prints_no_plaintext() {
    let d = Dir::new("malformed");
    let (key, pk) = keygen(&d);
    for bad in [&b""[..], b"garbage", b"vk1.", b"vk1.!!!!", b"VK\x01\x01short", b"\xff\xfe\xfd"] {
        open(&key, "c", bad).code(3).stdout("");
    }
    // A value over 4096 bytes, and one that is not UTF-8, cannot be sealed.
    vbzkey()
        .args(["seal", "--to", &pk, "--context", "c"])
        .write_stdin(vec![b'a'; 4097])
        .assert()
        .code(3);
    vbzkey()
        .args(["seal", "--to", &pk, "--context", "c"])
        .write_stdin(&b"\xff\xfe"[..])
        .assert()
        .code(3);
    vbzkey()
        .args(["seal", "--to", "vkpub1.AAAA", "--context", "c"])
        .write_stdin("x")
        .assert()
        .code(3);
    vbzkey()
        .args(["seal", "--to", "no-such-file", "--context", "c"])
        .write_stdin("x")
        .assert()
        .code(2);
    vbzkey().args(["seal", "--to", &pk]).write_stdin("x").assert().code(2);
    vbzkey().args(["inspect"]).write_stdin("vk1.AAAA").assert().code(3);
    // A damaged key file is bad input, named as such.
    let broken = d.path("broken.txt");
    std::fs::write(&broken, "vksec1.tooshort\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o600)).unwrap();
    let a = open(&broken, "c", seal(&pk, "c", b"x")).code(3);
    assert!(stderr(&a).contains("secret key is damaged"));
}

#[test]
fn world_readable_key_file_gets_a_warning() {
    let d = Dir::new("perm");
    let (key, pk) = keygen(&d);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let a = open(&key, "c", seal(&pk, "c", b"v")).success().stdout("v");
    assert!(stderr(&a).contains("chmod 600"));
}

#[test]
fn inspect_reports_the_header_without_a_key() {
    let d = Dir::new("inspect");
    let (_, pk) = keygen(&d);
    let rec = seal(&pk, "c", b"12345");
    let out = vbzkey().args(["inspect", "--json"]).write_stdin(rec).assert().success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let key_id = vbzkey_protocol::PublicKey::from_text(&pk).unwrap().key_id().to_string();
    assert_eq!(v["key_id"], key_id);
    assert_eq!(v["plaintext_len"], 5);
    assert_eq!(v["format_version"], 1);
}

#[test]
fn seal_customer_seals_each_field_under_its_own_context() {
    let d = Dir::new("customer");
    let (key, _) = keygen(&d);
    let input = r#"{"id":"1001","card":{"number":"4111 1111 1111 1111","expiry":"12/27"},
        "address":{"lines":["350 Fifth Avenue"],"city":"New York","region":"NY","postal_code":"10118","country":"US"},
        "phone":"(212) 736-3100","email":"ada@example.com"}"#;
    let out =
        vbzkey().arg("seal-customer").arg("--to").arg(&key).write_stdin(input).assert().success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["clear"]["card_last4"], "1111");
    assert_eq!(v["clear"]["card_brand"], "visa");
    assert_eq!(v["clear"]["phone_area_code"], "212");
    for (field, ctx, value) in [
        ("card_number", "cust_cards/1001/card_number", "4111111111111111"),
        ("address", "cust_addrs/1001/address", "350 Fifth Avenue\nNew York, NY"),
        ("phone", "cust_phones/1001/phone", "+12127363100"),
    ] {
        assert_eq!(v["sealed"][field]["context"], ctx);
        let rec = v["sealed"][field]["record"].as_str().unwrap().to_string();
        open(&key, ctx, rec.clone()).success().stdout(value);
        // Moved to another row, it no longer opens.
        open(&key, &ctx.replace("1001", "1002"), rec).code(9);
    }
}

#[test]
fn seal_customer_refuses_cvv_and_never_echoes_customer_data() {
    let d = Dir::new("cvv");
    let (key, _) = keygen(&d);
    let cvv = r#"{"id":"1","card":{"number":"4111111111111111","expiry":"12/27","cvc":"737"}}"#;
    let a = vbzkey()
        .arg("seal-customer")
        .arg("--to")
        .arg(&key)
        .write_stdin(cvv)
        .assert()
        .code(3)
        .stdout("");
    assert!(stderr(&a).contains("PCI DSS"));
    for bad in [
        r#"{"id":"1","card":{"number":4111111111111111,"expiry":"12/27"}}"#,
        r#"{"id":"1","card":{"number":"4111111111111112","expiry":"12/27"}}"#,
        r#"{"id":"1","card":{"number":"4111111111111111""#,
        r#"{"id":"1","phone":"+1 415 555 0100 ext 9"}"#,
    ] {
        let a = vbzkey()
            .arg("seal-customer")
            .arg("--to")
            .arg(&key)
            .write_stdin(bad)
            .assert()
            .code(3)
            .stdout("");
        let err = stderr(&a);
        assert!(!err.contains("4111") && !err.contains("555"), "customer data in error: {err}");
    }
}

#[test]
fn the_bad_record_kit_gives_the_documented_exit_codes() {
    let kit: Value =
        serde_json::from_str(include_str!("../../protocol/tests/vectors/records-v1.json")).unwrap();
    let d = Dir::new("kit");
    let ikm: Vec<u8> = (0..kit["recipient_ikm"].as_str().unwrap().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&kit["recipient_ikm"].as_str().unwrap()[i..i + 2], 16).unwrap())
        .collect();
    let key = d.path("kit-key.txt");
    std::fs::write(&key, format!("{}\n", SecretKey::derive(&ikm).to_text().as_str())).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for g in kit["good"].as_array().unwrap() {
        open(&key, g["context"].as_str().unwrap(), g["record"].as_str().unwrap())
            .success()
            .stdout(g["plaintext"].as_str().unwrap().to_string());
    }
    for b in kit["bad"].as_array().unwrap() {
        let code = match b["error"].as_str().unwrap() {
            "unknown_key_id" => 4,
            "tag_mismatch" | "low_order_point" => 9,
            _ => 3,
        };
        open(&key, b["context"].as_str().unwrap(), b["record"].as_str().unwrap())
            .code(code)
            .stdout("");
    }
}

#[test]
fn help_has_examples_and_usage_errors_exit_2() {
    for cmd in ["keygen", "pubkey", "seal", "open", "seal-customer", "inspect"] {
        let out = vbzkey().args([cmd, "--help"]).assert().success();
        assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("Example"), "{cmd}");
    }
    vbzkey().arg("no-such-command").assert().code(2);
    vbzkey().args(["open", "--context", "c"]).assert().code(2);
}

#[test]
fn encrypted_key_files_and_passphrase_keys_give_recipients() {
    let d = Dir::new("softkeys");
    let kf = d.path("key.json");
    vbzkey()
        .args(["keygen", "--encrypt", "--passphrase-file", "-", "-o"])
        .arg(&kf)
        .write_stdin("a long enough passphrase\n")
        .assert()
        .success();
    let text = std::fs::read_to_string(&kf).unwrap();
    assert!(text.contains("vbzkey-key-file-v1") && !text.contains("vksec1."));
    let rec = seal(kf.to_str().unwrap(), "c", b"v");
    assert!(rec.starts_with("vk1."));
    // The key file opens with the passphrase (through the library the bridge uses).
    let key = vbzkey_softkey::KeyFile::from_json(&text)
        .unwrap()
        .open(b"a long enough passphrase")
        .unwrap();
    let bytes = vbzkey_protocol::record::from_text(rec.trim()).unwrap();
    assert_eq!(&vbzkey_protocol::record::open(&key, b"c", &bytes).unwrap()[..], b"v");

    let pk = d.path("pass.json");
    vbzkey()
        .args(["passphrase-key", "--passphrase-file", "-", "-o"])
        .arg(&pk)
        .write_stdin("short\n")
        .assert()
        .code(3);
    vbzkey()
        .args(["passphrase-key", "--passphrase-file", "-", "-o"])
        .arg(&pk)
        .write_stdin("sixteen chars or more\n")
        .assert()
        .success();
    vbzkey()
        .args(["passphrase-key", "--passphrase-file", "-", "-o"])
        .arg(&pk)
        .write_stdin("sixteen chars or more\n")
        .assert()
        .code(2);
    assert!(seal(pk.to_str().unwrap(), "c", b"v").starts_with("vk1."));
}

/// `completions bash` is valid bash naming every command; `man` is a roff page; both need
/// nothing else and a shell that is not offered is a usage error.
#[test]
fn completions_and_the_man_page_are_generated_from_this_build() {
    let dir = Dir::new("completions");
    let out = vbzkey().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for word in ["keygen", "seal-customer", "passphrase-key", "--context", "inspect"] {
        assert!(script.contains(word), "{word} missing from the completions");
    }
    std::fs::write(dir.path("vbzkey.bash"), &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(dir.path("vbzkey.bash")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let man = vbzkey().arg("man").output().unwrap();
    assert!(man.status.success());
    let page = String::from_utf8(man.stdout).unwrap();
    assert!(page.contains(".TH vbzkey 1") && page.contains("seal\\-customer"), "{page}");

    let bad = vbzkey().args(["completions", "cmd.exe"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn seal_refuses_an_empty_value_and_an_empty_context() {
    let d = Dir::new("empty");
    let (_, pk) = keygen(&d);
    for value in [&b""[..], b"\n", b"\r\n"] {
        let a = vbzkey()
            .args(["seal", "--to", &pk, "--context", "cust_cards/1/card_number"])
            .write_stdin(value)
            .assert()
            .code(3)
            .stdout("");
        assert!(stderr(&a).contains("the value is empty"), "{}", stderr(&a));
    }
    // A lone newline kept on purpose is a value.
    vbzkey()
        .args(["seal", "--keep-newline", "--to", &pk, "--context", "cust_cards/1/card_number"])
        .write_stdin("\n")
        .assert()
        .success();
    let a = vbzkey()
        .args(["seal", "--to", &pk, "--context", ""])
        .write_stdin("4111")
        .assert()
        .code(2)
        .stdout("");
    assert!(stderr(&a).contains("--context"), "{}", stderr(&a));
}

#[test]
fn stdin_that_is_not_a_terminal_gets_no_hint() {
    let d = Dir::new("nohint");
    let (key, pk) = keygen(&d);
    let rec = seal(&pk, "c/1/f", b"4111");
    let a = open(&key, "c/1/f", rec.clone()).success();
    assert_eq!(stderr(&a), "");
    let a = vbzkey().arg("inspect").write_stdin(rec).assert().success();
    assert_eq!(stderr(&a), "");
}

/// On a terminal, `seal`, `open` and `inspect` say what they wait for. `script` (util-linux,
/// essential in Debian) gives the command a pseudo-terminal; the Ctrl-D typed into it ends
/// the input.
#[test]
fn a_terminal_stdin_gets_a_one_line_hint_instead_of_a_silent_wait() {
    let d = Dir::new("hint");
    let (key, pk) = keygen(&d);
    let bin = assert_cmd::cargo::cargo_bin("vbzkey");
    let commands = [
        format!("{} seal --to {pk} --context c/1/f", bin.display()),
        format!("{} open -k {} --context c/1/f", bin.display(), key.display()),
        format!("{} inspect", bin.display()),
    ];
    for cmd in commands {
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .write_stdin("\u{4}")
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("from standard input; end it with Ctrl-D"), "{cmd}: {text}");
        // Ctrl-D alone is an empty value: refused, never sealed.
        assert!(!text.lines().any(|l| l.starts_with("vk1.")), "{cmd}: {text}");
    }
}

#[test]
fn seal_customer_errors_name_the_field_and_never_offer_cvv_names() {
    let d = Dir::new("fielderr");
    let (_, pk) = keygen(&d);
    let run = |json: &str| {
        let a = vbzkey().args(["seal-customer", "--to", &pk]).write_stdin(json).assert().code(3);
        assert_eq!(a.get_output().stdout, b"");
        stderr(&a)
    };
    let cvv_names = ["cvv", "cvc", "cvv2", "cvc2", "cid", "csc", "security_code"];
    for (json, field, allowed) in [
        (r#"{"id":"1","foo":1}"#, "`foo`", "`id`, `card`, `bank`, `address`, `phone`, `email`"),
        (
            r#"{"id":"1","card":{"number":"4111111111111111","bogus":"x"}}"#,
            "`card.bogus`",
            "`number`, `expiry`",
        ),
    ] {
        let err = run(json);
        assert!(err.contains(&format!("unknown field {field}")), "{err}");
        assert!(err.contains(allowed), "{err}");
        for n in cvv_names {
            assert!(!err.contains(&format!("`{n}`")), "a CVV name offered as allowed: {err}");
        }
    }
    // A value used as a key (a card number, a phone number): refused, never repeated.
    for (json, says) in [
        (r#"{"id":"1","4111111111111111":"card"}"#, "an unknown field (its name is not repeated)"),
        (
            r#"{"id":"1","card":{"number":"x","4111 1111 1111 1111":"x"}}"#,
            "an unknown field in `card` (its name is not repeated); the fields here are `number`",
        ),
        (r#"{"id":"1","address":{"+44 20 7946 0958":"x"}}"#, "an unknown field in `address`"),
    ] {
        let err = run(json);
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("4111") && !err.contains("7946"), "a value in the message: {err}");
    }
    for (json, says) in [
        (r#"{"id":1001}"#, "`id` must be a string"),
        (r#"{"id":"1","card":{"number":4111111111111111}}"#, "`card.number` must be a string"),
        (r#"{"id":"1","address":{"lines":"x"}}"#, "`address.lines` must be an array"),
    ] {
        let err = run(json);
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("4111") && !err.contains("1001"), "a value was quoted: {err}");
    }
    assert!(run(r#"{"id":"1"} trailing"#).contains("malformed JSON"));
}

#[test]
fn pubkey_and_open_take_encrypted_key_files_and_passphrase_descriptors() {
    let d = Dir::new("softopen");
    let pass = d.path("pass.txt");
    std::fs::write(&pass, "a long enough passphrase\n").unwrap();
    let wrong = d.path("wrong.txt");
    std::fs::write(&wrong, "not the right passphrase\n").unwrap();
    let kf = d.path("key.json");
    vbzkey()
        .args(["keygen", "--encrypt", "--passphrase-file"])
        .arg(&pass)
        .arg("-o")
        .arg(&kf)
        .assert()
        .success();
    let desc = d.path("passphrase-key.json");
    vbzkey()
        .args(["passphrase-key", "--passphrase-file"])
        .arg(&pass)
        .arg("-o")
        .arg(&desc)
        .assert()
        .success();
    for file in [&kf, &desc] {
        // pubkey needs no passphrase: both files carry the public key.
        let a = vbzkey().args(["pubkey", "-k"]).arg(file).assert().success();
        let pk = String::from_utf8(a.get_output().stdout.clone()).unwrap().trim().to_string();
        assert!(pk.starts_with("vkpub1."), "{pk}");
        let rec = seal(&pk, "cust_cards/7/card_number", b"4111111111111111");
        let open_with = |p: Option<&Path>| {
            let mut c = vbzkey();
            c.args(["open", "--context", "cust_cards/7/card_number", "-k"]).arg(file);
            if let Some(p) = p {
                c.arg("--passphrase-file").arg(p);
            }
            c.write_stdin(rec.clone()).assert()
        };
        open_with(Some(&pass)).success().stdout("4111111111111111");
        let a = open_with(None).code(2).stdout("");
        assert!(stderr(&a).contains("--passphrase-file"), "{}", stderr(&a));
        // A wrong credential, as a wrong PIN is for the admin tool.
        let a = open_with(Some(&wrong)).code(6).stdout("");
        assert!(stderr(&a).contains("wrong passphrase"), "{}", stderr(&a));
        assert!(!stderr(&a).contains("not the right"), "the passphrase was echoed");
        open_with(Some(Path::new("-"))).code(2).stdout("");
    }

    // A public key file gives its key, without a chmod warning (it is not secret).
    let public = d.path("public.txt");
    let pk = {
        let a = vbzkey().args(["pubkey", "-k"]).arg(&kf).assert().success();
        String::from_utf8(a.get_output().stdout.clone()).unwrap()
    };
    std::fs::write(&public, &pk).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    let a = vbzkey().args(["pubkey", "-k"]).arg(&public).assert().success().stdout(pk);
    assert_eq!(stderr(&a), "");
}

#[test]
fn open_and_inspect_take_the_record_as_a_file_argument_too() {
    let d = Dir::new("filearg");
    let (key, pk) = keygen(&d);
    let rec = d.path("rec.txt");
    std::fs::write(&rec, seal(&pk, "c/1/f", b"4111")).unwrap();
    vbzkey()
        .args(["open", "--context", "c/1/f", "-k"])
        .arg(&key)
        .arg(&rec)
        .assert()
        .success()
        .stdout("4111");
    let a = vbzkey().args(["inspect", "--json"]).arg(&rec).assert().success();
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["plaintext_len"], 4);
    // `-` is standard input, as with no argument.
    let text = std::fs::read_to_string(&rec).unwrap();
    vbzkey().args(["inspect", "-"]).write_stdin(text).assert().success();
    let missing = d.path("missing.txt");
    let a = vbzkey().arg("inspect").arg(&missing).assert().code(1);
    assert!(stderr(&a).contains(&missing.display().to_string()), "{}", stderr(&a));

    // With the record in a file, the passphrase may come from standard input.
    let kf = d.path("key.json");
    vbzkey()
        .args(["keygen", "--encrypt", "--passphrase-file", "-", "-o"])
        .arg(&kf)
        .write_stdin("a long enough passphrase\n")
        .assert()
        .success();
    let soft = d.path("soft.txt");
    std::fs::write(&soft, seal(kf.to_str().unwrap(), "c/2/f", b"4222")).unwrap();
    vbzkey()
        .args(["open", "--context", "c/2/f", "--passphrase-file", "-", "-k"])
        .arg(&kf)
        .arg(&soft)
        .write_stdin("a long enough passphrase\n")
        .assert()
        .success()
        .stdout("4222");
}

/// docs/CLI.md: `-o/--output FILE` on every command that writes a result (`seal -o` used to be
/// refused while `--binary` to a terminal told the user to use it), and `--json` on every
/// command that prints facts.
#[test]
fn results_go_to_dash_o_and_facts_come_as_json() {
    let d = Dir::new("output");
    let key = d.path("key.txt");
    let made = vbzkey().args(["keygen", "--json", "-o"]).arg(&key).assert().success();
    let v: Value = serde_json::from_slice(&made.get_output().stdout).unwrap();
    let pk = v["public_key"].as_str().unwrap().to_string();
    assert!(pk.starts_with("vkpub1.") && v["key_id"].as_str().unwrap().len() == 16, "{v}");
    vbzkey().args(["keygen", "--json"]).assert().code(2);
    let pass = d.path("pass.txt");
    std::fs::write(&pass, "a passphrase of some length\n").unwrap();
    let descriptor = d.path("descriptor.json");
    let made = vbzkey()
        .args(["passphrase-key", "--json", "--passphrase-file"])
        .arg(&pass)
        .arg("-o")
        .arg(&descriptor)
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&made.get_output().stdout).unwrap();
    assert!(v["public_key"].as_str().unwrap().starts_with("vkpub1."), "{v}");
    assert!(stderr(&made).is_empty(), "facts on stdout only: {}", stderr(&made));

    let public = d.path("public.txt");
    vbzkey().args(["pubkey", "-k"]).arg(&key).arg("-o").arg(&public).assert().success().stdout("");
    assert_eq!(std::fs::read_to_string(&public).unwrap(), format!("{pk}\n"));

    let rec = d.path("rec.bin");
    vbzkey()
        .args(["seal", "--binary", "--to", &pk, "--context", "t/1/f", "--output"])
        .arg(&rec)
        .write_stdin("4111111111111111")
        .assert()
        .success()
        .stdout("");
    let plain = d.path("plain.txt");
    vbzkey()
        .args(["open", "-k"])
        .arg(&key)
        .args(["--context", "t/1/f", "-o"])
        .arg(&plain)
        .arg(&rec)
        .assert()
        .success()
        .stdout("");
    assert_eq!(std::fs::read(&plain).unwrap(), b"4111111111111111");
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a plaintext file is private");
    vbzkey()
        .args(["open", "-k"])
        .arg(&key)
        .args(["--context", "t/1/f", "-o", "-"])
        .arg(&rec)
        .assert()
        .success()
        .stdout("4111111111111111");
    let missing_dir = d.path("no/such/dir/plain.txt");
    let a = vbzkey()
        .args(["open", "-k"])
        .arg(&key)
        .args(["--context", "t/1/f", "-o"])
        .arg(&missing_dir)
        .arg(&rec)
        .assert()
        .code(1);
    assert!(stderr(&a).starts_with("vbzkey: error: cannot write "), "{}", stderr(&a));
}

/// docs/CLI.md: like age, every command that reads data takes it as a file argument or on
/// standard input (`-` or none); `seal` and `seal-customer` read only standard input before.
#[test]
fn seal_and_seal_customer_take_a_file_argument_or_stdin() {
    let d = Dir::new("seal-file");
    let (key, pk) = keygen(&d);
    let value = d.path("value.txt");
    std::fs::write(&value, "4111111111111111\n").unwrap();
    let a =
        vbzkey().args(["seal", "--to", &pk, "--context", "t/1/f"]).arg(&value).assert().success();
    let rec = a.get_output().stdout.clone();
    open(&key, "t/1/f", rec).success().stdout("4111111111111111");
    let a =
        vbzkey().args(["seal", "--to", &pk, "--context", "t/1/f", "-"]).write_stdin("x").assert();
    open(&key, "t/1/f", a.success().get_output().stdout.clone()).success().stdout("x");
    let a = vbzkey().args(["seal", "--to", &pk, "--context", "c"]).arg(d.path("none")).assert();
    assert!(stderr(&a.code(1)).contains("none"));

    let customer = d.path("customer.json");
    std::fs::write(&customer, r#"{"id":"7","phone":"+12127363100"}"#).unwrap();
    let a = vbzkey().args(["seal-customer", "--to", &pk]).arg(&customer).assert().success();
    let v: Value = serde_json::from_slice(&a.get_output().stdout).unwrap();
    assert_eq!(v["sealed"]["phone"]["context"], "cust_phones/7/phone");
}

/// `open -o FILE` as an attacker with a say over FILE would try it: a symlink planted there
/// is replaced, not followed (the file it points at keeps its content); a world-readable
/// file there becomes the plaintext at 0600, never readable in between; a record that does
/// not open leaves the file as it was and no temporary file behind.
#[test]
fn open_output_replaces_a_symlink_never_follows_it_and_a_failure_leaves_the_file_alone() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("open-output-attacks");
    let (key, pk) = keygen(&d);
    let rec = d.path("rec.txt");
    vbzkey()
        .args(["seal", "--to", &pk, "--context", "t/1/f", "-o"])
        .arg(&rec)
        .write_stdin("4111111111111111")
        .assert()
        .success();
    let open = |out: &Path, context: &str| {
        vbzkey()
            .args(["open", "-k"])
            .arg(&key)
            .args(["--context", context, "-o"])
            .arg(out)
            .arg(&rec)
            .assert()
    };

    let (victim, link) = (d.path("victim"), d.path("link"));
    std::fs::write(&victim, "the victim's own file").unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    open(&link, "t/1/f").success();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "the victim's own file");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_file(), "the link was replaced by a file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&link).unwrap(), b"4111111111111111");

    let shared = d.path("shared.txt");
    std::fs::write(&shared, "old").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    open(&shared, "t/2/f").code(9);
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), "old", "untouched on failure");
    open(&shared, "t/1/f").success();
    assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o600);
    let litter: Vec<_> = std::fs::read_dir(d.path("."))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(litter.is_empty(), "temporary files left: {litter:?}");
}
