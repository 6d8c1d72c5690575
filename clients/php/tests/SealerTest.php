<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\CustomerSplit;
use VbzKey\Exception;
use VbzKey\Hpke;
use VbzKey\Record;
use VbzKey\Sealer;
use VbzKey\Tests\Support\Opener;
use VbzKey\Tests\Support\Vectors;

/** The public API: sealCustomer's shape, and bad input refused with a code, never the value. */
final class SealerTest extends TestCase
{
    private static function kit(): array
    {
        $kit = Vectors::load('records-v1.json');
        [$sk, $pk] = Hpke::deriveKeyPair(hex2bin($kit['recipient_ikm']));
        return [$sk, 'vkpub1.' . Record::b64($pk), $kit['recipient_key_id']];
    }

    public function testSealCustomerGivesClearFieldsKeyIdAndRecordsThatOpen(): void
    {
        [$sk, $pk, $keyId] = self::kit();
        $out = Sealer::sealCustomer($pk, ['id' => '9', 'card' => ['number' => '4111 1111 1111 1111', 'expiry' => '12/27'], 'email' => 'a@B.example']);
        self::assertSame(['id', 'key_id', 'clear', 'sealed'], array_keys($out));
        self::assertSame($keyId, $out['key_id']);
        self::assertSame('1111', $out['clear']['card_last4']);
        self::assertSame('a@b.example', $out['clear']['email']);
        self::assertSame('cust_cards/9/card_number', $out['sealed']['card_number']['context']);
        self::assertSame('4111111111111111', Opener::open($sk, 'cust_cards/9/card_number', Opener::fromText($out['sealed']['card_number']['record'])));
    }

    public function testNoPublicFunctionTakesAnEphemeralKey(): void
    {
        // A chosen ephemeral key reuses the AEAD key and nonce: only the private, tested steps
        // take one, and every public seal draws its own.
        foreach ([Hpke::class, Record::class, Sealer::class, CustomerSplit::class] as $class) {
            foreach ((new \ReflectionClass($class))->getMethods(\ReflectionMethod::IS_PUBLIC) as $m) {
                foreach ($m->getParameters() as $p) {
                    self::assertNotContains($p->getName(), ['skE', 'ephemeral'], "public $class::{$m->getName()} takes an ephemeral key");
                }
            }
        }
        self::assertTrue((new \ReflectionMethod(Hpke::class, 'encapWith'))->isPrivate());
        self::assertTrue((new \ReflectionMethod(Record::class, 'sealWith'))->isPrivate());
    }

    public static function badInput(): iterable
    {
        $pk = self::kit()[1];
        yield 'short key' => ['bad_public_key', fn () => Sealer::seal('vkpub1.short', 'c', 'v')];
        yield 'not a key' => ['bad_public_key', fn () => Sealer::seal('not a key', 'c', 'v')];
        yield 'low-order key' => ['low_order_point', fn () => Sealer::seal('vkpub1.' . Record::b64(str_repeat("\0", 32)), 'c', 'v')];
        yield 'long value' => ['plaintext_too_long', fn () => Sealer::seal($pk, 'c', str_repeat('a', 4097))];
        yield 'not UTF-8' => ['plaintext_not_utf8', fn () => Sealer::seal($pk, 'c', "\xff\xfe")];
        yield 'long context' => ['context_too_long', fn () => Sealer::seal($pk, str_repeat('c', 513), 'v')];
        yield 'mistyped card' => ['luhn_check_failed', fn () => Sealer::sealCustomer($pk, ['id' => '1', 'card' => ['number' => '4111111111111112', 'expiry' => '12/27']])];
        yield 'a CVV' => ['cvv_refused', fn () => Sealer::sealCustomer($pk, ['id' => '1', 'card' => ['number' => '4111111111111111', 'expiry' => '12/27', 'cvv' => '123']])];
        yield 'a number, not a string' => ['bad_type', fn () => Sealer::sealCustomer($pk, ['id' => '1', 'card' => ['number' => 4111111111111111, 'expiry' => '12/27']])];
        yield 'an extension' => ['bad_phone_characters', fn () => Sealer::sealCustomer($pk, ['id' => '1', 'phone' => '+1 415 555 0100 x9'])];
        yield 'a typo in a field' => ['unknown_field', fn () => Sealer::sealCustomer($pk, ['id' => '1', 'phnoe' => '+1 415 555 0100'])];
    }

    /** @dataProvider badInput */
    public function testBadInputIsRefusedWithItsCodeAndAMessageWithoutTheValue(string $code, callable $f): void
    {
        try {
            $f();
            self::fail("$code: no exception");
        } catch (Exception $e) {
            self::assertSame($code, $e->getErrorCode());
            self::assertNotSame('', $e->getMessage());
            self::assertStringNotContainsString('4111', $e->getMessage());
            self::assertStringNotContainsString('555', $e->getMessage());
        }
    }
}
