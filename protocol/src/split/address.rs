//! Postal addresses: the street number, postal code and ISO 3166-1 alpha-2 country.

use alloc::string::String;
use alloc::vec::Vec;

use super::SplitError;

/// Officially assigned ISO 3166-1 alpha-2 codes (249), sorted for binary search.
const ISO_3166_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Words after which a number names a unit or a box, not the building on the street.
const UNIT_WORDS: &[&str] = &[
    "APT",
    "APARTMENT",
    "FLAT",
    "UNIT",
    "SUITE",
    "STE",
    "ROOM",
    "RM",
    "FLOOR",
    "FL",
    "BOX",
    "BLDG",
    "BUILDING",
    "DEPT",
];

/// Address lines a label can hold.
const MAX_LINES: usize = 4;
/// A generous line limit; longer lines are almost always pasted junk.
const MAX_LINE_CHARS: usize = 100;

/// The country as an ISO 3166-1 alpha-2 code (case-insensitive; "UK" is taken as "GB", the
/// exceptionally reserved code people actually type).
pub(super) fn parse_country(input: &str) -> Result<String, SplitError> {
    let code = input.trim().to_ascii_uppercase();
    let code = if code == "UK" { String::from("GB") } else { code };
    if ISO_3166_ALPHA2.binary_search(&code.as_str()).is_ok() {
        Ok(code)
    } else {
        Err(SplitError::UnknownCountry)
    }
}

/// Postal codes: trimmed, upper case, inner runs of spaces folded to one; 2–10 characters of
/// letters, digits, spaces and hyphens. US ZIP codes must be `12345` or `12345-6789`.
pub(super) fn parse_postal_code(input: &str, country: &str) -> Result<String, SplitError> {
    let code = input.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
    let charset_ok = code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
    if !charset_ok || !(2..=10).contains(&code.len()) {
        return Err(SplitError::BadPostalCode);
    }
    if country == "US" {
        let b = code.as_bytes();
        let zip5 = b.len() == 5 && b.iter().all(u8::is_ascii_digit);
        let zip9 = b.len() == 10
            && b.iter()
                .enumerate()
                .all(|(i, c)| if i == 5 { *c == b'-' } else { c.is_ascii_digit() });
        if !(zip5 || zip9) {
            return Err(SplitError::BadPostalCode);
        }
    }
    Ok(code)
}

/// Trimmed, non-empty address lines, checked for count and length.
pub(super) fn clean_lines(lines: &[String]) -> Result<Vec<&str>, SplitError> {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return Err(SplitError::NoAddressLines);
    }
    if lines.len() > MAX_LINES {
        return Err(SplitError::TooManyAddressLines { max: MAX_LINES });
    }
    if lines.iter().any(|l| l.chars().count() > MAX_LINE_CHARS || l.chars().any(char::is_control)) {
        return Err(SplitError::BadAddressLine { max_chars: MAX_LINE_CHARS });
    }
    Ok(lines)
}

/// The street (house) number: in the first line that has one, the first word that starts
/// with a digit and does not follow a unit word (Apt, Flat, Suite, Box, …). The word is cut
/// at the first character that is not a letter, digit, `-` or `/`, and upper-cased:
/// "221b Baker St" → "221B", "Flat 4, 12 High St" → "12", "Hauptstraße 5" → "5".
/// Longest street number kept in clear, and most digits in it: longer digit runs are more
/// likely a phone or account number typed into the address than a house number (a fuzzing
/// find, docs/TESTING.md), and they would put that number in clear.
const MAX_STREET_NUMBER: usize = 10;
const MAX_STREET_NUMBER_DIGITS: usize = 8;

pub(super) fn street_number(lines: &[&str]) -> Option<String> {
    for line in lines {
        let mut after_unit_word = false;
        for word in line.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
            let upper = word.trim_end_matches('.').to_ascii_uppercase();
            if word.starts_with(|c: char| c.is_ascii_digit()) && !after_unit_word {
                let number: String = word
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '/')
                    .collect();
                let digits = number.bytes().filter(u8::is_ascii_digit).count();
                let plausible =
                    number.len() <= MAX_STREET_NUMBER && digits <= MAX_STREET_NUMBER_DIGITS;
                return plausible.then(|| number.to_ascii_uppercase());
            }
            after_unit_word = UNIT_WORDS.contains(&upper.as_str()) || upper == "#";
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_list_is_sorted_and_complete() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ISO_3166_ALPHA2.len(), 249);
    }

    #[test]
    fn countries() {
        assert_eq!(parse_country(" us ").as_deref(), Ok("US"));
        assert_eq!(parse_country("UK").as_deref(), Ok("GB"));
        assert_eq!(parse_country("XX"), Err(SplitError::UnknownCountry));
        assert_eq!(parse_country("USA"), Err(SplitError::UnknownCountry));
    }

    #[test]
    fn postal_codes() {
        assert_eq!(parse_postal_code(" sw1a   1aa ", "GB").as_deref(), Ok("SW1A 1AA"));
        assert_eq!(parse_postal_code("62701-1234", "US").as_deref(), Ok("62701-1234"));
        assert_eq!(parse_postal_code("6270", "US"), Err(SplitError::BadPostalCode));
        assert_eq!(parse_postal_code("10115", "DE").as_deref(), Ok("10115"));
        assert_eq!(parse_postal_code("12;DROP", "DE"), Err(SplitError::BadPostalCode));
    }

    #[test]
    fn street_numbers() {
        for (lines, want) in [
            (&["221b Baker St"][..], Some("221B")),
            (&["Flat 4, 12 High St"][..], Some("12")),
            (&["Apt. 7", "350 Fifth Avenue"][..], Some("350")),
            (&["Hauptstraße 5"][..], Some("5")),
            (&["12-14 Rue de Rivoli"][..], Some("12-14")),
            (&["PO Box 123"][..], None),
            (&["Rose Cottage", "Main Street"][..], None),
            (&["# 5", "9 Elm Rd"][..], Some("9")),
            (&["1000-1002 Main St"][..], Some("1000-1002")),
            (&["2125551234 Main St"][..], None),
            (&["12345678901b Elm Rd"][..], None),
        ] {
            assert_eq!(street_number(lines).as_deref(), want, "{lines:?}");
        }
    }
}
