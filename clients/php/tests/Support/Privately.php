<?php

declare(strict_types=1);

namespace VbzKey\Tests\Support;

/**
 * Test hook: call a private static function of the package (the fixed-ephemeral steps
 * `Hpke::encapWith` and `Record::sealWith`, which the vector kits check byte for byte) from a
 * closure bound to its class. No public function takes an ephemeral key.
 */
final class Privately
{
    public static function call(string $class, string $method, mixed ...$args): mixed
    {
        return \Closure::bind(static fn () => $class::$method(...$args), null, $class)();
    }
}
