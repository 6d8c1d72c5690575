<?php

declare(strict_types=1);

namespace VbzKey;

/**
 * The clear-field split (docs/SPLIT.md): which parts of a customer stay clear for search
 * (card brand and last 4, expiry, postal code, country, phone country and area code, email)
 * and which are sealed (card and bank account numbers, address, phone), with the same rules
 * and error codes as the Rust implementation (`protocol/src/split/`), checked against the
 * shared kit `split-v1.json`. A card security code anywhere is refused (`cvv_refused`).
 */
final class CustomerSplit
{
    private const MAX_ID_LEN = 64;
    private const MAX_EMAIL_LEN = 254;
    private const CVV_KEYS = ['cvv', 'cvc', 'cvv2', 'cvc2', 'cid', 'csc', 'security_code'];
    private const TOP_KEYS = ['id', 'card', 'bank', 'address', 'phone', 'email'];
    private const CARD_KEYS = ['number', 'expiry'];
    private const BANK_KEYS = ['account', 'routing'];
    private const ADDRESS_KEYS = ['lines', 'city', 'region', 'postal_code', 'country'];
    private const TABLES = [
        'card_number' => 'cust_cards',
        'account_number' => 'cust_bank_accounts',
        'address' => 'cust_addrs',
        'phone' => 'cust_phones',
    ];
    private const SHORT_CALLING_CODES = [
        '1', '7', '20', '27', '30', '31', '32', '33', '34', '36', '39', '40', '41', '43', '44', '45',
        '46', '47', '48', '49', '51', '52', '53', '54', '55', '56', '57', '58', '60', '61', '62', '63',
        '64', '65', '66', '81', '82', '84', '86', '90', '91', '92', '93', '94', '95', '98',
    ];
    private const NANP_COUNTRIES = [
        'US', 'CA', 'AG', 'AI', 'AS', 'BB', 'BM', 'BS', 'DM', 'DO', 'GD', 'GU', 'JM', 'KN', 'KY', 'LC',
        'MP', 'MS', 'PR', 'SX', 'TC', 'TT', 'VC', 'VG', 'VI',
    ];
    private const UNIT_WORDS = [
        'APT', 'APARTMENT', 'FLAT', 'UNIT', 'SUITE', 'STE', 'ROOM', 'RM', 'FLOOR', 'FL', 'BOX',
        'BLDG', 'BUILDING', 'DEPT',
    ];
    private const COUNTRIES = 'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS '
        . 'BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE '
        . 'EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM '
        . 'HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC '
        . 'LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA '
        . 'NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW '
        . 'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO '
        . 'TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW';
    /** Unicode White_Space, as Rust's str::trim and char::is_whitespace use it. */
    private const WS = '[\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]';

    private static function fail(string $code, string $message): never
    {
        throw new Exception($code, $message);
    }

    private static function utrim(string $s): string
    {
        return preg_replace('/\A' . self::WS . '+|' . self::WS . '+\z/u', '', $s) ?? $s;
    }

    private static function str(array $a, string $key, string $field): ?string
    {
        if (!array_key_exists($key, $a) || $a[$key] === null) {
            return null;
        }
        if (!is_string($a[$key])) {
            self::fail('bad_type', "$field must be a string");
        }
        return $a[$key];
    }

    private static function checkKeys(array $a, array $allowed, string $where): void
    {
        foreach (array_keys($a) as $k) {
            if (!in_array($k, $allowed, true) && !in_array($k, self::CVV_KEYS, true)) {
                self::fail('unknown_field', "unknown field in $where");
            }
        }
    }

    private static function hasCvv(array $a): bool
    {
        foreach (self::CVV_KEYS as $k) {
            if (array_key_exists($k, $a) && $a[$k] !== null) {
                return true;
            }
        }
        return false;
    }

