<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\Hpke;
use VbzKey\Tests\Support\Privately;
use VbzKey\Tests\Support\Vectors;

/** RFC 9180 appendix A.2 (the record format's suite), base mode, byte for byte. */
final class HpkeVectorsTest extends TestCase
{
    public static function baseModeVectors(): iterable
    {
        foreach (Vectors::load('rfc9180-a2-x25519-sha256-chacha20poly1305.json') as $i => $v) {
            if ($v['mode'] === 0) {
                yield "vector $i" => [$v];
            }
        }
    }

    /** @dataProvider baseModeVectors */
    public function testEveryIntermediateValueMatchesTheRfc(array $v): void
    {
        $h = fn (string $k) => hex2bin($v[$k]);
        [$skE, $pkE] = Hpke::deriveKeyPair($h('ikmE'));
        [$skR, $pkR] = Hpke::deriveKeyPair($h('ikmR'));
        self::assertSame(bin2hex($h('skEm')), bin2hex($skE), 'DeriveKeyPair(ikmE) private');
        self::assertSame(bin2hex($h('pkEm')), bin2hex($pkE), 'DeriveKeyPair(ikmE) public');
        self::assertSame(bin2hex($h('skRm')), bin2hex($skR), 'DeriveKeyPair(ikmR) private');
        self::assertSame(bin2hex($h('pkRm')), bin2hex($pkR), 'DeriveKeyPair(ikmR) public');
        [$shared, $enc] = Privately::call(Hpke::class, 'encapWith', $pkR, $skE);
        self::assertSame($v['enc'], bin2hex($enc));
        self::assertSame($v['shared_secret'], bin2hex($shared));
        self::assertSame($v['shared_secret'], bin2hex(Hpke::decap($enc, $skR, $pkR)));
        [$key, $nonce, $ksc, $secret] = Hpke::keySchedule($shared, $h('info'));
        self::assertSame($v['key_schedule_context'], bin2hex($ksc));
        self::assertSame($v['secret'], bin2hex($secret));
        self::assertSame($v['key'], bin2hex($key));
        self::assertSame($v['base_nonce'], bin2hex($nonce));
        self::assertNotEmpty($v['encryptions']);
        foreach ($v['encryptions'] as $e) {
            $ct = sodium_crypto_aead_chacha20poly1305_ietf_encrypt(hex2bin($e['pt']), hex2bin($e['aad']), Hpke::nonceFor($nonce, $e['sequence_number']), $key);
            self::assertSame($e['ct'], bin2hex($ct), "encryption at sequence {$e['sequence_number']}");
        }
    }
}
