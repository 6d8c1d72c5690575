<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\Exception;
use VbzKey\Hpke;
use VbzKey\Record;
use VbzKey\Tests\Support\Opener;
use VbzKey\Tests\Support\Vectors;
use VbzKey\VbzCart\Card;
use VbzKey\VbzCart\Cipher;

/**
 * The VbzCart drop-in (docs/VBZCART.md): the cipher with VbzCart's interface seals the number
 * of a VbzCart-packed string and never the CVV; CardSafe and CardExp come out in VbzCart's
 * format; bad packed strings are refused with a code and a message without the value.
 */
final class VbzCartTest extends TestCase
{
    private static function kit(): array
    {
        $kit = Vectors::load('records-v1.json');
        [$sk, $pk] = Hpke::deriveKeyPair(hex2bin($kit['recipient_ikm']));
        return [$sk, 'vkpub1.' . Record::b64($pk)];
    }

    /** @return array{0:Cipher,1:\ArrayObject} a cipher with its key set, and its log lines */
    private static function cipher(): array
    {
        $log = new \ArrayObject();
        $c = new Cipher(fn (string $line) => $log->append($line));
        $c->PubKey(self::kit()[1]);
        return [$c, $log];
    }

    public function testEncryptSealsTheNumberAloneAndDropsTheCvvSayingSoWithoutIt(): void
    {
        [$sk] = self::kit();
        [$c, $log] = self::cipher();
        $record = $c->encrypt("\t4111 1111 1111 1111\t737\t12/27");
        self::assertStringStartsWith('vk1.', $record);
        self::assertSame('4111111111111111', Opener::open($sk, Cipher::CONTEXT, Opener::fromText($record)));
        self::assertCount(1, $log);
        self::assertStringContainsString('CVV', $log[0]);
        self::assertStringNotContainsString('737', $log[0]);
        // Without a CVV nothing is logged; under any other context the record does not open.
        $again = $c->encrypt("\t5555555555554444\t\t2029-03-31");
        self::assertCount(1, $log);
        self::assertSame('tag_mismatch', Opener::errorCode(fn () => Opener::open($sk, 'cust_cards/1/card_number', Opener::fromText($again))));
    }

    public function testARecordOfANineteenDigitCardFitsVbzCartsEncryptedColumnOf127(): void
    {
        [$c] = self::cipher();
        foreach (['4000000000000000006', '6011000990139424', '378282246310005', '4222222222222'] as $n) {
            $len = strlen($c->encrypt("\t$n\t123\t1/30"));
            self::assertLessThanOrEqual(127, $len, "$n: $len characters");
        }
        self::assertSame(110, strlen($c->encrypt("\t4000000000000000006\t\t1/30")), '19 digits: 12 + 32 + 19 + 16 bytes in base64url, after vk1.');
    }

    public function testTheCipherHasVbzCartsInterfaceAndASubclassLikeVcCipherStillWorks(): void
    {
        [$sk, $pk] = self::kit();
        $c = new Cipher(fn () => null);
        self::assertFalse($c->PubKey_isSet());
        self::assertNull($c->PublicKey());
        $c->PublicKey("$pk\n");
        self::assertTrue($c->PubKey_isSet());
        // VbzCart's vcCipher extends the cipher and overrides encrypt() without types.
        $sub = new class (fn () => null) extends Cipher {
            public function encrypt($input)
            {
                if (!$this->PubKey_isSet()) {
                    $this->PublicKey(file_get_contents($GLOBALS['vbzcart_test_key']));
                }
                return parent::encrypt($input);
            }
        };
        $file = tempnam(sys_get_temp_dir(), 'vk');
        file_put_contents($file, $pk . "\n");
        $GLOBALS['vbzcart_test_key'] = $file;
        try {
            self::assertSame('4111111111111111', Opener::open($sk, Cipher::CONTEXT, Opener::fromText($sub->encrypt("\t4111111111111111\t\t12/27"))));
        } finally {
            unlink($file);
        }
        $e = Opener::errorCode(fn () => $c->decrypt('vk1.AAAA', 'key'));
        self::assertSame('opens_on_dongle_only', $e);
    }

