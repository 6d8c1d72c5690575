//! The clear-field split: which parts of a customer record stay readable (for matching,
//! searching and reality checks) and which are sealed.
//!
//! | input | kept clear | sealed (table / field) |
//! | --- | --- | --- |
//! | card number + expiry | brand, last 4, expiry `YYYY-MM` | `cust_cards` / `card_number` |
//! | bank account (+ routing) | last 4, routing | `cust_bank_accounts` / `account_number` |
//! | address | street number, postal code, country | `cust_addrs` / `address` |
//! | phone | country calling code, NANP area code | `cust_phones` / `phone` (E.164) |
//! | email | email (domain lower-cased) | — |
//!
//! A card verification value (CVV, CVC, CID…) is refused outright: PCI DSS forbids storing
//! it after authorisation, sealed or not. Errors name the field, never its value.

mod address;
mod card;
mod phone;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::de::IgnoredAny;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use card::CardBrand;

/// Longest row id accepted; ids become part of every context string.
const MAX_ID_LEN: usize = 64;
/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// Why a customer record cannot be split. Messages name the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A card verification value was supplied.
    #[error(
        "a card security code (CVV/CVC) was supplied: PCI DSS forbids storing it, even sealed; \
         remove it from the input"
    )]
    CvvRefused,
    /// The row id is empty, too long, or has characters outside `A-Z a-z 0-9 _ . : -`.
    #[error("id must be 1-{MAX_ID_LEN} characters of letters, digits, '_', '.', ':' or '-'")]
    BadId,
    /// A number field holds something other than digits, spaces and hyphens.
    #[error("{field} may only contain digits, spaces and hyphens")]
    NotDigits {
        /// The input field.
        field: &'static str,
    },
    /// A number field has an impossible length.
    #[error("{field} has {len} digits, which no valid value has")]
    BadLength {
        /// The input field.
        field: &'static str,
        /// Digits found.
        len: usize,
    },
    /// The card number fails the Luhn check (a typo).
    #[error("card.number fails the Luhn check: it was probably mistyped")]
    LuhnCheckFailed,
    /// The card number's length does not exist for its brand.
    #[error("card.number has {len} digits, which is not a valid length for a {brand:?} card")]
    LengthNotValidForBrand {
        /// The brand from the IIN range.
        brand: CardBrand,
        /// Digits found.
        len: usize,
    },
    /// The expiry date is not a recognised month and year.
    #[error("card.expiry must be a month and year such as 12/27, 12/2027 or 2027-12")]
    BadExpiry,
    /// The IBAN is malformed or fails its mod-97 check.
    #[error("bank.account looks like an IBAN but fails the IBAN check: it was probably mistyped")]
    BadIban,
    /// The address has no non-empty line.
    #[error("address.lines must hold at least one non-empty line")]
    NoAddressLines,
    /// The address has too many lines.
    #[error("address.lines may hold at most {max} lines")]
    TooManyAddressLines {
        /// The limit.
        max: usize,
    },
    /// An address line is too long or holds control characters.
    #[error("an address line is longer than {max_chars} characters or holds control characters")]
    BadAddressLine {
        /// The limit.
        max_chars: usize,
    },
    /// The postal code has bad characters or length.
    #[error("address.postal_code is not a valid postal code for the country")]
    BadPostalCode,
    /// The country is not an ISO 3166-1 alpha-2 code.
    #[error("address.country must be an ISO 3166-1 alpha-2 code such as US, GB or DE")]
    UnknownCountry,
    /// The phone has characters other than digits, `+`, spaces, `-`, `.`, `(`, `)`.
    #[error("phone may only contain digits, a leading '+', spaces, '-', '.', '(' and ')'")]
    BadPhoneCharacters,
    /// A national-form phone number outside NANP.
    #[error("phone must be in international form, such as +44 20 7946 0958")]
    PhoneNeedsCountryCode,
    /// The phone number is too short or too long for E.164.
    #[error("phone has {len} digits with its country code; E.164 numbers have 7-15")]
    BadPhoneLength {
        /// Digits found.
        len: usize,
    },
    /// A +1 number that is not NPA-NXX-XXXX.
    #[error("phone is a +1 (NANP) number but not 10 digits with a valid area code")]
    BadNanpNumber,
    /// The email address is malformed.
    #[error("email must look like name@example.com (at most {MAX_EMAIL_LEN} characters)")]
    BadEmail,
}

