//! Request bodies: each endpoint's JSON shape, checked before it is read, so that a body of the
//! wrong shape is told which field is wrong and what it should be (`items[2].context must be a
//! string`), without the answer ever quoting a value from the body (a PIN sent as a number
//! would otherwise come back in serde's "invalid type: integer `1234`").
//!
//! The check reads the body into a [`Json`] outline first: the kind of every value and the
//! names of object fields, never the content of a string or number. Only a body that passes is
//! read into the endpoint's type (the PIN into a zeroized string).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// The shape of `POST /v1/unlock`'s body, as the messages give it.
pub const UNLOCK_SHAPE: &str = r#"{"pin": "…"} (or {"passphrase": "…"})"#;
/// The shape of `POST /v1/unseal`'s body.
pub const UNSEAL_SHAPE: &str = r#"{"items": [{"record": "vk1.…", "context": "…"}, …]}"#;
/// The shape of `POST /v1/lock`'s body.
pub const LOCK_SHAPE: &str = "{}";

/// A JSON value's outline: kinds and field names only.
#[derive(Debug)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string (its content is not kept).
    String,
    /// An array.
    Array(Vec<Json>),
    /// An object: its fields in order, duplicates kept.
    Object(Vec<(Zeroizing<String>, Json)>),
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number => "a number",
            Json::String => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

struct OutlineVisitor;

impl<'de> Visitor<'de> for OutlineVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number)
    }
    fn visit_str<E>(self, _: &str) -> Result<Json, E> {
        Ok(Json::String)
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        drop(Zeroizing::new(s));
        Ok(Json::String)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some((k, v)) = map.next_entry::<Zeroizing<String>, Json>()? {
            fields.push((k, v));
        }
        Ok(Json::Object(fields))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(OutlineVisitor)
    }
}

/// Why a body is not what the endpoint takes; the message says what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all (or cut short).
    #[error("the body is not JSON (line {line}, column {column}): send {shape}")]
    NotJson {
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
        /// What to send.
        shape: &'static str,
    },
    /// JSON of the wrong shape.
    #[error("{0}")]
    Shape(String),
}

/// Read `bytes` as JSON into its outline.
pub fn outline(bytes: &[u8], shape: &'static str) -> Result<Json, BodyError> {
    serde_json::from_slice(bytes).map_err(|e| BodyError::NotJson {
        line: e.line(),
        column: e.column(),
        shape,
    })
}

fn shape(msg: String) -> BodyError {
    BodyError::Shape(msg)
}

/// The fields of an object body, or the message for a body that is not one.
fn object<'a>(
    v: &'a Json,
    what: &str,
    shape_text: &str,
) -> Result<&'a [(Zeroizing<String>, Json)], BodyError> {
    match v {
        Json::Object(fields) => Ok(fields),
        other => Err(shape(format!("{what} must be an object {shape_text}, not {}", other.kind()))),
    }
}

/// The one value of field `name` (among `aliases`), checking it is given once.
fn field<'a>(
    fields: &'a [(Zeroizing<String>, Json)],
    names: &[&str],
    path: &str,
) -> Result<Option<&'a Json>, BodyError> {
    let mut found = fields.iter().filter(|(k, _)| names.contains(&k.as_str()));
    let first = found.next().map(|(_, v)| v);
    if found.next().is_some() {
        return Err(shape(format!("{path} is given more than once")));
    }
    Ok(first)
}

/// Fields other than `allowed` are refused; the message names the allowed ones, never the
/// field sent (it could be anything, a PIN typed in the wrong place included).
fn only(
    fields: &[(Zeroizing<String>, Json)],
    allowed: &[&str],
    what: &str,
) -> Result<(), BodyError> {
    if fields.iter().any(|(k, _)| !allowed.contains(&k.as_str())) {
        let names = allowed.join(" and ");
        return Err(shape(format!("{what} has a field other than {names}; it takes only those")));
    }
    Ok(())
}

fn string(v: Option<&Json>, path: &str, what: &str) -> Result<(), BodyError> {
    match v {
        None => Err(shape(format!("{path} is missing: {what}"))),
        Some(Json::String) => Ok(()),
        Some(other) => {
            Err(shape(format!("{path} must be a string ({what}), not {}", other.kind())))
        }
    }
}

/// `{"pin": "…"}` or `{"passphrase": "…"}`.
pub fn check_unlock(v: &Json) -> Result<(), BodyError> {
    let fields = object(v, "the body", UNLOCK_SHAPE)?;
    only(fields, &["pin", "passphrase"], "the body")?;
    match field(fields, &["pin", "passphrase"], "pin (or passphrase)")? {
        None => Err(shape(format!("pin is missing: send {UNLOCK_SHAPE}"))),
        pin => string(pin, "pin", "the PIN or passphrase as typed"),
    }
}

/// `{}`.
pub fn check_lock(v: &Json) -> Result<(), BodyError> {
    let fields = object(v, "the body", LOCK_SHAPE)?;
    if !fields.is_empty() {
        return Err(shape("the body must be {}: lock takes no fields".into()));
    }
    Ok(())
}

