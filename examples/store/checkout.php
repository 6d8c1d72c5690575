<?php
/**
 * The demo store's checkout, from the command line: take one order, seal the customer's card,
 * address and phone with the store's PUBLIC key into the SCD tables, and store the order.
 * A real store does the same in its checkout code (src/Store.php, checkout()).
 *
 *   php checkout.php < order.json
 *   order.json: {"order": "#1041", "name": "Ada Lovelace", "shipping": "standard",
 *                "items": [{"sku": "…", "title": "…", "quantity": 1}],
 *                "customer": {"id": "1001", "card": {…}, "address": {…}, "phone": "…", "email": "…"}}
 *
 * Environment: VBZKEY_STORE_DATA (and VBZKEY_STORE_DSN for another database; src/Store.php).
 */

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

try {
    $order = json_decode(stream_get_contents(STDIN, 1 << 20), true, 16, JSON_THROW_ON_ERROR);
    if (!is_array($order)) {
        throw new InvalidArgumentException('the order must be a JSON object');
    }
    $store = DemoStore\Store::fromEnvironment();
    $store->install();
    [$number, $keyId] = $store->checkout($order);
} catch (VbzKey\Exception $e) {
    fwrite(STDERR, "checkout refused: {$e->getMessage()} ({$e->getErrorCode()})\n");
    exit(1);
} catch (JsonException | InvalidArgumentException $e) {
    fwrite(STDERR, "checkout refused: {$e->getMessage()}\n");
    exit(2);
} catch (PDOException $e) {
    fwrite(STDERR, "checkout failed: the database said: {$e->getMessage()}\n");
    exit(1);
}
echo "order $number sealed for key $keyId\n";