impl SplitError {
    /// A stable, machine-readable name for the error, shared with other implementations.
    pub fn code(&self) -> &'static str {
        match self {
            SplitError::CvvRefused => "cvv_refused",
            SplitError::BadId => "bad_id",
            SplitError::NotDigits { .. } => "not_digits",
            SplitError::BadLength { .. } => "bad_length",
            SplitError::LuhnCheckFailed => "luhn_check_failed",
            SplitError::LengthNotValidForBrand { .. } => "length_not_valid_for_brand",
            SplitError::BadExpiry => "bad_expiry",
            SplitError::BadIban => "bad_iban",
            SplitError::NoAddressLines => "no_address_lines",
            SplitError::TooManyAddressLines { .. } => "too_many_address_lines",
            SplitError::BadAddressLine { .. } => "bad_address_line",
            SplitError::BadPostalCode => "bad_postal_code",
            SplitError::UnknownCountry => "unknown_country",
            SplitError::BadPhoneCharacters => "bad_phone_characters",
            SplitError::PhoneNeedsCountryCode => "phone_needs_country_code",
            SplitError::BadPhoneLength { .. } => "bad_phone_length",
            SplitError::BadNanpNumber => "bad_nanp_number",
            SplitError::BadEmail => "bad_email",
        }
    }
}

/// A customer / payment record as the store hands it over at checkout.
#[derive(Debug, Clone, Default, serde::Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// Row id: goes into every context (`table/id/field`).
    pub id: String,
    /// A payment card.
    #[serde(default)]
    pub card: Option<CardInput>,
    /// A bank account.
    #[serde(default)]
    pub bank: Option<BankInput>,
    /// A postal address.
    #[serde(default)]
    pub address: Option<AddressInput>,
    /// A telephone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// An email address (kept clear).
    #[serde(default)]
    pub email: Option<String>,
    /// Present only to be refused: PCI DSS forbids storing a CVV.
    #[serde(default, alias = "cvc", alias = "cvv2", alias = "cvc2", alias = "cid", alias = "csc")]
    #[serde(alias = "security_code")]
    #[zeroize(skip)]
    pub cvv: Option<IgnoredAny>,
}

/// A payment card.
#[derive(Debug, Clone, Default, serde::Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    /// The primary account number, as typed (spaces and hyphens allowed).
    pub number: String,
    /// Expiry month and year.
    pub expiry: String,
    /// Present only to be refused.
    #[serde(default, alias = "cvc", alias = "cvv2", alias = "cvc2", alias = "cid", alias = "csc")]
    #[serde(alias = "security_code")]
    #[zeroize(skip)]
    pub cvv: Option<IgnoredAny>,
}

/// A bank account.
#[derive(Debug, Clone, Default, serde::Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct BankInput {
    /// An IBAN or a domestic account number.
    pub account: String,
    /// Routing number / sort code (not secret: it names the bank).
    #[serde(default)]
    pub routing: Option<String>,
}

/// A postal address.
#[derive(Debug, Clone, Default, serde::Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Street lines, 1 to 4.
    pub lines: Vec<String>,
    /// City or town.
    #[serde(default)]
    pub city: Option<String>,
    /// State, province or county.
    #[serde(default)]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 code.
    pub country: String,
}

/// The fields kept in clear beside the sealed ones. Every key is always present (null when
/// the input had no such part) so other implementations can compare output byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClearFields {
    /// Card brand by IIN range.
    pub card_brand: Option<CardBrand>,
    /// Last four digits of the card number.
    pub card_last4: Option<String>,
    /// Expiry as `YYYY-MM`.
    pub card_expiry: Option<String>,
    /// Last four characters of the bank account number.
    pub bank_last4: Option<String>,
    /// Routing number / sort code, digits only.
    pub bank_routing: Option<String>,
    /// House number from the street lines.
    pub street_number: Option<String>,
    /// Normalised postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// E.164 country calling code, digits only.
    pub phone_country_code: Option<String>,
    /// NANP area code (for +1 numbers only).
    pub phone_area_code: Option<String>,
    /// Email address, domain lower-cased.
    pub email: Option<String>,
}

/// A value to seal, with where it goes.
#[derive(Debug)]
pub struct SealedField {
    /// SCD table the value belongs in.
    pub table: &'static str,
    /// Column name.
    pub field: &'static str,
    /// The context to seal under: `table/id/field`.
    pub context: String,
    /// The normalised plaintext.
    pub value: Zeroizing<String>,
}

/// The result of a split: clear fields plus values to seal.
#[derive(Debug)]
pub struct Split {
    /// Fields kept in clear.
    pub clear: ClearFields,
    /// Values to seal, in a fixed order (card, bank, address, phone).
    pub sealed: Vec<SealedField>,
}

