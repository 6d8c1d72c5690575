<?php
/**
 * The PHP sealer's own tests, against the same vector files the Rust code is tested with:
 * RFC 9180 A.2 base mode, the record kit (protocol/tests/vectors/records-v1.json) and the
 * split kit (split-v1.json). Ends with "N passed, M failed"; exit status 1 on any failure.
 *
 *   php clients/php/tests/run.php
 */

declare(strict_types=1);

require_once __DIR__ . '/VbzKeyOpen.php';

$vectors = __DIR__ . '/../../../protocol/tests/vectors';
$passed = 0;
$failed = 0;

function check(bool $ok, string $what): void
{
    global $passed, $failed;
    if ($ok) {
        $passed++;
    } else {
        $failed++;
        fwrite(STDERR, "FAIL: $what\n");
    }
}

function errorCode(callable $f): ?string
{
    try {
        $f();
        return null;
    } catch (VbzKeyException $e) {
        return $e->getErrorCode();
    }
}

/**
 * Test hook: call one of VbzKey's private fixed-ephemeral functions (sealBinary, encap) from a
 * closure bound to the class. Nothing public takes an ephemeral key.
 */
function privately(string $method, mixed ...$args): mixed
{
    return \Closure::bind(static fn () => VbzKey::$method(...$args), null, VbzKey::class)();
}

// No public function of the sealer takes a caller-chosen ephemeral key.
foreach ((new ReflectionClass(VbzKey::class))->getMethods(ReflectionMethod::IS_PUBLIC) as $m) {
    foreach ($m->getParameters() as $p) {
        check(!in_array($p->getName(), ['skE', 'ephemeral'], true), "public {$m->getName()} takes no ephemeral key");
    }
}
check(!(new ReflectionMethod(VbzKey::class, 'sealBinary'))->isPublic(), 'sealBinary is private');
check(!(new ReflectionMethod(VbzKey::class, 'encap'))->isPublic(), 'encap is private');

$json = fn (string $f) => json_decode(file_get_contents("$vectors/$f"), true, 512, JSON_THROW_ON_ERROR);

// RFC 9180 appendix A.2, base mode, byte for byte.
foreach ($json('rfc9180-a2-x25519-sha256-chacha20poly1305.json') as $v) {
    if ($v['mode'] !== 0) {
        continue;
    }
    $h = fn (string $k) => hex2bin($v[$k]);
    [$skE, $pkE] = VbzKey::deriveKeyPair($h('ikmE'));
    [$skR, $pkR] = VbzKey::deriveKeyPair($h('ikmR'));
    check($skE === $h('skEm') && $pkE === $h('pkEm'), 'DeriveKeyPair(ikmE)');
    check($skR === $h('skRm') && $pkR === $h('pkRm'), 'DeriveKeyPair(ikmR)');
    [$shared, $enc] = privately('encap', $pkR, $skE);
    check($enc === $h('enc'), 'enc');
    check($shared === $h('shared_secret'), 'shared_secret');
    check(VbzKey::decap($enc, $skR, $pkR) === $shared, 'decap');
    [$key, $nonce, $ksc, $secret] = VbzKey::keySchedule($shared, $h('info'));
    check($ksc === $h('key_schedule_context'), 'key_schedule_context');
    check($secret === $h('secret'), 'secret');
    check($key === $h('key'), 'key');
    check($nonce === $h('base_nonce'), 'base_nonce');
    foreach ($v['encryptions'] as $e) {
        $ct = sodium_crypto_aead_chacha20poly1305_ietf_encrypt(hex2bin($e['pt']), hex2bin($e['aad']), VbzKey::nonceFor($nonce, $e['sequence_number']), $key);
        check($ct === hex2bin($e['ct']), "encryption at sequence {$e['sequence_number']}");
    }
}

// The record kit: good records open (with the test opener), bad ones fail with their code,
// and the PHP sealer reproduces the good records byte for byte from their ephemeral keys.
$kit = $json('records-v1.json');
[$kitSk, $kitPk] = VbzKey::deriveKeyPair(hex2bin($kit['recipient_ikm']));
check('vkpub1.' . VbzKey::b64($kitPk) === $kit['recipient_public_key'], 'kit public key');
check(bin2hex(VbzKey::keyId($kitPk)) === $kit['recipient_key_id'], 'kit key id');
foreach ($kit['good'] as $g) {
    $opened = VbzKeyOpen::open($kitSk, $g['context'], VbzKeyOpen::fromText($g['record']));
    check($opened === $g['plaintext'], "good record opens: {$g['context']}");
    $resealed = VbzKey::toText(privately('sealBinary', $kitPk, $g['context'], $g['plaintext'], hex2bin($g['ephemeral_private_key'])));
    check($resealed === $g['record'], "PHP seals the kit record byte for byte: {$g['context']}");
}
foreach ($kit['bad'] as $b) {
    $code = errorCode(fn () => VbzKeyOpen::open($kitSk, $b['context'], VbzKeyOpen::fromText($b['record'])));
    check($code === $b['error'], "bad record '{$b['name']}': expected {$b['error']}, got " . var_export($code, true));
}

