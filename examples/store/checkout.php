<?php
/**
 * The demo store's checkout, from the command line: seal one customer with the store's
 * PUBLIC key and save the order. A real store does the same three lines in its checkout code.
 *
 *   php checkout.php ORDER NAME < customer.json
 *
 * Environment: VBZKEY_STORE_DATA (holds public-key.txt and orders/).
 */

declare(strict_types=1);

require __DIR__ . '/../../clients/php/VbzKey.php';

[$order, $name] = [$argv[1] ?? '', $argv[2] ?? ''];
$data = getenv('VBZKEY_STORE_DATA') ?: exit("set VBZKEY_STORE_DATA\n");
if (!preg_match('/\A#?[0-9A-Za-z-]{1,20}\z/', $order) || $name === '') {
    fwrite(STDERR, "usage: php checkout.php ORDER NAME < customer.json\n");
    exit(2);
}
$customer = json_decode(stream_get_contents(STDIN), true, 16, JSON_THROW_ON_ERROR);

try {
    // The three lines:
    $sealed = VbzKey::sealCustomer(file_get_contents("$data/public-key.txt"), $customer);
    $sealed += ['order' => $order, 'name' => $name];
    file_put_contents("$data/orders/" . ltrim($order, '#') . '.json', json_encode($sealed, JSON_PRETTY_PRINT) . "\n");
} catch (VbzKeyException $e) {
    fwrite(STDERR, "checkout refused: {$e->getMessage()} ({$e->getErrorCode()})\n");
    exit(1);
}
echo "order $order sealed for key {$sealed['key_id']}\n";
