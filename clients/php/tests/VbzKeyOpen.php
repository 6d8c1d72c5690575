<?php
/**
 * A record OPENER in PHP, for the interop tests only. A store never needs this: it has no
 * private key. It checks records in the order docs/FORMAT.md gives, with the same error codes.
 */

declare(strict_types=1);

require_once __DIR__ . '/../VbzKey.php';

final class VbzKeyOpen
{
    /** The 32 private key bytes of a `vksec1.` text key. */
    public static function parseSecretKey(string $text): string
    {
        $text = trim($text);
        if (!str_starts_with($text, 'vksec1.')) {
            throw new VbzKeyException('bad_secret_key', 'not a vbzkey secret key');
        }
        $raw = VbzKey::unb64(substr($text, 7));
        if ($raw === null || strlen($raw) !== 32) {
            throw new VbzKeyException('bad_secret_key', 'the secret key is damaged');
        }
        return $raw;
    }

    public static function fromText(string $text): string
    {
        if (!str_starts_with($text, 'vk1.')) {
            throw new VbzKeyException('bad_text_prefix', 'not a vbzkey record text');
        }
        if (strlen($text) > 4 + intdiv(4156 * 4 + 2, 3)) {
            throw new VbzKeyException('too_long', 'record text is too long');
        }
        $body = substr($text, 4);
        $raw = VbzKey::unb64($body);
        if ($raw === null || VbzKey::b64($raw) !== $body) {
            throw new VbzKeyException('bad_base64', 'record text is not canonical unpadded base64url');
        }
        return $raw;
    }

    public static function open(string $sk, string $context, string $record): string
    {
        $len = strlen($record);
        if ($len < 4) {
            throw new VbzKeyException('truncated', 'record is truncated');
        }
        if (substr($record, 0, 2) !== 'VK') {
            throw new VbzKeyException('bad_magic', 'wrong magic');
        }
        if ($record[2] !== "\x01") {
            throw new VbzKeyException('unsupported_version', 'unsupported version');
        }
        if ($record[3] !== "\x01") {
            throw new VbzKeyException('unsupported_suite', 'unsupported suite');
        }
        if ($len < 60) {
            throw new VbzKeyException('truncated', 'record is truncated');
        }
        if ($len > 4156) {
            throw new VbzKeyException('too_long', 'record is too long');
        }
        if (strlen($context) > VbzKey::MAX_CONTEXT_LEN) {
            throw new VbzKeyException('context_too_long', 'context is too long');
        }
        $pk = sodium_crypto_scalarmult_base($sk);
        if (!hash_equals(VbzKey::keyId($pk), substr($record, 4, 8))) {
            throw new VbzKeyException('unknown_key_id', 'sealed to another key');
        }
        $header = substr($record, 0, 12);
        $enc = substr($record, 12, 32);
        $shared = VbzKey::decap($enc, $sk, $pk);
        [$key, $nonce] = VbzKey::keySchedule($shared, 'vbzkey record v1');
        $pt = sodium_crypto_aead_chacha20poly1305_ietf_decrypt(substr($record, 44), $header . $context, $nonce, $key);
        if ($pt === false) {
            throw new VbzKeyException('tag_mismatch', 'record does not open');
        }
        if (!preg_match('//u', $pt)) {
            throw new VbzKeyException('plaintext_not_utf8', 'value is not UTF-8');
        }
        return $pt;
    }
}
