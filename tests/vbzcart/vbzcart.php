<?php
/**
 * Driven by tests/tests/vbzcart_migration.rs; does what VbzCart itself does, with PHP's own
 * openssl and PDO:
 *
 *   php vbzcart.php legacy-rows DSN USER PASSWORD_FILE OUT_DIR N
 *       A fresh RSA-2048 key (OUT_DIR/rsa-private.pem, 0600), and N cust_cards rows made the
 *       way VbzCart makes them: the packed string "\t" number "\t" cvv "\t" expiry encrypted
 *       with openssl_public_encrypt (PKCS#1 v1.5, VbzCart's Cipher_pubkey::encrypt), stored raw
 *       or base64, with CardNum/CardExp/CardCVV clear, wiped, or both; some rows damaged.
 *       OUT_DIR/expected.json says, per row id, what the migration must make of it.
 *   php vbzcart.php cipher VKPUB1_FILE < ["\tnumber\tcvv\texpiry", ...]
 *       VbzKey\VbzCart\Cipher on each packed string, as VbzCart's checkout calls its cipher:
 *       {"records": [...], "log": [...]}.
 */

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php';

use VbzKey\CustomerSplit;
use VbzKey\VbzCart\Cipher;

function luhn_complete(string $body): string
{
    for ($d = 0; $d <= 9; $d++) {
        if (CustomerSplit::luhnOk($body . $d)) {
            return $body . $d;
        }
    }
    throw new LogicException('unreachable');
}

/** [number, type letter, cvv length] for brand slot $b. */
function card_number(int $b): array
{
    [$prefix, $len, $letter, $cvvLen] = [
        ['4', 16, 'V', 3], ['51', 16, 'M', 3], ['37', 15, 'A', 4], ['6011', 16, 'D', 3],
        ['4', 19, 'V', 3], ['2221', 16, '?2', 3], ['4', 13, 'V', 3], ['55', 16, 'M', 3],
    ][$b % 8];
    $body = $prefix;
    while (strlen($body) < $len - 1) {
        $body .= (string) mt_rand(0, 9);
    }
    return [luhn_complete($body), $letter, $cvvLen];
}

