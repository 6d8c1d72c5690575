<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\Hpke;
use VbzKey\Record;
use VbzKey\Sealer;
use VbzKey\Tests\Support\Opener;
use VbzKey\Tests\Support\Privately;
use VbzKey\Tests\Support\Vectors;

/** The record kit (records-v1.json): good records, bad records with their exact error codes. */
final class RecordKitTest extends TestCase
{
    private static function kitKey(): array
    {
        return Hpke::deriveKeyPair(hex2bin(Vectors::load('records-v1.json')['recipient_ikm']));
    }

    public static function goodRecords(): iterable
    {
        foreach (Vectors::load('records-v1.json')['good'] as $g) {
            yield $g['context'] => [$g];
        }
    }

    public static function badRecords(): iterable
    {
        foreach (Vectors::load('records-v1.json')['bad'] as $b) {
            yield $b['name'] => [$b];
        }
    }

    public function testTheKitKeyAndKeyIdMatch(): void
    {
        $kit = Vectors::load('records-v1.json');
        [, $pk] = self::kitKey();
        self::assertSame($kit['recipient_public_key'], 'vkpub1.' . Record::b64($pk));
        self::assertSame($kit['recipient_key_id'], bin2hex(Record::keyId($pk)));
    }

    /** @dataProvider goodRecords */
    public function testAGoodRecordOpensAndIsResealedByteForByte(array $g): void
    {
        [$sk, $pk] = self::kitKey();
        self::assertSame($g['plaintext'], Opener::open($sk, $g['context'], Opener::fromText($g['record'])));
        [$shared, $enc] = Privately::call(Hpke::class, 'encapWith', $pk, hex2bin($g['ephemeral_private_key']));
        $resealed = Privately::call(Record::class, 'sealWith', $pk, $g['context'], $g['plaintext'], $shared, $enc);
        self::assertSame($g['record'], Record::toText($resealed));
    }

    /** @dataProvider badRecords */
    public function testABadRecordFailsWithItsCode(array $b): void
    {
        [$sk] = self::kitKey();
        self::assertSame($b['error'], Opener::errorCode(fn () => Opener::open($sk, $b['context'], Opener::fromText($b['record']))));
    }

    public function testARecordOpensOnlyUnderItsOwnContext(): void
    {
        [$sk, $pk] = self::kitKey();
        $rec = Sealer::seal('vkpub1.' . Record::b64($pk), 'cust_cards/7/card_number', '4111111111111111');
        self::assertSame('4111111111111111', Opener::open($sk, 'cust_cards/7/card_number', Opener::fromText($rec)));
        self::assertSame('tag_mismatch', Opener::errorCode(fn () => Opener::open($sk, 'cust_cards/8/card_number', Opener::fromText($rec))));
    }
}