    public static function badPacked(): iterable
    {
        yield 'empty' => ['empty', ''];
        yield 'no tabs' => ['bad_field_count', '4111111111111111'];
        yield 'two fields' => ['bad_field_count', "\t4111111111111111\t12/27"];
        yield 'four fields' => ['bad_field_count', "\t4111111111111111\t123\t12/27\textra"];
        yield 'not led by a tab' => ['bad_field_count', "x\t4111111111111111\t123\t12/27"];
        yield 'letters in the number' => ['not_digits', "\t4111-1111-1111-111O\t123\t12/27"];
        yield 'no number' => ['no_number', "\t\t123\t12/27"];
        yield 'too short' => ['bad_length', "\t41111111111\t123\t12/27"];
        yield 'mistyped' => ['luhn_check_failed', "\t4111111111111112\t123\t12/27"];
        yield 'non-ASCII digits' => ['bad_characters', "\t４１１１111111111111\t123\t12/27"];
        yield 'a NUL' => ['bad_characters', "\t4111111111111111\0\t123\t12/27"];
        yield 'long' => ['packed_too_long', "\t4111111111111111\t123\t" . str_repeat('1', 200)];
    }

    /** @dataProvider badPacked */
    public function testBadPackedStringsAreRefusedWithACodeAndNoValueInTheMessage(string $code, string $packed): void
    {
        [$c, $log] = self::cipher();
        try {
            $c->encrypt($packed);
            self::fail("$code: no exception");
        } catch (Exception $e) {
            self::assertSame($code, $e->getErrorCode());
            self::assertStringNotContainsString('4111', $e->getMessage());
            self::assertStringNotContainsString('123', $e->getMessage());
        }
        self::assertCount(0, $log, 'nothing sealed, nothing logged');
    }

    /**
     * PHP prints an uncaught exception's stack trace with every frame's arguments unless
     * `zend.exception_ignore_args` is on (the default without a php.ini, and in
     * php.ini-development): a checkout that lets a refused card escape, or logs
     * `$e->getTraceAsString()`, must not put the number or the CVV in the web server's log.
     */
    public function testARefusedCardsStackTraceHoldsNeitherTheNumberNorTheCvvEvenWithTraceArguments(): void
    {
        $old = [ini_set('zend.exception_ignore_args', '0'), ini_set('zend.exception_string_param_max_len', '1000000')];
        try {
            [$c] = self::cipher();
            $attempts = [
                fn () => $c->encrypt("\t4111111111111112\t737\t12/27"),
                fn () => $c->encrypt("\t41111111112\t737\t12/27"),
                fn () => $c->encrypt("\t4111111111111112\t737\t12/27\textra"),
                fn () => Card::fromPacked("\t4111111111111112\t737\t12/27"),
                fn () => Card::fromColumns('4111111111111112', '2027-12-31'),
            ];
            foreach ($attempts as $i => $attempt) {
                try {
                    $attempt();
                    self::fail("attempt $i: no exception");
                } catch (Exception $e) {
                    // What a log line or an error tracker (which keeps getTrace()'s arguments) gets.
                    $args = array_filter($e->getTrace(), fn (array $f) => str_starts_with($f['class'] ?? '', 'VbzKey\\') && !str_starts_with($f['class'], 'VbzKey\\Tests'));
                    $shown = $e->getTraceAsString() . "\n" . $e . "\n" . var_export(array_column($args, 'args'), true);
                    self::assertStringNotContainsString('41111111', $shown, "attempt $i");
                    self::assertStringNotContainsString('737', $shown, "attempt $i");
                }
            }
        } finally {
            ini_set('zend.exception_ignore_args', (string) $old[0]);
            ini_set('zend.exception_string_param_max_len', (string) $old[1]);
        }
    }

