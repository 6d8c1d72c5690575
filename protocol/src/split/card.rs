//! Payment card numbers (Luhn, brand by IIN range), expiry dates and bank account numbers.

use alloc::string::String;

use super::SplitError;

/// Card brand, by issuer identification number (IIN) range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardBrand {
    /// 4; 13, 16 or 19 digits.
    Visa,
    /// 51–55 and 2221–2720; 16 digits.
    Mastercard,
    /// 34, 37; 15 digits.
    Amex,
    /// 6011, 644–649, 65; 16–19 digits.
    Discover,
    /// A Luhn-valid number outside the ranges above (12–19 digits).
    Other,
}

impl CardBrand {
    fn of(digits: &str) -> Self {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        match (prefix(2), prefix(3), prefix(4)) {
            (34 | 37, _, _) => CardBrand::Amex,
            (51..=55, _, _) | (_, _, 2221..=2720) => CardBrand::Mastercard,
            (65, _, _) | (_, 644..=649, _) | (_, _, 6011) => CardBrand::Discover,
            _ if digits.starts_with('4') => CardBrand::Visa,
            _ => CardBrand::Other,
        }
    }

    fn allows_length(self, len: usize) -> bool {
        match self {
            CardBrand::Visa => matches!(len, 13 | 16 | 19),
            CardBrand::Mastercard => len == 16,
            CardBrand::Amex => len == 15,
            CardBrand::Discover => (16..=19).contains(&len),
            CardBrand::Other => (MIN_PAN_LEN..=MAX_PAN_LEN).contains(&len),
        }
    }
}

/// ISO/IEC 7812 primary account numbers are 12 to 19 digits long.
const MIN_PAN_LEN: usize = 12;
const MAX_PAN_LEN: usize = 19;

/// A checked card number: digits only.
pub(super) struct Pan {
    pub(super) digits: String,
    pub(super) brand: CardBrand,
}

/// Digits of `input` with the separators people type (spaces, hyphens) removed.
fn strip_separators(input: &str, field: &'static str) -> Result<String, SplitError> {
    let mut out = String::with_capacity(input.len());
    for c in input.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' => {}
            _ => return Err(SplitError::NotDigits { field }),
        }
    }
    Ok(out)
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { if d > 4 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub(super) fn parse_pan(input: &str) -> Result<Pan, SplitError> {
    let field = "card.number";
    let digits = strip_separators(input, field)?;
    if !(MIN_PAN_LEN..=MAX_PAN_LEN).contains(&digits.len()) {
        return Err(SplitError::BadLength { field, len: digits.len() });
    }
    if !luhn_ok(&digits) {
        return Err(SplitError::LuhnCheckFailed);
    }
    let brand = CardBrand::of(&digits);
    if !brand.allows_length(digits.len()) {
        return Err(SplitError::LengthNotValidForBrand { brand, len: digits.len() });
    }
    Ok(Pan { digits, brand })
}

/// Normalise an expiry date to `YYYY-MM`. Accepts `MM/YY`, `MM/YYYY`, `MM-YY`, `MM-YYYY`,
/// `MMYY`, `YYYY-MM` and `YYYY/MM`, with optional spaces around the separator; a one-digit
/// month is allowed where a separator is used.
pub(super) fn parse_expiry(input: &str) -> Result<String, SplitError> {
    let bad = SplitError::BadExpiry;
    let s: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.chars().all(|c| c.is_ascii_digit() || c == '/' || c == '-') {
        return Err(bad);
    }
    let (month, year) = match s.split_once(['/', '-']) {
        Some((a, b)) if a.len() == 4 && (1..=2).contains(&b.len()) => (b, a),
        Some((a, b)) if (1..=2).contains(&a.len()) && matches!(b.len(), 2 | 4) => (a, b),
        None if s.len() == 4 => s.split_at_checked(2).ok_or(SplitError::BadExpiry)?,
        _ => return Err(bad),
    };
    if year.contains(['/', '-']) {
        return Err(bad);
    }
    let month: u32 = month.parse().map_err(|_| bad.clone())?;
    let mut year: u32 = year.parse().map_err(|_| bad.clone())?;
    if year < 100 {
        year += 2000;
    }
    if !(1..=12).contains(&month) || !(2000..=2099).contains(&year) {
        return Err(bad);
    }
    Ok(alloc::format!("{year:04}-{month:02}"))
}

/// A checked bank account: an IBAN (mod-97 checked) or a domestic account number.
pub(super) struct Account {
    pub(super) number: String,
}

/// Domestic account numbers: 4 (short European) to 17 (US ACH maximum) digits.
const DOMESTIC_ACCOUNT_LEN: core::ops::RangeInclusive<usize> = 4..=17;
/// IBANs are 15 (Norway) to 34 characters long (ISO 13616).
const IBAN_LEN: core::ops::RangeInclusive<usize> = 15..=34;

pub(super) fn parse_account(input: &str) -> Result<Account, SplitError> {
    let field = "bank.account";
    let s: String = input
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.as_bytes().get(..2).is_some_and(|cc| cc.iter().all(u8::is_ascii_alphabetic)) {
        if !IBAN_LEN.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SplitError::BadIban);
        }
        let check_digits = s.as_bytes().get(2..4);
        if !check_digits.is_some_and(|d| d.iter().all(u8::is_ascii_digit)) || iban_mod97(&s) != 1 {
            return Err(SplitError::BadIban);
        }
        return Ok(Account { number: s });
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SplitError::NotDigits { field });
    }
    if !DOMESTIC_ACCOUNT_LEN.contains(&s.len()) {
        return Err(SplitError::BadLength { field, len: s.len() });
    }
    Ok(Account { number: s })
}

