//! docs/AUDIT-LOG.md and the code agree: the example log printed in the spec verifies, its
//! stated head is the head the code computes, and the spec's tampered example does not.

use vbzkey_protocol::audit::{AuditError, hex, verify};

fn block(doc: &str, tag: &str) -> String {
    doc.lines()
        .skip_while(|l| l.trim() != format!("```text {tag}"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_spec_example_verifies_with_the_stated_head() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/AUDIT-LOG.md"))
        .unwrap();
    let example = block(&doc, "example");
    let (head, n) = verify(&example).unwrap();
    assert_eq!(n, 3);
    assert!(doc.contains(&format!("head `{}`", hex(&head))), "the spec states another head");
    let tampered = block(&doc, "tampered");
    assert_eq!(verify(&tampered), Err(AuditError::Broken { line: 2 }));
}