/// `{"items": [{"record": "vk1.…", "context": "…"}, …]}`.
pub fn check_unseal(v: &Json) -> Result<(), BodyError> {
    let fields = object(v, "the body", UNSEAL_SHAPE)?;
    only(fields, &["items"], "the body")?;
    let items = match field(fields, &["items"], "items")? {
        None => return Err(shape(format!("items is missing: send {UNSEAL_SHAPE}"))),
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(shape(format!(
                "items must be an array of {{record, context}} strings, not {}",
                other.kind()
            )));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("items[{i}]");
        let fields = object(item, &at, r#"{"record": "vk1.…", "context": "…"}"#)?;
        only(fields, &["record", "context"], &at)?;
        let record = field(fields, &["record"], &format!("{at}.record"))?;
        string(record, &format!("{at}.record"), "a vk1. record")?;
        let context = field(fields, &["context"], &format!("{at}.context"))?;
        string(
            context,
            &format!("{at}.context"),
            "the record's context, e.g. \"cust_cards/5/card_number\"",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unseal(body: &str) -> Result<(), BodyError> {
        check_unseal(&outline(body.as_bytes(), UNSEAL_SHAPE)?)
    }

    #[test]
    fn the_outline_keeps_no_string_or_number_content() {
        let v = outline(br#"{"pin": "2468", "n": 1357}"#, UNLOCK_SHAPE).unwrap();
        let text = format!("{v:?}");
        assert!(!text.contains("2468") && !text.contains("1357"), "{text}");
    }

    #[test]
    fn each_wrong_unseal_body_names_its_field_and_shape() {
        for (body, says) in [
            ("[]", "the body must be an object {\"items\""),
            ("{}", "items is missing"),
            (
                r#"{"items": {}}"#,
                "items must be an array of {record, context} strings, not an object",
            ),
            (r#"{"items": [], "x": 1}"#, "the body has a field other than items"),
            (r#"{"items": [], "items": []}"#, "items is given more than once"),
            (r#"{"items": ["vk1.x"]}"#, "items[0] must be an object {\"record\""),
            (
                r#"{"items": [{"record": "a", "context": "b"}, {"context": "b"}]}"#,
                "items[1].record is missing",
            ),
            (
                r#"{"items": [{"record": 5, "context": "b"}]}"#,
                "items[0].record must be a string (a vk1. record), not a number",
            ),
            (
                r#"{"items": [{"record": "a", "context": null}]}"#,
                "items[0].context must be a string",
            ),
            (
                r#"{"items": [{"record": "a", "context": "b", "é": 1}]}"#,
                "items[0] has a field other than record and context",
            ),
            (r#"{"items": [{"record": "a""#, "the body is not JSON (line 1, column 25)"),
        ] {
            let e = unseal(body).unwrap_err().to_string();
            assert!(e.contains(says), "{body}: {e}");
        }
        assert_eq!(unseal(r#"{"items": [{"record": "a", "context": "b"}]}"#), Ok(()));
    }

    #[test]
    fn a_wrong_unlock_body_never_quotes_what_was_sent() {
        for (body, says) in [
            (r#"{"pin": 2468}"#, "pin must be a string"),
            (r#"{"pin": ["2468"]}"#, "pin must be a string"),
            (r#"{"2468": "x"}"#, "the body has a field other than pin and passphrase"),
            (
                r#"{"pin": "1", "passphrase": "2468"}"#,
                "pin (or passphrase) is given more than once",
            ),
            ("{}", "pin is missing"),
            ("\"2468\"", "the body must be an object"),
        ] {
            let e = check_unlock(&outline(body.as_bytes(), UNLOCK_SHAPE).unwrap()).unwrap_err();
            let e = e.to_string();
            assert!(e.contains(says), "{body}: {e}");
            assert!(!e.contains("2468"), "{body}: {e}");
        }
        let ok = |b: &str| check_unlock(&outline(b.as_bytes(), UNLOCK_SHAPE).unwrap());
        assert_eq!(ok(r#"{"pin": "2468"}"#), Ok(()));
        assert_eq!(ok(r#"{"passphrase": "ein Passwort ünd"}"#), Ok(()));
    }

    #[test]
    fn lock_takes_an_empty_object_only() {
        let lock = |b: &str| check_lock(&outline(b.as_bytes(), LOCK_SHAPE).unwrap());
        assert_eq!(lock("{}"), Ok(()));
        assert!(lock("[]").is_err());
        assert!(lock(r#"{"now": true}"#).unwrap_err().to_string().contains("no fields"));
    }
    /// Bodies an attacker would try for a parser differential or a crash: each is refused by
    /// the outline (so the endpoint's own parse never sees it), none quotes the PIN, and deep
    /// nesting stops at serde_json's recursion limit instead of the stack.
    #[test]
    fn hostile_unlock_bodies_are_refused_without_quoting_or_deep_recursion() {
        let deep = format!("{{\"pin\": {}\"2468\"{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let bodies: Vec<Vec<u8>> = vec![
            deep.into_bytes(),
            // The same field twice, once spelled with an escape.
            br#"{"pin": "1357", "p\u0069n": "2468"}"#.to_vec(),
            // Both spellings serde accepts for the one field.
            br#"{"passphrase": "1357", "pin": "2468"}"#.to_vec(),
            // A byte-order mark, NaN, a number beyond f64, bytes that are not UTF-8.
            b"\xef\xbb\xbf{\"pin\": \"2468\"}".to_vec(),
            br#"{"pin": NaN, "x": "2468"}"#.to_vec(),
            br#"{"pin": 1e999, "x": "2468"}"#.to_vec(),
            b"{\"pin\": \"24\xff68\"}".to_vec(),
            // An array serde's derived struct would take as the fields in order.
            br#"["2468"]"#.to_vec(),
        ];
        for body in bodies {
            let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
            let e = outline(&body, UNLOCK_SHAPE).and_then(|v| check_unlock(&v)).unwrap_err();
            let e = e.to_string();
            assert!(!e.contains("2468") && !e.contains("1357"), "{shown}: {e}");
        }
    }
}
