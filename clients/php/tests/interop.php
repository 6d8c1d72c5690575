<?php
/**
 * Driven by the Rust interop test (tests/tests/php_interop.rs):
 *   php interop.php seal VKPUB1 < [[context, value], ...]        -> ["vk1.…", ...]
 *   php interop.php open VKSEC1 < [[context, "vk1.…"], ...]       -> [{"value"|"error"}, ...]
 *   php interop.php seal-customer VKPUB1 < {customer}             -> sealCustomer's output
 */

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

use VbzKey\Exception;
use VbzKey\Sealer;
use VbzKey\Tests\Support\Opener;

[$mode, $key] = [$argv[1] ?? '', $argv[2] ?? ''];
$in = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$out = match ($mode) {
    'seal' => array_map(fn ($p) => Sealer::seal($key, $p[0], $p[1]), $in),
    'open' => array_map(function ($p) use ($key) {
        try {
            return ['value' => Opener::open(Opener::parseSecretKey($key), $p[0], Opener::fromText($p[1]))];
        } catch (Exception $e) {
            return ['error' => $e->getErrorCode()];
        }
    }, $in),
    'seal-customer' => Sealer::sealCustomer($key, $in),
    default => throw new InvalidArgumentException('mode must be seal, open or seal-customer'),
};
echo json_encode($out, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