    private static function stripSeparators(string $input, string $field): string
    {
        $s = self::utrim($input);
        if (!preg_match('/\A[0-9 -]*\z/', $s)) {
            self::fail('not_digits', "$field may only contain digits, spaces and hyphens");
        }
        return str_replace([' ', '-'], '', $s);
    }

    /** The Luhn check of a string of ASCII digits (also used by VbzCart\Card). */
    public static function luhnOk(#[\SensitiveParameter] string $digits): bool
    {
        $sum = 0;
        $n = strlen($digits);
        for ($i = 0; $i < $n; $i++) {
            $d = (int) $digits[$n - 1 - $i];
            if ($i % 2 === 1) {
                $d = $d > 4 ? $d * 2 - 9 : $d * 2;
            }
            $sum += $d;
        }
        return $sum % 10 === 0;
    }

    private static function brand(string $d): string
    {
        $p2 = (int) substr($d, 0, 2);
        $p3 = (int) substr($d, 0, 3);
        $p4 = (int) substr($d, 0, 4);
        if ($p2 === 34 || $p2 === 37) {
            return 'amex';
        }
        if (($p2 >= 51 && $p2 <= 55) || ($p4 >= 2221 && $p4 <= 2720)) {
            return 'mastercard';
        }
        if ($p2 === 65 || ($p3 >= 644 && $p3 <= 649) || $p4 === 6011) {
            return 'discover';
        }
        return $d[0] === '4' ? 'visa' : 'other';
    }

    private static function brandAllows(string $brand, int $len): bool
    {
        return match ($brand) {
            'visa' => in_array($len, [13, 16, 19], true),
            'mastercard' => $len === 16,
            'amex' => $len === 15,
            'discover' => $len >= 16 && $len <= 19,
            default => $len >= 12 && $len <= 19,
        };
    }

    private static function parsePan(string $input): array
    {
        $d = self::stripSeparators($input, 'card.number');
        $len = strlen($d);
        if ($len < 12 || $len > 19) {
            self::fail('bad_length', "card.number has $len digits, which no valid value has");
        }
        if (!self::luhnOk($d)) {
            self::fail('luhn_check_failed', 'card.number fails the Luhn check: it was probably mistyped');
        }
        $brand = self::brand($d);
        if (!self::brandAllows($brand, $len)) {
            self::fail('length_not_valid_for_brand', "card.number has $len digits, which is not a valid length for a $brand card");
        }
        return [$d, $brand];
    }

    private static function parseExpiry(string $input): string
    {
        $bad = fn () => self::fail('bad_expiry', 'card.expiry must be a month and year such as 12/27, 12/2027 or 2027-12');
        $s = preg_replace('/' . self::WS . '/u', '', $input) ?? '';
        if (!preg_match('/\A[0-9\/-]*\z/', $s)) {
            $bad();
        }
        $parts = preg_split('/[\/-]/', $s, 2);
        if (count($parts) === 2) {
            [$a, $b] = $parts;
            if (strlen($a) === 4 && strlen($b) >= 1 && strlen($b) <= 2) {
                [$month, $year] = [$b, $a];
            } elseif (strlen($a) >= 1 && strlen($a) <= 2 && (strlen($b) === 2 || strlen($b) === 4)) {
                [$month, $year] = [$a, $b];
            } else {
                $bad();
            }
        } elseif (strlen($s) === 4) {
            [$month, $year] = [substr($s, 0, 2), substr($s, 2)];
        } else {
            $bad();
        }
        if (!ctype_digit($month) || !ctype_digit($year)) {
            $bad();
        }
        $m = (int) $month;
        $y = (int) $year;
        if ($y < 100) {
            $y += 2000;
        }
        if ($m < 1 || $m > 12 || $y < 2000 || $y > 2099) {
            $bad();
        }
        return sprintf('%04d-%02d', $y, $m);
    }

    private static function ibanMod97(string $iban): int
    {
        $acc = 0;
        foreach (str_split(substr($iban, 4) . substr($iban, 0, 4)) as $c) {
            $acc = ctype_digit($c) ? ($acc * 10 + (int) $c) % 97 : ($acc * 100 + ord($c) - 55) % 97;
        }
        return $acc;
    }

    private static function parseAccount(string $input): string
    {
        $s = strtoupper(str_replace([' ', '-'], '', self::utrim($input)));
        if (strlen($s) >= 2 && ctype_alpha(substr($s, 0, 2))) {
            $len = strlen($s);
            if ($len < 15 || $len > 34 || !ctype_alnum($s) || !ctype_digit(substr($s, 2, 2)) || self::ibanMod97($s) !== 1) {
                self::fail('bad_iban', 'bank.account looks like an IBAN but fails the IBAN check: it was probably mistyped');
            }
            return $s;
        }
        if ($s !== '' && !ctype_digit($s)) {
            self::fail('not_digits', 'bank.account may only contain digits, spaces and hyphens');
        }
        $len = strlen($s);
        if ($len < 4 || $len > 17) {
            self::fail('bad_length', "bank.account has $len digits, which no valid value has");
        }
        return $s;
    }

    private static function parseCountry(string $input): string
    {
        $c = strtoupper(self::utrim($input));
        if ($c === 'UK') {
            $c = 'GB';
        }
        if (strlen($c) !== 2 || !in_array($c, explode(' ', self::COUNTRIES), true)) {
            self::fail('unknown_country', 'address.country must be an ISO 3166-1 alpha-2 code such as US, GB or DE');
        }
        return $c;
    }

    private static function parsePostalCode(string $input, string $country): string
    {
        $words = preg_split('/' . self::WS . '+/u', $input, -1, PREG_SPLIT_NO_EMPTY) ?: [];
        $code = strtoupper(implode(' ', $words));
        $len = strlen($code);
        if (!preg_match('/\A[A-Za-z0-9 -]*\z/', $code) || $len < 2 || $len > 10) {
            self::fail('bad_postal_code', 'address.postal_code is not a valid postal code for the country');
        }
        if ($country === 'US' && !preg_match('/\A[0-9]{5}(-[0-9]{4})?\z/', $code)) {
            self::fail('bad_postal_code', 'address.postal_code is not a valid postal code for the country');
        }
        return $code;
    }

    private static function cleanLines(mixed $lines): array
    {
        if (!is_array($lines) || !array_is_list($lines)) {
            self::fail('bad_type', 'address.lines must be a list of strings');
        }
        $out = [];
        foreach ($lines as $l) {
            if (!is_string($l)) {
                self::fail('bad_type', 'address.lines must be a list of strings');
            }
            $t = self::utrim($l);
            if ($t !== '') {
                $out[] = $t;
            }
        }
        if (!$out) {
            self::fail('no_address_lines', 'address.lines must hold at least one non-empty line');
        }
        if (count($out) > 4) {
            self::fail('too_many_address_lines', 'address.lines may hold at most 4 lines');
        }
        foreach ($out as $l) {
            if (preg_match_all('/./us', $l) > 100 || preg_match('/\p{Cc}/u', $l)) {
                self::fail('bad_address_line', 'an address line is longer than 100 characters or holds control characters');
            }
        }
        return $out;
    }

    private static function streetNumber(array $lines): ?string
    {
        foreach ($lines as $line) {
            $afterUnit = false;
            foreach (preg_split('/[ ,\t]/', $line, -1, PREG_SPLIT_NO_EMPTY) as $word) {
                $upper = strtoupper(rtrim($word, '.'));
                if (ctype_digit($word[0]) && !$afterUnit) {
                    preg_match('/\A[A-Za-z0-9\/-]*/', $word, $m);
                    // At most 10 characters and 8 digits (docs/SPLIT.md).
                    $plausible = strlen($m[0]) <= 10 && preg_match_all('/[0-9]/', $m[0]) <= 8;
                    return $plausible ? strtoupper($m[0]) : null;
                }
                $afterUnit = in_array($upper, self::UNIT_WORDS, true) || $upper === '#';
            }
        }
        return null;
    }

    private static function parsePhone(string $input, ?string $country): array
    {
        $trimmed = self::utrim($input);
        $plus = str_starts_with($trimmed, '+');
        $rest = $plus ? substr($trimmed, 1) : $trimmed;
        if (!preg_match('/\A[0-9 .()-]*\z/', $rest)) {
            self::fail('bad_phone_characters', "phone may only contain digits, a leading '+', spaces, '-', '.', '(' and ')'");
        }
        $digits = preg_replace('/[^0-9]/', '', $rest);
        $international = $plus || str_starts_with($digits, '00');
        if (!$plus && $international) {
            $digits = substr($digits, 2);
        }
        if (!$international) {
            $nanp = $country === null || in_array($country, self::NANP_COUNTRIES, true);
            $len = strlen($digits);
            if ($len === 10 && $nanp) {
                $digits = '1' . $digits;
            } elseif (!($len === 11 && $nanp && $digits[0] === '1')) {
                self::fail('phone_needs_country_code', 'phone must be in international form, such as +44 20 7946 0958');
            }
        }
        $len = strlen($digits);
        if ($len < 7 || $len > 15 || $digits[0] === '0') {
            self::fail('bad_phone_length', "phone has $len digits with its country code; E.164 numbers have 7-15");
        }
        $ccLen = 3;
        foreach (self::SHORT_CALLING_CODES as $cc) {
            if (str_starts_with($digits, $cc)) {
                $ccLen = strlen($cc);
                break;
            }
        }
        $cc = substr($digits, 0, $ccLen);
        $area = null;
        if ($cc === '1') {
            if ($len !== 11 || $digits[1] === '0' || $digits[1] === '1') {
                self::fail('bad_nanp_number', 'phone is a +1 (NANP) number but not 10 digits with a valid area code');
            }
            $area = substr($digits, 1, 3);
        }
        return ['+' . $digits, $cc, $area];
    }

    private static function normaliseEmail(string $input): string
    {
        $e = self::utrim($input);
        $bad = fn () => self::fail('bad_email', 'email must look like name@example.com (at most 254 characters)');
        $at = strpos($e, '@');
        if ($at === false) {
            $bad();
        }
        $local = substr($e, 0, $at);
        $domain = substr($e, $at + 1);
        $ok = strlen($e) <= self::MAX_EMAIL_LEN
            && strlen($local) >= 1 && strlen($local) <= 64
            && $domain !== ''
            && !str_contains($domain, '@')
            && str_contains($domain, '.')
            && !str_starts_with($domain, '.') && !str_ends_with($domain, '.')
            && !str_contains($domain, '..')
            && !preg_match('/' . self::WS . '|\p{Cc}/u', $e);
        if (!$ok) {
            $bad();
        }
        return $local . '@' . strtolower($domain);
    }

    /**
     * Split a customer record into clear fields and values to seal.
     * Returns ['clear' => [...all keys...], 'sealed' => [field => ['table', 'context', 'value']]].
     */
    public static function split(array $c): array
    {
        self::checkKeys($c, self::TOP_KEYS, 'the customer');
        foreach (['card' => self::CARD_KEYS, 'bank' => self::BANK_KEYS, 'address' => self::ADDRESS_KEYS] as $part => $keys) {
            if (isset($c[$part])) {
                if (!is_array($c[$part])) {
                    self::fail('bad_type', "$part must be an object");
                }
                self::checkKeys($c[$part], $keys, $part);
                if ($part !== 'card' && self::hasCvv($c[$part])) {
                    self::fail('unknown_field', "unknown field in $part");
                }
            }
        }
        if (self::hasCvv($c) || (isset($c['card']) && self::hasCvv($c['card']))) {
            self::fail('cvv_refused', 'a card security code (CVV/CVC) was supplied: PCI DSS forbids storing it, even sealed; remove it from the input');
        }
        $id = self::str($c, 'id', 'id');
        if ($id === null || $id === '' || strlen($id) > self::MAX_ID_LEN || !preg_match('/\A[A-Za-z0-9_.:-]+\z/', $id)) {
            self::fail('bad_id', "id must be 1-64 characters of letters, digits, '_', '.', ':' or '-'");
        }
        $clear = array_fill_keys([
            'card_brand', 'card_last4', 'card_expiry', 'bank_last4', 'bank_routing', 'street_number',
            'postal_code', 'country', 'phone_country_code', 'phone_area_code', 'email',
        ], null);
        $sealed = [];
        $seal = function (string $field, string $value) use (&$sealed, $id): void {
            $table = self::TABLES[$field];
            $sealed[$field] = ['table' => $table, 'context' => "$table/$id/$field", 'value' => $value];
        };
        if (isset($c['card'])) {
            [$pan, $brand] = self::parsePan(self::str($c['card'], 'number', 'card.number') ?? self::fail('bad_type', 'card.number is required'));
            $clear['card_expiry'] = self::parseExpiry(self::str($c['card'], 'expiry', 'card.expiry') ?? self::fail('bad_type', 'card.expiry is required'));
            $clear['card_brand'] = $brand;
            $clear['card_last4'] = substr($pan, -4);
            $seal('card_number', $pan);
        }
        if (isset($c['bank'])) {
            $account = self::parseAccount(self::str($c['bank'], 'account', 'bank.account') ?? self::fail('bad_type', 'bank.account is required'));
            $routing = self::str($c['bank'], 'routing', 'bank.routing');
            if ($routing !== null) {
                $r = self::stripSeparators($routing, 'bank.routing');
                if (strlen($r) < 6 || strlen($r) > 11) {
                    self::fail('bad_length', 'bank.routing has ' . strlen($r) . ' digits, which no valid value has');
                }
                $clear['bank_routing'] = $r;
            }
            // The last 4, or the last half of an account shorter than 8 (docs/SPLIT.md).
            $shown = min(4, intdiv(strlen($account), 2));
            $clear['bank_last4'] = $shown === 0 ? '' : substr($account, -$shown);
            $seal('account_number', $account);
        }
        if (isset($c['address'])) {
            $a = $c['address'];
            $country = self::parseCountry(self::str($a, 'country', 'address.country') ?? self::fail('bad_type', 'address.country is required'));
            $lines = self::cleanLines($a['lines'] ?? null);
            $clear['street_number'] = self::streetNumber($lines);
            $postal = self::str($a, 'postal_code', 'address.postal_code');
            $clear['postal_code'] = $postal === null ? null : self::parsePostalCode($postal, $country);
            $full = implode("\n", $lines);
            $locality = [];
            foreach (['city', 'region'] as $k) {
                $v = self::str($a, $k, "address.$k");
                if ($v !== null && self::utrim($v) !== '') {
                    $locality[] = self::utrim($v);
                }
            }
            if ($locality) {
                $full .= "\n" . implode(', ', $locality);
            }
            $clear['country'] = $country;
            // An address that is nothing but its number would be in clear whole.
            if ($clear['street_number'] === $full) {
                $clear['street_number'] = null;
            }
            $seal('address', $full);
        }
        $phone = self::str($c, 'phone', 'phone');
        if ($phone !== null) {
            [$e164, $cc, $area] = self::parsePhone($phone, $clear['country']);
            $clear['phone_country_code'] = $cc;
            $clear['phone_area_code'] = $area;
            $seal('phone', $e164);
        }
        $email = self::str($c, 'email', 'email');
        if ($email !== null) {
            $clear['email'] = self::normaliseEmail($email);
        }
        return ['clear' => $clear, 'sealed' => $sealed];
    }
}
