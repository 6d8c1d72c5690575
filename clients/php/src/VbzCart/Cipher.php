<?php

declare(strict_types=1);

namespace VbzKey\VbzCart;

use VbzKey\Exception;
use VbzKey\Record;
use VbzKey\Sealer;

/**
 * A drop-in for VbzCart's card cipher (its `Cipher_pubkey`, which VbzCart's `vcCipher`
 * extends): the same calls — `PubKey($key)` / `PublicKey($key)`, `PubKey_isSet()`,
 * `encrypt($packed)` — but `encrypt` returns a vbzkey `vk1.` record of the card NUMBER, sealed
 * to the store's vbzkey public key, instead of an RSA blob of number, CVV and expiry.
 *
 *  - The CVV in VbzCart's packed string is dropped, never sealed (PCI DSS 3.3.1.2 forbids
 *    keeping it after authorisation); a line saying so goes to the log, never the value.
 *  - The expiry is not sealed: VbzCart keeps it clear in `CardExp` and `CardSafe`.
 *  - Every record is sealed under {@see CONTEXT}: VbzCart encrypts before it has inserted the
 *    row, so the row id cannot be part of it (docs/VBZCART.md, docs/DECISIONS.md). The
 *    migration seals under the same context, so an admin page renders every row alike.
 *  - `decrypt` and `PrivateKey($key)` throw, `LastPlain()` is null: a record opens only on the
 *    dongle, in the staff browser (vbzkey.js), and nothing here keeps a card or a private key.
 *
 * Swap it in by making VbzCart's `vcCipher` extend this class (docs/VBZCART.md). Its methods
 * declare no return types, so VbzCart's subclass (which declares none) stays compatible.
 */
class Cipher
{
    /** The context of every VbzCart card record (the migration uses it too). */
    public const CONTEXT = 'vbzcart/cust_cards/Encrypted/card_number';

    private ?string $publicKey = null;
    /** @var \Closure(string):void */
    private \Closure $log;

    /** @param ?callable(string):void $log where the CVV notice goes; PHP's error_log by default */
    public function __construct(?callable $log = null)
    {
        $this->log = \Closure::fromCallable($log ?? static function (string $line): void {
            error_log($line);
        });
    }

    /** VbzCart's older name: set the key (the `vkpub1.` text of the store's public key file). */
    public function PubKey($key)
    {
        $this->PublicKey($key);
    }

    /** VbzCart's newer name: set the key when given one; returns the key (text) set so far. */
    public function PublicKey($key = null)
    {
        if ($key !== null) {
            if (!is_string($key)) {
                throw new Exception('bad_public_key', 'the public key must be the text of a vkpub1. key file');
            }
            Record::parsePublicKey($key);
            $this->publicKey = trim($key);
        }
        return $this->publicKey;
    }

    public function PubKey_isSet()
    {
        return $this->publicKey !== null;
    }

    /** Seal VbzCart's packed string ("\t" number "\t" cvv "\t" expiry): the `vk1.` text. */
    public function encrypt(#[\SensitiveParameter] $packed)
    {
        if ($this->publicKey === null) {
            throw new Exception('no_public_key', 'no public key set: call PubKey() with the store\'s vkpub1. key first');
        }
        if (!is_string($packed)) {
            throw new Exception('bad_type', 'the packed card must be a string');
        }
        [$card, $hadCvv] = Card::fromPacked($packed);
        if ($hadCvv) {
            ($this->log)('vbzkey: a card security code (CVV) was dropped, not sealed: PCI DSS forbids storing it');
        }
        return Sealer::seal($this->publicKey, self::CONTEXT, $card->number);
    }

    /**
     * VbzCart's newer cipher takes the RSA private key here (its crypt-ccards `chec` and `decr`
     * commands). The drop-in keeps none: with a key it refuses, without one it returns null.
     */
    public function PrivateKey(#[\SensitiveParameter] $key = null)
    {
        if ($key !== null) {
            throw new Exception('opens_on_dongle_only', 'vbzkey takes no private key on the web server: cards open only on the dongle (docs/VBZCART.md); destroy the old RSA key');
        }
        return null;
    }

    /** VbzCart's newer cipher kept the last packed string (CVV included); the drop-in keeps nothing. */
    public function LastPlain()
    {
        return null;
    }

    /** Records open on the dongle only, in the staff browser through the bridge (vbzkey.js). */
    public function decrypt($input, #[\SensitiveParameter] $privateKey = null)
    {
        throw new Exception('opens_on_dongle_only', 'vbzkey records open only on the dongle: render Encrypted for vbzkey.js (docs/VBZCART.md)');
    }
}
