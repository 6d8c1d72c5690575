<?php

declare(strict_types=1);

namespace VbzKey;

/**
 * RFC 9180 (HPKE) for the one suite of record format v1: base mode, DHKEM(X25519,
 * HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305; on ext-sodium and hash. Tested byte for byte
 * against the RFC's appendix A.2 vectors.
 *
 * @internal the public API is {@see Sealer}; these steps are public for the vector tests.
 */
final class Hpke
{
    private const KEM_SUITE = "KEM\x00\x20";
    private const HPKE_SUITE = "HPKE\x00\x20\x00\x01\x00\x03";

    public static function labeledExtract(string $suite, string $salt, string $label, string $ikm): string
    {
        // HKDF-Extract with an empty salt uses HashLen zero bytes (RFC 5869 §2.2).
        return hash_hmac('sha256', 'HPKE-v1' . $suite . $label . $ikm, $salt === '' ? str_repeat("\0", 32) : $salt, true);
    }

    public static function labeledExpand(string $suite, string $prk, string $label, string $info, int $len): string
    {
        $labeledInfo = pack('n', $len) . 'HPKE-v1' . $suite . $label . $info;
        $out = '';
        $t = '';
        for ($i = 1; strlen($out) < $len; $i++) {
            $t = hash_hmac('sha256', $t . $labeledInfo . chr($i), $prk, true);
            $out .= $t;
        }
        return substr($out, 0, $len);
    }

    /** DeriveKeyPair: [private key, public key]. */
    public static function deriveKeyPair(string $ikm): array
    {
        $prk = self::labeledExtract(self::KEM_SUITE, '', 'dkp_prk', $ikm);
        $sk = self::labeledExpand(self::KEM_SUITE, $prk, 'sk', '', 32);
        return [$sk, sodium_crypto_scalarmult_base($sk)];
    }

    private static function dh(string $sk, string $pk): string
    {
        try {
            // libsodium refuses an all-zero result (a low-order point) by throwing.
            $dh = sodium_crypto_scalarmult($sk, $pk);
        } catch (\SodiumException) {
            throw new Exception('low_order_point', 'the public key is a low-order point: not a valid recipient');
        }
        if (hash_equals(str_repeat("\0", 32), $dh)) {
            throw new Exception('low_order_point', 'the public key is a low-order point: not a valid recipient');
        }
        return $dh;
    }

    private static function extractAndExpand(string $dh, string $kemContext): string
    {
        $prk = self::labeledExtract(self::KEM_SUITE, '', 'eae_prk', $dh);
        return self::labeledExpand(self::KEM_SUITE, $prk, 'shared_secret', $kemContext, 32);
    }

    /** Encap(pkR) with a fresh random ephemeral key: [shared secret, enc]. */
    public static function encap(string $pkR): array
    {
        $skE = random_bytes(32);
        try {
            return self::encapWith($pkR, $skE);
        } finally {
            sodium_memzero($skE);
        }
    }

    /**
     * Encap(pkR) with the given ephemeral private key: [shared secret, enc]. Private: reusing
     * an ephemeral key reuses the AEAD key and nonce, so only encap() (random_bytes) calls it;
     * the vector tests reach it through tests/Support/Privately.php.
     */
    private static function encapWith(string $pkR, string $skE): array
    {
        $enc = sodium_crypto_scalarmult_base($skE);
        $dh = self::dh($skE, $pkR);
        $shared = self::extractAndExpand($dh, $enc . $pkR);
        sodium_memzero($dh);
        return [$shared, $enc];
    }

    /** Decap(enc, skR) given pkR (the tests' opener uses it; a store never has skR). */
    public static function decap(string $enc, string $skR, string $pkR): string
    {
        $dh = self::dh($skR, $enc);
        $shared = self::extractAndExpand($dh, $enc . $pkR);
        sodium_memzero($dh);
        return $shared;
    }

    /** Base-mode key schedule: [key, base nonce, key schedule context, secret]. */
    public static function keySchedule(string $shared, string $info): array
    {
        $ksc = "\x00" . self::labeledExtract(self::HPKE_SUITE, '', 'psk_id_hash', '')
            . self::labeledExtract(self::HPKE_SUITE, '', 'info_hash', $info);
        $secret = self::labeledExtract(self::HPKE_SUITE, $shared, 'secret', '');
        $key = self::labeledExpand(self::HPKE_SUITE, $secret, 'key', $ksc, 32);
        $nonce = self::labeledExpand(self::HPKE_SUITE, $secret, 'base_nonce', $ksc, 12);
        return [$key, $nonce, $ksc, $secret];
    }

    /** The nonce for sequence number $seq (RFC 9180 §5.2). */
    public static function nonceFor(string $baseNonce, int $seq): string
    {
        return $baseNonce ^ (str_repeat("\0", 4) . pack('J', $seq));
    }
}