function legacy_rows(array $argv): void
{
    [, , $dsn, $user, $passwordFile, $out, $n] = $argv;
    mt_srand(20261130);
    $db = new PDO($dsn, $user, trim(file_get_contents($passwordFile)), [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => false,
    ]);
    $key = openssl_pkey_new(['private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA]);
    openssl_pkey_export($key, $pem);
    $keyFile = "$out/rsa-private.pem";
    touch($keyFile);
    chmod($keyFile, 0600);
    file_put_contents($keyFile, $pem);
    $public = openssl_pkey_get_details($key)['key'];
    $other = openssl_pkey_get_details(openssl_pkey_new(['private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA]))['key'];
    // VbzCart's Cipher_pubkey::encrypt: openssl_public_encrypt with its default padding.
    $encrypt = function (string $packed, string $pub = '') use ($public): string {
        if (!openssl_public_encrypt($packed, $blob, $pub === '' ? $public : $pub)) {
            throw new RuntimeException('openssl_public_encrypt failed');
        }
        return $blob;
    };
    $insert = $db->prepare('INSERT INTO cust_cards (ID, WhenEnt, ID_Cust, CardNum, CardExp, CardCVV, CardSafe, OwnerName, Encrypted, isActive)'
        . ' VALUES (?, NOW(), ?, ?, ?, ?, ?, ?, ?, TRUE)');
    $expected = [];
    $db->beginTransaction();
    for ($i = 0; $i < (int) $n; $i++) {
        $id = 5001 + $i;
        [$number, $letter, $cvvLen] = card_number(intdiv($i, 20) + $i);
        [$y, $m] = [mt_rand(2026, 2033), mt_rand(1, 12)];
        $date = (new DateTimeImmutable(sprintf('%04d-%02d-01', $y, $m)))->format('Y-m-t');
        $typed = [sprintf('%d/%02d', $m, $y % 100), sprintf('%02d%02d', $m, $y % 100), $date][$i % 3];
        $cvv = $i % 7 === 0 ? '' : str_pad((string) mt_rand(0, 10 ** $cvvLen - 1), $cvvLen, '0', STR_PAD_LEFT);
        $safe = sprintf('%s-%sx%d/%02d', $letter, substr($number, -4), $m, $y % 100);
        $packed = "\t$number\t$cvv\t$typed";
        $kind = $i % 20;
        // Columns as VbzCart leaves them: [CardNum, CardExp, CardCVV, CardSafe, Encrypted].
        $row = match (true) {
            // Checkout: Encrypt(FALSE, FALSE) then save: clear number and expiry, and the blob.
            $kind <= 5 => [$kind === 5 ? chunk_split($number, 4, ' ') : $number, $date, $kind <= 1 ? $cvv : null, $safe,
                base64_encode($encrypt($packed))],
            // Wiped (Encrypt(TRUE, TRUE)): the blob alone, base64 or raw.
            $kind <= 15 => [null, null, null, $safe, $kind % 2 === 0 ? base64_encode($encrypt($packed)) : $encrypt($packed)],
            // Never encrypted: all clear.
            $kind === 16 => [$number, $date, $cvv, $safe, null],
            // Number and CVV wiped, expiry kept.
            $kind === 17 => [null, $date, null, $safe, $encrypt($packed)],
            // No card at all.
            $kind === 18 => [null, null, null, '', null],
            default => null,
        };
        if ($row === null) {
            // Damaged, in seven ways. Two of them keep a clear CVV beside what cannot be read (a
            // mistyped number, an Encrypted that is not a blob): the migration must drop it.
            $d = intdiv($i, 20) % 7;
            $bad = "\t$number\t\t$typed";
            [$row, $reason] = match ($d) {
                0 => [[null, null, null, $safe, base64_encode(substr($encrypt($bad), 0, 200))], 'not_an_rsa_blob'],
                1 => [[null, null, null, $safe, (function () use ($encrypt, $bad) {
                    $b = $encrypt($bad);
                    $b[100] = chr(ord($b[100]) ^ 0x40);
                    return $b;
                })()], null],
                2 => [[null, null, null, $safe, base64_encode($encrypt($bad, $other))], null],
                3 => [[null, null, null, $safe, base64_encode($encrypt("\t$number\t$typed"))], 'bad_packed_card'],
                4 => [[null, null, null, $safe, base64_encode($encrypt("\t" . substr($number, 0, -1) . ((int) substr($number, -1) + 1) % 10 . "\t\t$typed"))], 'bad_packed_card'],
                5 => [['4111-1111-IIII-1111', $date, '123', $safe, null], 'not_digits'],
                default => [[null, null, '9876', $safe, 'not encrypted at all'], 'not_an_rsa_blob'],
            };
            if ($reason === null) {
                // Whether a damaged blob fails the padding check or, rarely, opens to garbage,
                // as the migration will find it with the same key.
                $blob = strlen($row[4]) === 256 ? $row[4] : base64_decode($row[4]);
                $reason = openssl_private_decrypt($blob, $plain, $key) ? 'bad_packed_card' : 'rsa_decrypt_failed';
            }
            $expected[$id] = ['kind' => 'damaged', 'reason' => $reason, 'cvv_seen' => $row[2] !== null];
        } else {
            $expected[$id] = match (true) {
                $kind === 18 => ['kind' => 'no_card'],
                default => [
                    'kind' => $row[0] !== null ? 'clear' : 'blob',
                    'number' => $number,
                    'card_exp' => $date,
                    'card_safe' => $safe,
                    // The migration counts a CVV it saw: clear in CardCVV, or in a blob it opened.
                    'cvv_seen' => ($row[2] ?? '') !== '' || ($row[0] === null && $cvv !== ''),
                    'cvv' => $cvv,
                ],
            };
        }
        $insert->execute([$id, 700 + $i, $row[0], $row[1], $row[2], $row[3], "Holder $id", $row[4]]);
    }
    $db->commit();
    file_put_contents("$out/expected.json", json_encode($expected, JSON_THROW_ON_ERROR | JSON_PRETTY_PRINT));
}

function cipher(array $argv): void
{
    $log = [];
    $c = new Cipher(function (string $line) use (&$log): void {
        $log[] = $line;
    });
    $c->PubKey(file_get_contents($argv[2]));
    $records = array_map(fn (string $p) => $c->encrypt($p), json_decode(stream_get_contents(STDIN), true, 8, JSON_THROW_ON_ERROR));
    echo json_encode(['records' => $records, 'log' => $log], JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES), "\n";
}

match ($argv[1] ?? '') {
    'legacy-rows' => legacy_rows($argv),
    'cipher' => cipher($argv),
    default => throw new InvalidArgumentException('mode: legacy-rows or cipher'),
};