    /**
     * VbzCart's newer `Cipher_pubkey` also has `PrivateKey($pem)` (its crypt-ccards `chec`
     * command hands it the RSA key) and `LastPlain()` (the last packed string, CVV included).
     * On the drop-in the first refuses without keeping the key or showing it in a trace, and
     * the second never returns what was sealed: nothing on the web server puts a card back.
     */
    public function testThePrivateKeyIsRefusedAndTheLastPlaintextIsNeverKept(): void
    {
        $old = [ini_set('zend.exception_ignore_args', '0'), ini_set('zend.exception_string_param_max_len', '1000000')];
        try {
            [$c] = self::cipher();
            $pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
            try {
                $c->PrivateKey($pem);
                self::fail('PrivateKey() accepted a key');
            } catch (Exception $e) {
                self::assertSame('opens_on_dongle_only', $e->getErrorCode());
                self::assertStringNotContainsString('MIIE', $e->getTraceAsString() . var_export($e->getTrace()[0]['args'] ?? [], true));
            }
            self::assertNull($c->PrivateKey(), 'no private key is ever set');
            $c->encrypt("\t4111111111111111\t737\t12/27");
            self::assertNull($c->LastPlain(), 'the packed string (with its CVV) is not kept');
            self::assertStringNotContainsString('4111', var_export($c, true));
        } finally {
            ini_set('zend.exception_ignore_args', (string) $old[0]);
            ini_set('zend.exception_string_param_max_len', (string) $old[1]);
        }
    }

    public function testEncryptRefusesWithoutAKeyAndABadKeyAndANonString(): void
    {
        self::assertSame('no_public_key', Opener::errorCode(fn () => (new Cipher(fn () => null))->encrypt("\t4111111111111111\t\t12/27")));
        self::assertSame('bad_public_key', Opener::errorCode(fn () => (new Cipher(fn () => null))->PubKey('-----BEGIN PUBLIC KEY-----')));
        [$c] = self::cipher();
        self::assertSame('bad_type', Opener::errorCode(fn () => $c->encrypt(4111111111111111)));
    }

    public static function safeStrings(): iterable
    {
        // VbzCart's own CalcSafeDescr_toStore: type letter by first digit, last 4, x, n/y.
        yield 'Visa, m/yy' => ["\t4111111111111111\t\t12/27", 'V-1111x12/27', '2027-12-31'];
        yield 'MasterCard, DATE' => ["\t5555555555554444\t\t2029-03-31", 'M-4444x3/29', '2029-03-31'];
        yield 'Amex, mmyy' => ["\t378282246310005\t1234\t0826", 'A-0005x8/26', '2026-08-31'];
        yield 'Discover, m-yyyy' => ["\t6011111111111117\t\t2-2028", 'D-1117x2/28', '2028-02-29'];
        yield 'a 2-series MasterCard is ?2' => ["\t2223003122003222\t\t01/2030", '?2-3222x1/30', '2030-01-31'];
        yield 'no expiry' => ["\t4111111111111111\t\t", 'V-1111x?/?', null];
        yield 'unreadable expiry' => ["\t4111111111111111\t\t13/27", 'V-1111x?/?', null];
        yield 'three digits: 1/27 or 12/07? not guessed' => ["\t4111111111111111\t\t127", 'V-1111x?/?', null];
    }

    /** @dataProvider safeStrings */
    public function testCardSafeAndCardExpAreWrittenInVbzCartsFormat(string $packed, string $safe, ?string $exp): void
    {
        [$card, $hadCvv] = Card::fromPacked($packed);
        self::assertSame($safe, $card->cardSafe());
        self::assertSame($exp, $card->cardExp());
        self::assertSame(explode("\t", $packed)[2] !== '', $hadCvv);
    }

    public function testClearColumnsAreReadAsVbzCartStoresThem(): void
    {
        $card = Card::fromColumns(' 4111-1111-1111-1111 ', '2027-12-31');
        self::assertSame('4111111111111111', $card->number);
        self::assertSame('V-1111x12/27', $card->cardSafe());
        self::assertSame('bad_characters', Opener::errorCode(fn () => Card::fromColumns("4111\u{00a0}1111", null)));
    }
}
