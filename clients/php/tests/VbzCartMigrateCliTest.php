<?php

declare(strict_types=1);

namespace VbzKey\Tests;

use PHPUnit\Framework\TestCase;
use VbzKey\Record;
use VbzKey\Tests\Support\Opener;
use VbzKey\VbzCart\LegacyKey;

/**
 * `bin/vbzcart-migrate` refuses bad input before it touches a database (usage errors exit 2
 * with a message naming the argument or file, never a key), and the old RSA key is read only
 * from a file no one else may read. The migration itself runs against MariaDB in
 * tests/tests/vbzcart_migration.rs.
 */
final class VbzCartMigrateCliTest extends TestCase
{
    private static string $dir;

    public static function setUpBeforeClass(): void
    {
        self::$dir = sys_get_temp_dir() . '/vbzcart-cli-' . getmypid();
        @mkdir(self::$dir, 0700);
        file_put_contents(self::$dir . '/pub.txt', 'vkpub1.' . Record::b64(sodium_crypto_scalarmult_base(str_repeat("\x07", 32))) . "\n");
        $key = openssl_pkey_new(['private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA]);
        openssl_pkey_export($key, $pem, 'right passphrase');
        foreach (['rsa-0600.pem' => 0600, 'rsa-0644.pem' => 0644] as $f => $mode) {
            file_put_contents(self::$dir . "/$f", $pem);
            chmod(self::$dir . "/$f", $mode);
        }
        posix_mkfifo(self::$dir . '/rsa-fifo.pem', 0600);
        @mkdir(self::$dir . '/rsa-dir.pem', 0700);
        file_put_contents(self::$dir . '/not-a-key.pem', "-----BEGIN NOTHING-----\n");
        chmod(self::$dir . '/not-a-key.pem', 0600);
        file_put_contents(self::$dir . '/wrong-pass', "wrong passphrase\n");
        file_put_contents(self::$dir . '/right-pass', "right passphrase\n");
    }

    public static function tearDownAfterClass(): void
    {
        @rmdir(self::$dir . '/rsa-dir.pem');
        array_map('unlink', glob(self::$dir . '/*'));
        rmdir(self::$dir);
    }

    /** @return array{0:int,1:string,2:string} exit code, stdout, stderr */
    private static function migrate(array $args, array $php = []): array
    {
        // `timeout`: a tool that blocks (reading a FIFO as its key) fails the test, not hangs it.
        $cmd = array_merge(['timeout', '20', PHP_BINARY], $php, [__DIR__ . '/../bin/vbzcart-migrate'], $args);
        $p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        fclose($pipes[0]);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        return [proc_close($p), $out, $err];
    }

    public static function badArguments(): iterable
    {
        $d = sys_get_temp_dir() . '/vbzcart-cli-' . getmypid();
        $ok = ['--dsn', 'mysql:unix_socket=/nonexistent/socket;dbname=x', '--public-key', "$d/pub.txt"];
        yield 'unknown option' => [[...$ok, '--dryrun'], 'unknown argument "--dryrun"'];
        yield 'stray word' => [[...$ok, 'now'], 'unknown argument "now"'];
        yield 'non-ASCII' => [[...$ok, "--d\u{00e9}bug"], 'unknown argument'];
        yield 'no dsn' => [['--public-key', "$d/pub.txt"], '--dsn is required'];
        yield 'no public key' => [['--dsn', 'mysql:'], '--public-key is required'];
        yield 'twice' => [[...$ok, '--batch', '5', '--batch', '6'], '--batch given more than once'];
        yield 'batch zero' => [[...$ok, '--batch', '0'], '--batch must be a whole number from 1 to 1000'];
        yield 'batch huge' => [[...$ok, '--batch', '1001'], '--batch must be a whole number from 1 to 1000'];
        yield 'batch words' => [[...$ok, '--batch', 'ten'], '--batch must be a whole number'];
        yield 'negative pace' => [[...$ok, '--rows-per-minute', '-5'], '--rows-per-minute must be a whole number'];
        yield 'public key missing' => [['--dsn', 'mysql:', '--public-key', "$d/none.txt"], "cannot read the public key file $d/none.txt"];
        yield 'public key not vbzkey' => [['--dsn', 'mysql:', '--public-key', "$d/not-a-key.pem"], 'not a vbzkey public key'];
        yield 'RSA key readable by others' => [[...$ok, '--rsa-key', "$d/rsa-0644.pem"], 'may be read by other users: chmod 600'];
        yield 'RSA key not PEM' => [[...$ok, '--rsa-key', "$d/not-a-key.pem"], 'is not a PEM RSA private key'];
        yield 'RSA passphrase wrong' => [[...$ok, '--rsa-key', "$d/rsa-0600.pem", '--rsa-passphrase-file', "$d/wrong-pass"], 'or its passphrase is wrong'];
        // Clear CardNum/CardCVV travel in the rows read and in the compare-and-swap: never in
        // clear over a network. A remote host needs TLS with a CA (or an SSH tunnel to loopback).
        yield 'remote database without TLS' => [['--dsn', 'mysql:host=db.shop.example;dbname=vbzcart', '--public-key', "$d/pub.txt"],
            'db.shop.example is not this machine: give --db-ca'];
        yield 'remote database, CA missing' => [['--dsn', 'mysql:host=db.shop.example;dbname=vbzcart', '--public-key', "$d/pub.txt", '--db-ca', "$d/none.pem"],
            "cannot read the database CA file $d/none.pem"];
        yield 'RSA key a FIFO (would block)' => [[...$ok, '--rsa-key', "$d/rsa-fifo.pem"], "$d/rsa-fifo.pem is not a regular file"];
        yield 'RSA key a directory' => [[...$ok, '--rsa-key', "$d/rsa-dir.pem"], "$d/rsa-dir.pem is not a regular file"];
        yield 'RSA key missing' => [[...$ok, '--rsa-key', "$d/none.pem"], "cannot read the RSA key file $d/none.pem"];
    }

    /** @dataProvider badArguments */
    public function testBadArgumentsExitTwoWithAMessageAndTouchNoDatabase(array $args, string $says): void
    {
        [$code, $out, $err] = self::migrate($args);
        self::assertSame(2, $code, $err);
        self::assertSame('', $out);
        self::assertStringContainsString($says, $err);
        self::assertStringNotContainsString('PRIVATE KEY', $err);
        self::assertStringNotContainsString('passphrase' . "\n", $err);
    }

    public function testARightKeyGetsAsFarAsTheDatabase(): void
    {
        [$code, , $err] = self::migrate(['--dsn', 'mysql:unix_socket=/nonexistent/socket;dbname=x', '--public-key', self::$dir . '/pub.txt',
            '--rsa-key', self::$dir . '/rsa-0600.pem', '--rsa-passphrase-file', self::$dir . '/right-pass']);
        self::assertSame(1, $code, $err);
        self::assertStringContainsString('cannot connect to the database', $err);
    }

    /** Without a way to turn core dumps off, the RSA key is not loaded at all. */
    public function testTheRsaKeyIsNotLoadedWhereCoreDumpsCannotBeTurnedOff(): void
    {
        $args = ['--dsn', 'mysql:unix_socket=/nonexistent/socket;dbname=x', '--public-key', self::$dir . '/pub.txt'];
        [$code, , $err] = self::migrate([...$args, '--rsa-key', self::$dir . '/rsa-0600.pem', '--rsa-passphrase-file', self::$dir . '/right-pass'],
            ['-d', 'disable_functions=posix_setrlimit']);
        self::assertSame(2, $code, $err);
        self::assertStringContainsString('cannot turn core dumps off', $err);
        // Without --rsa-key there is no secret to keep out of a core dump.
        [$code, , $err] = self::migrate($args, ['-d', 'disable_functions=posix_setrlimit']);
        self::assertSame(1, $code, $err);
    }

    public function testALocalOrTlsDatabaseGetsAsFarAsConnecting(): void
    {
        $pub = self::$dir . '/pub.txt';
        foreach ([['--dsn', 'mysql:host=127.0.0.1;port=1;dbname=x'], ['--dsn', 'mysql:host=localhost;dbname=x;unix_socket=/nonexistent/socket'],
            ['--dsn', 'mysql:host=db.invalid;dbname=x', '--db-ca', $pub]] as $args) {
            [$code, , $err] = self::migrate([...$args, '--public-key', $pub]);
            self::assertSame(1, $code, $err);
            self::assertStringContainsString('cannot connect to the database', $err);
        }
    }

    public function testLegacyBlobsAreTakenRawOrBase64AtTheModulusLengthOnly(): void
    {
        $key = LegacyKey::fromFile(self::$dir . '/rsa-0600.pem', 'right passphrase');
        self::assertSame(256, $key->bytes);
        $pub = openssl_pkey_get_details(openssl_pkey_get_private(file_get_contents(self::$dir . '/rsa-0600.pem'), 'right passphrase'))['key'];
        openssl_public_encrypt("\t4111111111111111\t123\t12/27", $blob, $pub);
        self::assertSame($blob, $key->blobBytes($blob));
        self::assertSame($blob, $key->blobBytes(base64_encode($blob)));
        self::assertSame($blob, $key->blobBytes(chunk_split(base64_encode($blob), 64, "\r\n")));
        self::assertNull($key->blobBytes(substr($blob, 1)));
        self::assertNull($key->blobBytes(base64_encode(substr($blob, 1))));
        self::assertNull($key->blobBytes('vk1.' . str_repeat('A', 100)));
        self::assertSame("\t4111111111111111\t123\t12/27", $key->decrypt($blob));
        $blob[100] = chr(ord($blob[100]) ^ 1);
        self::assertNull($key->decrypt($blob));
        self::assertSame('bad_public_key', Opener::errorCode(fn () => new \VbzKey\VbzCart\Migration(new \PDO('sqlite::memory:'), 'vkpub1.x', null)));
    }
}