/// Table and field names used in contexts; `docs/SCHEMA.md` names the same columns.
pub mod tables {
    /// Card numbers.
    pub const CARDS: (&str, &str) = ("cust_cards", "card_number");
    /// Bank account numbers.
    pub const BANK_ACCOUNTS: (&str, &str) = ("cust_bank_accounts", "account_number");
    /// Postal addresses.
    pub const ADDRESSES: (&str, &str) = ("cust_addrs", "address");
    /// Telephone numbers.
    pub const PHONES: (&str, &str) = ("cust_phones", "phone");
}

/// The context string a value is sealed under.
pub fn context(table: &str, id: &str, field: &str) -> String {
    format!("{table}/{id}/{field}")
}

/// The last four characters, or the last half (rounded down) of a value shorter than eight:
/// the clear part never shows more than half of what is sealed (a fuzzing find: a 4-digit
/// account number was in clear whole).
fn last4(s: &str) -> String {
    let n = s.chars().count();
    s.chars().skip(n - (n / 2).min(4)).collect()
}

/// Split a customer record into clear fields and values to seal.
pub fn split(input: &CustomerInput) -> Result<Split, SplitError> {
    if input.cvv.is_some() || input.card.as_ref().is_some_and(|c| c.cvv.is_some()) {
        return Err(SplitError::CvvRefused);
    }
    let id = input.id.as_str();
    let id_ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if !id_ok {
        return Err(SplitError::BadId);
    }

    let mut clear = ClearFields::default();
    let mut sealed = Vec::new();
    let mut seal = |(table, field): (&'static str, &'static str), value: String| {
        let context = context(table, id, field);
        sealed.push(SealedField { table, field, context, value: Zeroizing::new(value) });
    };

    if let Some(c) = &input.card {
        let pan = card::parse_pan(&c.number)?;
        clear.card_expiry = Some(card::parse_expiry(&c.expiry)?);
        clear.card_brand = Some(pan.brand);
        clear.card_last4 = Some(last4(&pan.digits));
        seal(tables::CARDS, pan.digits);
    }
    if let Some(b) = &input.bank {
        let account = card::parse_account(&b.account)?;
        clear.bank_routing = b.routing.as_deref().map(card::parse_routing).transpose()?;
        clear.bank_last4 = Some(last4(&account.number));
        seal(tables::BANK_ACCOUNTS, account.number);
    }
    if let Some(a) = &input.address {
        let country = address::parse_country(&a.country)?;
        let lines = address::clean_lines(&a.lines)?;
        clear.street_number = address::street_number(&lines);
        clear.postal_code = a
            .postal_code
            .as_deref()
            .map(|p| address::parse_postal_code(p, &country))
            .transpose()?;
        let mut full = lines.join("\n");
        let locality: Vec<&str> = [&a.city, &a.region]
            .into_iter()
            .filter_map(|s| s.as_deref().map(str::trim).filter(|s| !s.is_empty()))
            .collect();
        if !locality.is_empty() {
            full.push('\n');
            full.push_str(&locality.join(", "));
        }
        clear.country = Some(country);
        // An address that is nothing but its number would be in clear whole.
        if clear.street_number.as_deref() == Some(full.as_str()) {
            clear.street_number = None;
        }
        seal(tables::ADDRESSES, full);
    }
    if let Some(p) = &input.phone {
        let phone = phone::parse_phone(p, clear.country.as_deref())?;
        clear.phone_country_code = Some(phone.country_code);
        clear.phone_area_code = phone.area_code;
        seal(tables::PHONES, phone.e164);
    }
    if let Some(e) = &input.email {
        clear.email = Some(normalise_email(e)?);
    }
    Ok(Split { clear, sealed })
}

/// Trim, check the shape (one `@`, a dotted domain, no spaces or control characters) and
/// lower-case the domain (the local part is case-sensitive by RFC 5321).
fn normalise_email(input: &str) -> Result<String, SplitError> {
    let e = input.trim();
    let (local, domain) = e.split_once('@').ok_or(SplitError::BadEmail)?;
    let shape_ok = e.len() <= MAX_EMAIL_LEN
        && (1..=64).contains(&local.len())
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shape_ok {
        return Err(SplitError::BadEmail);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clear_last_characters_never_show_more_than_half_of_a_value() {
        for (value, shown) in [
            ("4111111111111111", "1111"),
            ("12345678", "5678"),
            ("1234567", "567"),
            ("00217", "17"),
            ("0021", "21"),
            ("9", ""),
        ] {
            assert_eq!(last4(value), shown, "{value}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(normalise_email(" Ada@Example.COM ").as_deref(), Ok("Ada@example.com"));
        for bad in ["ada", "ada@", "@x.com", "a@b", "a@@b.com", "a b@c.com", "a@.com", "a@b..com"] {
            assert_eq!(normalise_email(bad), Err(SplitError::BadEmail), "{bad}");
        }
    }
}
