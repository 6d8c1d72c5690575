<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\Exception;
use VbzKey\Sealer;
use VbzKey\Tests\Support\Vectors;

/** The split kit (split-v1.json): the same clear fields, sealed values and error codes as Rust. */
final class SplitKitTest extends TestCase
{
    public static function cases(): iterable
    {
        foreach (Vectors::load('split-v1.json')['cases'] as $case) {
            yield $case['name'] => [$case['input'], $case['expect']];
        }
    }

    /** @dataProvider cases */
    public function testTheSplitMatchesTheKit(array $input, array $expect): void
    {
        try {
            $got = Sealer::split($input);
        } catch (Exception $e) {
            self::assertSame($expect['error'] ?? 'success', $e->getErrorCode());
            return;
        }
        self::assertArrayNotHasKey('error', $expect, 'expected an error, got success');
        $clear = $got['clear'];
        $want = $expect['clear'];
        ksort($clear);
        ksort($want);
        self::assertSame($want, $clear, 'clear fields (strict types)');
        $values = [];
        foreach ($got['sealed'] as $f) {
            $values[$f['context']] = $f['value'];
        }
        $wantSealed = $expect['sealed'];
        ksort($values);
        ksort($wantSealed);
        self::assertSame($wantSealed, $values, 'sealed values');
    }
}
