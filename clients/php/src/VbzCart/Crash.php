<?php

declare(strict_types=1);

namespace VbzKey\VbzCart;

/**
 * Test hook, as `vbzkey-admin rewrap` has one: `VBZKEY_DANGEROUS_CRASH_AT=vbzcart:STEP:N` kills
 * the migration with SIGKILL the Nth time it reaches STEP (`read`, `half-written`,
 * `committed`), so the end-to-end test can show that a kill at any point of a batch loses
 * nothing. Unset, it does nothing.
 */
final class Crash
{
    /** @var array<string,int> */
    private static array $seen = [];

    public static function at(string $step): void
    {
        $want = getenv('VBZKEY_DANGEROUS_CRASH_AT');
        if ($want === false || !str_starts_with($want, "vbzcart:$step:")) {
            return;
        }
        self::$seen[$step] = (self::$seen[$step] ?? 0) + 1;
        if ((string) self::$seen[$step] === substr($want, strlen("vbzcart:$step:")) && function_exists('posix_kill')) {
            posix_kill(getmypid(), 9);
        }
    }
}
