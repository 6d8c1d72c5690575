//! Telephone numbers: E.164 normalisation, the country calling code and the NANP area code.

use alloc::string::String;

use super::SplitError;

/// E.164 allows at most 15 digits including the country code.
const MAX_E164_DIGITS: usize = 15;
/// The shortest numbers in service (e.g. Niue, +683 4002) have 7 digits with the code.
const MIN_E164_DIGITS: usize = 7;

/// One- and two-digit ITU-T E.164 country calling codes. Calling codes are prefix-free, so
/// any number starting with none of these has a three-digit code.
const SHORT_CALLING_CODES: &[&str] = &[
    "1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
    "46", "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
    "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
];

/// Countries of the North American Numbering Plan (+1), where a 10-digit national number
/// without "+1" is unambiguous.
const NANP_COUNTRIES: &[&str] = &[
    "US", "CA", "AG", "AI", "AS", "BB", "BM", "BS", "DM", "DO", "GD", "GU", "JM", "KN", "KY", "LC",
    "MP", "MS", "PR", "SX", "TC", "TT", "VC", "VG", "VI",
];

/// A normalised phone number.
pub(super) struct Phone {
    /// `+` and the digits: what gets sealed.
    pub(super) e164: String,
    pub(super) country_code: String,
    /// Only for NANP numbers, where the area code is a meaningful, coarse location.
    pub(super) area_code: Option<String>,
}

/// Normalise `input`. Accepted: digits with spaces, hyphens, dots and parentheses; a leading
/// `+` or `00` for the international form. Without one, a 10-digit number (or 11 digits
/// starting with 1) is taken as NANP when `country` is a NANP country or unknown; anything
/// else must be written in international form.
pub(super) fn parse_phone(input: &str, country: Option<&str>) -> Result<Phone, SplitError> {
    let trimmed = input.trim();
    let (international, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(SplitError::BadPhoneCharacters),
        }
    }
    let international = international || digits.starts_with("00");
    if !trimmed.starts_with('+') && international {
        digits.drain(..2);
    }
    if !international {
        let nanp_country = country.is_none_or(|c| NANP_COUNTRIES.contains(&c));
        match digits.len() {
            10 if nanp_country => digits.insert(0, '1'),
            11 if nanp_country && digits.starts_with('1') => {}
            _ => return Err(SplitError::PhoneNeedsCountryCode),
        }
    }
    if !(MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&digits.len()) || digits.starts_with('0') {
        return Err(SplitError::BadPhoneLength { len: digits.len() });
    }
    let cc_len =
        SHORT_CALLING_CODES.iter().find(|cc| digits.starts_with(**cc)).map_or(3, |cc| cc.len());
    let country_code =
        String::from(digits.get(..cc_len).ok_or(SplitError::BadPhoneLength { len: digits.len() })?);
    let area_code = if country_code == "1" {
        // NANP: +1 NPA NXX XXXX, and an area code (NPA) never starts with 0 or 1.
        if digits.len() != 11 || matches!(digits.as_bytes().get(1), Some(b'0' | b'1')) {
            return Err(SplitError::BadNanpNumber);
        }
        digits.get(1..4).map(String::from)
    } else {
        None
    };
    let mut e164 = String::with_capacity(digits.len() + 1);
    e164.push('+');
    e164.push_str(&digits);
    Ok(Phone { e164, country_code, area_code })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str, country: Option<&str>) -> (String, String, Option<String>) {
        let p = parse_phone(input, country).unwrap_or_else(|e| panic!("{input}: {e}"));
        (p.e164, p.country_code, p.area_code)
    }

    #[test]
    fn international_and_national_forms() {
        let us = ("+14155550100".into(), "1".into(), Some("415".into()));
        assert_eq!(ok("+1 (415) 555-0100", None), us);
        assert_eq!(ok("(415) 555.0100", Some("US")), us);
        assert_eq!(ok("1-415-555-0100", Some("CA")), us);
        assert_eq!(ok("001 415 555 0100", Some("DE")), us);
        assert_eq!(ok("+44 20 7946 0958", Some("GB")), ("+442079460958".into(), "44".into(), None));
        assert_eq!(ok("+353 1 234 5678", None), ("+35312345678".into(), "353".into(), None));
        assert_eq!(ok("+7 495 123 45 67", None).1, "7");
    }

    #[test]
    fn bad_phones() {
        assert_eq!(
            parse_phone("020 7946 0958", Some("GB")).err(),
            Some(SplitError::PhoneNeedsCountryCode)
        );
        assert_eq!(
            parse_phone("+1 415 555 0100 x12", None).err(),
            Some(SplitError::BadPhoneCharacters)
        );
        assert_eq!(parse_phone("+1 115 555 0100", None).err(), Some(SplitError::BadNanpNumber));
        assert!(matches!(
            parse_phone("+44 1234567890123456", None),
            Err(SplitError::BadPhoneLength { .. })
        ));
        assert!(matches!(parse_phone("+0 123 4567", None), Err(SplitError::BadPhoneLength { .. })));
        assert!(matches!(parse_phone("", None), Err(SplitError::PhoneNeedsCountryCode)));
    }
}
