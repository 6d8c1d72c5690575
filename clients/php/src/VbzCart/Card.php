<?php

declare(strict_types=1);

namespace VbzKey\VbzCart;

use VbzKey\CustomerSplit;
use VbzKey\Exception;

/**
 * A card as VbzCart keeps it (docs/VBZCART.md): its number, its expiry and the parts of its
 * `cust_cards` row derived from them. VbzCart packs a card for its cipher as
 * "\t" . number . "\t" . cvv . "\t" . expiry; this class reads that string (and the clear
 * `CardNum`/`CardExp` columns), keeps the number and the expiry, and never keeps the CVV: it
 * only says whether there was one, so the caller can count or log that it was dropped.
 *
 * Errors are {@see Exception}s whose message names the field, never its value.
 */
final class Card
{
    /** The longest packed string accepted: 19 digits with separators, a CVV, an expiry, tabs. */
    public const MAX_PACKED_LEN = 96;

    /**
     * @param string $number 12 to 19 ASCII digits, Luhn-valid
     * @param ?array{0:int,1:int} $expiry [year, month], or null when none could be read
     * @param bool $expiryUnreadable an expiry was given but could not be read (null $expiry)
     */
    private function __construct(
        #[\SensitiveParameter] public readonly string $number,
        public readonly ?array $expiry,
        public readonly bool $expiryUnreadable = false,
    ) {
    }

    /**
     * VbzCart's packed string. Returns the card and whether a CVV was in it (the CVV itself is
     * wiped from memory and never returned).
     *
     * @return array{0:Card,1:bool}
     */
    public static function fromPacked(#[\SensitiveParameter] string $packed): array
    {
        if ($packed === '') {
            throw new Exception('empty', 'the packed card string is empty');
        }
        if (strlen($packed) > self::MAX_PACKED_LEN) {
            throw new Exception('packed_too_long', 'the packed card string is longer than ' . self::MAX_PACKED_LEN . ' bytes');
        }
        if (!preg_match('/\A[\t\x20-\x7e]*\z/', $packed)) {
            throw new Exception('bad_characters', 'the packed card string holds a byte that is not printable ASCII');
        }
        $fields = explode("\t", $packed);
        if (count($fields) !== 4 || $fields[0] !== '') {
            throw new Exception('bad_field_count', 'the packed card string must be "\t" number "\t" cvv "\t" expiry: 3 tab-led fields, got ' . (count($fields) - 1));
        }
        [, $number, $cvv, $expiry] = $fields;
        $hadCvv = trim($cvv) !== '';
        sodium_memzero($cvv);
        sodium_memzero($fields[2]);
        $exp = self::expiry($expiry);
        $card = new self(self::number($number), $exp, $exp === null && trim($expiry) !== '');
        sodium_memzero($packed);
        return [$card, $hadCvv];
    }

    /** The clear columns: `CardNum` as VbzCart stored it and `CardExp` (a DATE, or null). */
    public static function fromColumns(#[\SensitiveParameter] string $cardNum, #[\SensitiveParameter] ?string $cardExp): self
    {
        if (!preg_match('/\A[\x20-\x7e]*\z/', $cardNum)) {
            throw new Exception('bad_characters', 'CardNum holds a byte that is not printable ASCII');
        }
        return new self(self::number($cardNum), $cardExp === null ? null : self::expiry($cardExp));
    }

    /** 12 to 19 digits once spaces and hyphens (as a customer types them) are taken out. */
    private static function number(#[\SensitiveParameter] string $raw): string
    {
        $d = str_replace([' ', '-'], '', trim($raw));
        if ($d === '') {
            throw new Exception('no_number', 'the card number is empty');
        }
        if (!ctype_digit($d)) {
            throw new Exception('not_digits', 'the card number may only hold digits, spaces and hyphens');
        }
        if (strlen($d) < 12 || strlen($d) > 19) {
            throw new Exception('bad_length', 'the card number has ' . strlen($d) . ' digits; a card has 12 to 19');
        }
        if (!CustomerSplit::luhnOk($d)) {
            throw new Exception('luhn_check_failed', 'the card number fails the Luhn check');
        }
        return $d;
    }

    /**
     * An expiry in the forms VbzCart accepts (its `ExpiryText_toDate`): MMYY or MMYYYY (no other
     * run of digits: "127" could be 1/27 or 12/7);
     * month/year; month/day/year or year/month/day (a DATE column reads `2027-12-31`), with
     * `/`, `-`, `.` or a space between the parts. A two-digit year is 20YY. Null when empty or
     * unreadable: VbzCart then writes `?/?` into `CardSafe`, and so does the migration.
     *
     * @return ?array{0:int,1:int}
     */
    private static function expiry(#[\SensitiveParameter] string $raw): ?array
    {
        $raw = trim($raw);
        if ($raw === '' || !preg_match('/\A[0-9\/.\- ]{1,16}\z/', $raw)) {
            return null;
        }
        $p = preg_split('/[\/.\- ]/', $raw);
        [$y, $m] = match (count($p)) {
            1 => in_array(strlen($raw), [4, 6], true) ? [substr($raw, 2), substr($raw, 0, 2)] : ['', ''],
            2 => [$p[1], $p[0]],
            3 => strlen($p[0]) > 3 ? [$p[0], $p[1]] : [$p[2], $p[0]],
            default => ['', ''],
        };
        if (!ctype_digit($y) || !ctype_digit($m) || strlen($y) > 4 || strlen($m) > 2) {
            return null;
        }
        [$y, $m] = [(int) $y, (int) $m];
        if ($y < 100) {
            $y += 2000;
        }
        return ($m >= 1 && $m <= 12 && $y >= 1970 && $y <= 2099) ? [$y, $m] : null;
    }

    /** VbzCart's type letter: 3 Amex, 4 Visa, 5 MasterCard, 6 Discover, else `?` and the digit. */
    public function typeLetter(): string
    {
        return match ($this->number[0]) {
            '3' => 'A',
            '4' => 'V',
            '5' => 'M',
            '6' => 'D',
            default => '?' . $this->number[0],
        };
    }

    /** `CardSafe` as VbzCart writes it: type letter, `-`, last 4, `x`, expiry `n/y` (`V-1111x12/27`). */
    public function cardSafe(): string
    {
        $date = $this->expiry === null ? '?/?' : sprintf('%d/%02d', $this->expiry[1], $this->expiry[0] % 100);
        return $this->typeLetter() . '-' . substr($this->number, -4) . 'x' . $date;
    }

    /** `CardExp` (a DATE): the last day of the expiry month, as VbzCart stores it; null if none. */
    public function cardExp(): ?string
    {
        if ($this->expiry === null) {
            return null;
        }
        [$y, $m] = $this->expiry;
        return (new \DateTimeImmutable(sprintf('%04d-%02d-01', $y, $m)))->format('Y-m-t');
    }
}
