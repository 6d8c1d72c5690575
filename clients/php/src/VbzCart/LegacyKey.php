<?php

declare(strict_types=1);

namespace VbzKey\VbzCart;

use VbzKey\Exception;

/**
 * VbzCart's old RSA private key, for the migration only: it opens the `Encrypted` blobs that
 * VbzCart's `Cipher_pubkey::encrypt` made with `openssl_public_encrypt` (PKCS#1 v1.5 padding),
 * stored raw or base64. It never leaves this process: no method returns it, errors never hold
 * a blob or what it opened to.
 */
final class LegacyKey
{
    private function __construct(private readonly \OpenSSLAsymmetricKey $key, public readonly int $bytes)
    {
    }

    /**
     * Load a PEM private key file the admin alone may read (mode 0600 or stricter). The mode is
     * checked on the file actually opened (fstat of the open handle, after a stat that refuses
     * anything but a regular file, so a FIFO cannot block the tool), not on a path that could
     * be swapped between the check and the read.
     */
    public static function fromFile(string $path, #[\SensitiveParameter] ?string $passphrase): self
    {
        $st = @stat($path);
        if ($st === false) {
            throw new Exception('rsa_key_unreadable', "cannot read the RSA key file $path");
        }
        if (($st['mode'] & 0o170000) !== 0o100000) {
            throw new Exception('rsa_key_not_a_file', "$path is not a regular file: give the RSA private key's PEM file");
        }
        self::checkMode($path, $st['mode']);
        $h = @fopen($path, 'rb');
        if ($h === false) {
            throw new Exception('rsa_key_unreadable', "cannot read the RSA key file $path");
        }
        try {
            $open = fstat($h);
            if ($open === false || $open['dev'] !== $st['dev'] || $open['ino'] !== $st['ino']) {
                throw new Exception('rsa_key_changed', "$path changed while it was being opened: run again");
            }
            self::checkMode($path, $open['mode']);
            $pem = stream_get_contents($h, 1 << 20);
        } finally {
            fclose($h);
        }
        if ($pem === false) {
            throw new Exception('rsa_key_unreadable', "cannot read the RSA key file $path");
        }
        $key = @openssl_pkey_get_private($pem, $passphrase);
        sodium_memzero($pem);
        while (openssl_error_string() !== false) {
            // OpenSSL's error queue may name the reason; it never holds key material, but it
            // must be emptied so a later call does not report this one's error.
        }
        if ($key === false) {
            throw new Exception('rsa_key_bad', "$path is not a PEM RSA private key (or its passphrase is wrong)");
        }
        $details = openssl_pkey_get_details($key);
        if ($details === false || ($details['type'] ?? null) !== OPENSSL_KEYTYPE_RSA) {
            throw new Exception('rsa_key_bad', "$path is not an RSA private key");
        }
        return new self($key, intdiv($details['bits'], 8));
    }

    private static function checkMode(string $path, int $mode): void
    {
        if (($mode & 0o077) !== 0) {
            throw new Exception('rsa_key_exposed', "$path may be read by other users: chmod 600 it (better, keep it on removable media) and run again");
        }
    }

    /**
     * The blob as bytes: exactly one modulus long, raw or in base64 (line breaks allowed).
     * Null when it is neither.
     */
    public function blobBytes(string $stored): ?string
    {
        $text = preg_replace('/[\r\n ]+/', '', $stored) ?? '';
        if (preg_match('/\A[A-Za-z0-9+\/]+={0,2}\z/', $text) && strlen($text) % 4 === 0) {
            $raw = base64_decode($text, true);
            if ($raw !== false && strlen($raw) === $this->bytes) {
                return $raw;
            }
        }
        return strlen($stored) === $this->bytes ? $stored : null;
    }

    /**
     * PKCS#1 v1.5 decryption: the plaintext, or null. A row whose blob does not open, or opens
     * to something that is not a whole VbzCart card, is left exactly as it was, so someone who
     * plants blobs and watches the database learns only "a valid card was inside" — never
     * "the padding was right" — which is no Bleichenbacher oracle (docs/THREAT-MODEL.md).
     */
    public function decrypt(string $blob): ?string
    {
        $ok = @openssl_private_decrypt($blob, $plain, $this->key, OPENSSL_PKCS1_PADDING);
        while (openssl_error_string() !== false) {
            // Drain the queue (see fromFile); its text is not shown.
        }
        return $ok && is_string($plain) ? $plain : null;
    }
}