// Round trip of the public API, and contexts bind.
$pkText = 'vkpub1.' . VbzKey::b64($kitPk);
$rec = VbzKey::seal($pkText, 'cust_cards/7/card_number', '4111111111111111');
check(VbzKeyOpen::open($kitSk, 'cust_cards/7/card_number', VbzKeyOpen::fromText($rec)) === '4111111111111111', 'seal/open round trip');
check(errorCode(fn () => VbzKeyOpen::open($kitSk, 'cust_cards/8/card_number', VbzKeyOpen::fromText($rec))) === 'tag_mismatch', 'another context fails');

// The split kit: the same clear fields, sealed values and error codes as the Rust split.
foreach ($json('split-v1.json')['cases'] as $case) {
    $expect = $case['expect'];
    try {
        $got = VbzKey::split($case['input']);
        if (isset($expect['error'])) {
            check(false, "split '{$case['name']}': expected {$expect['error']}, got success");
            continue;
        }
        $clear = $got['clear'];
        $wantClear = $expect['clear'];
        ksort($clear);
        ksort($wantClear);
        check($clear === $wantClear, "split '{$case['name']}': clear fields (strict)");
        $values = [];
        foreach ($got['sealed'] as $f) {
            $values[$f['context']] = $f['value'];
        }
        ksort($values);
        $want = $expect['sealed'];
        ksort($want);
        check($values === $want, "split '{$case['name']}': sealed values");
    } catch (VbzKeyException $e) {
        check(($expect['error'] ?? null) === $e->getErrorCode(), "split '{$case['name']}': expected " . json_encode($expect) . ", got {$e->getErrorCode()}");
    }
}

// Bad input: clear exceptions whose messages never contain the value.
$bad = [
    'bad_public_key' => fn () => VbzKey::seal('vkpub1.short', 'c', 'v'),
    'bad_public_key ' => fn () => VbzKey::seal('not a key', 'c', 'v'),
    'plaintext_too_long' => fn () => VbzKey::seal($pkText, 'c', str_repeat('a', 4097)),
    'plaintext_not_utf8' => fn () => VbzKey::seal($pkText, 'c', "\xff\xfe"),
    'context_too_long' => fn () => VbzKey::seal($pkText, str_repeat('c', 513), 'v'),
    'luhn_check_failed' => fn () => VbzKey::sealCustomer($pkText, ['id' => '1', 'card' => ['number' => '4111111111111112', 'expiry' => '12/27']]),
    'cvv_refused' => fn () => VbzKey::sealCustomer($pkText, ['id' => '1', 'card' => ['number' => '4111111111111111', 'expiry' => '12/27', 'cvv' => '123']]),
    'bad_type' => fn () => VbzKey::sealCustomer($pkText, ['id' => '1', 'card' => ['number' => 4111111111111111, 'expiry' => '12/27']]),
    'bad_phone_characters' => fn () => VbzKey::sealCustomer($pkText, ['id' => '1', 'phone' => '+1 415 555 0100 x9']),
];
foreach ($bad as $code => $f) {
    try {
        $f();
        check(false, "$code: no exception");
    } catch (VbzKeyException $e) {
        check($e->getErrorCode() === trim($code), "$code: got {$e->getErrorCode()}");
        check(!str_contains($e->getMessage(), '4111') && !str_contains($e->getMessage(), '555'), "$code: message holds no customer data");
        check($e->getMessage() !== '', "$code: has a message");
    }
}
$low = 'vkpub1.' . VbzKey::b64(str_repeat("\0", 32));
check(errorCode(fn () => VbzKey::seal($low, 'c', 'v')) === 'low_order_point', 'a low-order public key is refused');

// sealCustomer output has the CLI's shape.
$out = VbzKey::sealCustomer($pkText, ['id' => '9', 'card' => ['number' => '4111 1111 1111 1111', 'expiry' => '12/27'], 'email' => 'a@b.example']);
check($out['key_id'] === $kit['recipient_key_id'] && $out['clear']['card_last4'] === '1111', 'sealCustomer clear fields and key id');
check($out['sealed']['card_number']['context'] === 'cust_cards/9/card_number', 'sealCustomer context');
check(VbzKeyOpen::open($kitSk, 'cust_cards/9/card_number', VbzKeyOpen::fromText($out['sealed']['card_number']['record'])) === '4111111111111111', 'sealCustomer record opens');

echo "$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