/// ISO 7064 mod 97-10 over the IBAN with its first four characters moved to the end.
fn iban_mod97(iban: &str) -> u32 {
    let (head, tail) = iban.split_at_checked(4).unwrap_or((iban, ""));
    let rotated = tail.bytes().chain(head.bytes());
    rotated.fold(0u32, |acc, b| {
        let v = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        if v >= 10 { (acc * 100 + v) % 97 } else { (acc * 10 + v) % 97 }
    })
}

/// Bank routing / sort codes are not secret (they name the bank); kept clear as digits.
pub(super) fn parse_routing(input: &str) -> Result<String, SplitError> {
    let field = "bank.routing";
    let digits = strip_separators(input, field)?;
    if !(6..=11).contains(&digits.len()) {
        return Err(SplitError::BadLength { field, len: digits.len() });
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_by_iin_range() {
        for (pan, brand) in [
            ("4111111111111111", CardBrand::Visa),
            ("4222222222222", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("2221000000000009", CardBrand::Mastercard),
            ("2720990000000007", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("341111111111111", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("6445644564456445", CardBrand::Discover),
            ("6500000000000002", CardBrand::Discover),
            ("3530111333300000", CardBrand::Other),
        ] {
            assert_eq!(parse_pan(pan).map(|p| p.brand).ok(), Some(brand), "{pan}");
        }
    }

    #[test]
    fn bad_card_numbers() {
        assert_eq!(parse_pan("4111111111111112").err(), Some(SplitError::LuhnCheckFailed));
        assert!(matches!(parse_pan("4111 1111 1111 111a"), Err(SplitError::NotDigits { .. })));
        assert!(matches!(parse_pan("41111"), Err(SplitError::BadLength { .. })));
        // 2220 is just outside the Mastercard 2-series range: Luhn-valid, brand "other".
        assert_eq!(parse_pan("2220990000000002").map(|p| p.brand).ok(), Some(CardBrand::Other));
        // A 15-digit Visa-range number is not a Visa length.
        assert!(matches!(
            parse_pan("411111111111009"),
            Err(SplitError::LengthNotValidForBrand { brand: CardBrand::Visa, len: 15 })
        ));
    }

    #[test]
    fn expiry_forms() {
        for (input, want) in [
            ("12/27", "2027-12"),
            ("1/27", "2027-01"),
            ("01/2030", "2030-01"),
            ("0330", "2030-03"),
            ("2031-11", "2031-11"),
            (" 07 / 29 ", "2029-07"),
        ] {
            assert_eq!(parse_expiry(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["13/27", "00/27", "12", "12/2", "1227/", "aa/bb", "12/27/1", "2031-13", ""] {
            assert_eq!(parse_expiry(bad), Err(SplitError::BadExpiry), "{bad}");
        }
    }

    #[test]
    fn accounts() {
        assert_eq!(
            parse_account("GB82 WEST 1234 5698 7654 32").unwrap().number,
            "GB82WEST12345698765432"
        );
        assert_eq!(
            parse_account("gb82west12345698765432").unwrap().number,
            "GB82WEST12345698765432"
        );
        assert_eq!(parse_account("GB82WEST12345698765433").err(), Some(SplitError::BadIban));
        assert_eq!(parse_account("000123456789").unwrap().number, "000123456789");
        assert!(matches!(parse_account("12"), Err(SplitError::BadLength { .. })));
        assert_eq!(parse_routing("021-000-021").as_deref(), Ok("021000021"));
    }
}
