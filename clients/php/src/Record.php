<?php

declare(strict_types=1);

namespace VbzKey;

/**
 * Record format v1 (docs/FORMAT.md): `VK` ‖ version 1 ‖ suite 1 ‖ key id (8) ‖ enc (32) ‖
 * HPKE ciphertext; info `vbzkey record v1`; aad = the 12 header bytes ‖ the context. Text form
 * `vk1.` + unpadded base64url. Public keys are `vkpub1.` + 43 base64url characters.
 */
final class Record
{
    public const MAX_PLAINTEXT_LEN = 4096;
    public const MAX_CONTEXT_LEN = 512;
    public const INFO = 'vbzkey record v1';
    private const PUBLIC_PREFIX = 'vkpub1.';

    /** Seal a UTF-8 value to a recipient's 32 key bytes (a fresh ephemeral key each time): the binary record. */
    public static function seal(string $pkR, string $context, #[\SensitiveParameter] string $plaintext): string
    {
        self::check($context, $plaintext);
        [$shared, $enc] = Hpke::encap($pkR);
        return self::sealWith($pkR, $context, $plaintext, $shared, $enc);
    }

    /** The value and context a record may hold (checked before any key is drawn). */
    private static function check(string $context, #[\SensitiveParameter] string $plaintext): void
    {
        if (strlen($plaintext) > self::MAX_PLAINTEXT_LEN) {
            throw new Exception('plaintext_too_long', 'value is longer than 4096 bytes');
        }
        if (!preg_match('//u', $plaintext)) {
            throw new Exception('plaintext_not_utf8', 'value is not UTF-8 text');
        }
        if (strlen($context) > self::MAX_CONTEXT_LEN) {
            throw new Exception('context_too_long', 'context is longer than 512 bytes');
        }
    }

    /**
     * The record from an encapsulation already made. Private: with a chosen ephemeral key it
     * would reuse the AEAD key and nonce, so only seal() calls it; the kit tests reach it
     * through tests/Support/Privately.php.
     */
    private static function sealWith(string $pkR, string $context, #[\SensitiveParameter] string $plaintext, #[\SensitiveParameter] string $shared, string $enc): string
    {
        [$key, $nonce] = Hpke::keySchedule($shared, self::INFO);
        $header = "VK\x01\x01" . self::keyId($pkR);
        $ct = sodium_crypto_aead_chacha20poly1305_ietf_encrypt($plaintext, $header . $context, $nonce, $key);
        sodium_memzero($shared);
        sodium_memzero($key);
        return $header . $enc . $ct;
    }

    /** First 8 bytes of SHA-256("vbzkey key id v1" ‖ public key). */
    public static function keyId(string $pk): string
    {
        return substr(hash('sha256', 'vbzkey key id v1' . $pk, true), 0, 8);
    }

    public static function toText(string $record): string
    {
        return 'vk1.' . self::b64($record);
    }

    /** The 32 key bytes of a `vkpub1.` public key (surrounding whitespace ignored). */
    public static function parsePublicKey(string $text): string
    {
        $text = trim($text);
        if (!str_starts_with($text, self::PUBLIC_PREFIX)) {
            throw new Exception('bad_public_key', 'not a vbzkey public key: it must start with vkpub1.');
        }
        $body = substr($text, strlen(self::PUBLIC_PREFIX));
        $raw = self::unb64($body);
        if ($raw === null || strlen($raw) !== 32 || self::b64($raw) !== $body) {
            throw new Exception('bad_public_key', 'the public key is damaged: expected 43 base64url characters');
        }
        return $raw;
    }

    public static function b64(string $bytes): string
    {
        return rtrim(strtr(base64_encode($bytes), '+/', '-_'), '=');
    }

    /** Strict unpadded base64url; null if invalid. */
    public static function unb64(string $text): ?string
    {
        if (!preg_match('/\A[A-Za-z0-9_-]*\z/', $text) || strlen($text) % 4 === 1) {
            return null;
        }
        $raw = base64_decode(strtr($text, '-_', '+/') . str_repeat('=', (4 - strlen($text) % 4) % 4), true);
        return $raw === false ? null : $raw;
    }
}
