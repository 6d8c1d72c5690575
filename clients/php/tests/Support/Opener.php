<?php

declare(strict_types=1);

namespace VbzKey\Tests\Support;

use VbzKey\Exception;
use VbzKey\Hpke;
use VbzKey\Record;

/**
 * A record OPENER, for the tests only. A store never needs one: it has no private key. It
 * checks records in the order docs/FORMAT.md gives, with the same error codes as Rust.
 */
final class Opener
{
    /** The 32 private key bytes of a `vksec1.` text key. */
    public static function parseSecretKey(string $text): string
    {
        $text = trim($text);
        if (!str_starts_with($text, 'vksec1.')) {
            throw new Exception('bad_secret_key', 'not a vbzkey secret key');
        }
        $raw = Record::unb64(substr($text, 7));
        if ($raw === null || strlen($raw) !== 32) {
            throw new Exception('bad_secret_key', 'the secret key is damaged');
        }
        return $raw;
    }

    public static function fromText(string $text): string
    {
        if (!str_starts_with($text, 'vk1.')) {
            throw new Exception('bad_text_prefix', 'not a vbzkey record text');
        }
        if (strlen($text) > 4 + intdiv(4156 * 4 + 2, 3)) {
            throw new Exception('too_long', 'record text is too long');
        }
        $body = substr($text, 4);
        $raw = Record::unb64($body);
        if ($raw === null || Record::b64($raw) !== $body) {
            throw new Exception('bad_base64', 'record text is not canonical unpadded base64url');
        }
        return $raw;
    }

    public static function open(string $sk, string $context, string $record): string
    {
        $len = strlen($record);
        if ($len < 4) {
            throw new Exception('truncated', 'record is truncated');
        }
        if (substr($record, 0, 2) !== 'VK') {
            throw new Exception('bad_magic', 'wrong magic');
        }
        if ($record[2] !== "\x01") {
            throw new Exception('unsupported_version', 'unsupported version');
        }
        if ($record[3] !== "\x01") {
            throw new Exception('unsupported_suite', 'unsupported suite');
        }
        if ($len < 60) {
            throw new Exception('truncated', 'record is truncated');
        }
        if ($len > 4156) {
            throw new Exception('too_long', 'record is too long');
        }
        if (strlen($context) > Record::MAX_CONTEXT_LEN) {
            throw new Exception('context_too_long', 'context is too long');
        }
        $pk = sodium_crypto_scalarmult_base($sk);
        if (!hash_equals(Record::keyId($pk), substr($record, 4, 8))) {
            throw new Exception('unknown_key_id', 'sealed to another key');
        }
        $header = substr($record, 0, 12);
        $shared = Hpke::decap(substr($record, 12, 32), $sk, $pk);
        [$key, $nonce] = Hpke::keySchedule($shared, Record::INFO);
        $pt = sodium_crypto_aead_chacha20poly1305_ietf_decrypt(substr($record, 44), $header . $context, $nonce, $key);
        if ($pt === false) {
            throw new Exception('tag_mismatch', 'record does not open');
        }
        if (!preg_match('//u', $pt)) {
            throw new Exception('plaintext_not_utf8', 'value is not UTF-8');
        }
        return $pt;
    }

    /** The error code `$f` throws, or null if it returns. */
    public static function errorCode(callable $f): ?string
    {
        try {
            $f();
            return null;
        } catch (Exception $e) {
            return $e->getErrorCode();
        }
    }
}
