//! Reading the customer JSON of `seal-customer`, with errors that name the field at fault and
//! never quote a value (serde's "invalid type: string \"4111…\"" would put a card number into
//! a log).

use vbzkey_protocol::split::CustomerInput;

use crate::error::CliError;

/// The names `CustomerInput` accepts only to refuse them (a CVV): never offered as allowed.
const REFUSED_NAMES: [&str; 7] = ["cvv", "cvc", "cvv2", "cvc2", "cid", "csc", "security_code"];

/// Parse the whole input as one customer record.
pub(crate) fn parse(input: &[u8]) -> Result<CustomerInput, CliError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let customer: CustomerInput = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| describe(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| describe(".", &e))?;
    Ok(customer)
}

/// The message for an error at `path` (`.` for the top level, else `card.number`…).
fn describe(path: &str, e: &serde_json::Error) -> CliError {
    use serde_json::error::Category;
    let at = format!("line {} column {}", e.line(), e.column());
    let full = e.to_string();
    let msg = full.strip_suffix(&format!(" at {at}")).unwrap_or(&full);
    let detail = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "malformed JSON".to_string(),
        Category::Data if msg.starts_with("unknown field") => unknown_field(path, msg),
        Category::Data
            if msg.starts_with("missing field") || msg.starts_with("duplicate field") =>
        {
            msg.to_string()
        }
        Category::Data => match msg.rsplit_once(", expected ") {
            // Only the expectation is kept: the part before it quotes the value.
            Some((_, expected)) => {
                format!("`{path}` must be {}", expected.replace("a sequence", "an array"))
            }
            None => format!("`{path}` has a value that is not allowed"),
        },
    };
    CliError::BadInput(format!("customer JSON is not valid: {detail} ({at})"))
}

/// `unknown field `x`, expected one of `a`, `b`…` with the refused CVV names left out of
/// the allowed ones (they are accepted only to be refused with a PCI DSS message).
fn unknown_field(path: &str, msg: &str) -> String {
    let mut names = msg.split('`').skip(1).step_by(2);
    let unknown = names.next().unwrap_or_default();
    let parent = path.rsplit_once('.').map(|(parent, _)| parent);
    // The path ends with the unknown field itself; a name that does not look like one (a card
    // number or a phone number used as a key, values and keys swapped) is not repeated.
    let unknown = match (name_like(unknown), parent) {
        (true, Some(parent)) => format!("unknown field `{parent}.{unknown}`"),
        (true, None) => format!("unknown field `{unknown}`"),
        (false, Some(parent)) => {
            format!("an unknown field in `{parent}` (its name is not repeated)")
        }
        (false, None) => "an unknown field (its name is not repeated)".to_string(),
    };
    let allowed: Vec<String> =
        names.filter(|n| !REFUSED_NAMES.contains(n)).map(|n| format!("`{n}`")).collect();
    if allowed.is_empty() {
        unknown
    } else {
        format!("{unknown}; the fields here are {}", allowed.join(", "))
    }
}

/// Whether an unknown field's name may be quoted: a short identifier with few digits, as a
/// mistyped field name is (`cardnumber`, `address2`), not a value used as a key.
fn name_like(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().filter(char::is_ascii_digit).count() <= 4
}
