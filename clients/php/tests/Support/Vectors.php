<?php

declare(strict_types=1);

namespace VbzKey\Tests\Support;

/**
 * The shared test kit: the same files the Rust code is tested with (protocol/tests/vectors in
 * the vbzkey repository, or the directory in VBZKEY_VECTORS). They are the contract.
 */
final class Vectors
{
    public static function load(string $file): array
    {
        $dir = getenv('VBZKEY_VECTORS') ?: __DIR__ . '/../../../../protocol/tests/vectors';
        $text = @file_get_contents("$dir/$file");
        if ($text === false) {
            throw new \RuntimeException("the shared vector file $dir/$file is missing (set VBZKEY_VECTORS)");
        }
        return json_decode($text, true, 512, JSON_THROW_ON_ERROR);
    }
}
