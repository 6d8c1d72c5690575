<?php

declare(strict_types=1);

namespace DemoStore;

use PDO;
use VbzKey\Sealer;

/**
 * The demo store's data, through PDO: SQLite by default (a file in VBZKEY_STORE_DATA), or any
 * DSN in VBZKEY_STORE_DSN (the tests use MariaDB on a Unix socket). Checkout seals the card,
 * address and phone into the SCD tables (`cust_*`, schema/) with the PUBLIC key only; the admin
 * page searches the clear columns and renders the sealed ones for vbzkey.js.
 *
 * Environment: VBZKEY_STORE_DATA (public-key.txt, bridge-url.txt, store.db), and optionally
 * VBZKEY_STORE_DSN, VBZKEY_STORE_DB_USER, VBZKEY_STORE_DB_PASSWORD_FILE.
 */
final class Store
{
    /** Orders a search shows at most. */
    public const MAX_RESULTS = 50;
    private const BRANDS = ['visa', 'mastercard', 'amex', 'discover', 'other'];

    private function __construct(private readonly PDO $db, private readonly string $data)
    {
    }

    public static function fromEnvironment(): self
    {
        $data = getenv('VBZKEY_STORE_DATA') ?: throw new \RuntimeException('set VBZKEY_STORE_DATA to the store\'s data directory');
        $dsn = getenv('VBZKEY_STORE_DSN') ?: "sqlite:$data/store.db";
        $user = getenv('VBZKEY_STORE_DB_USER') ?: null;
        $passwordFile = getenv('VBZKEY_STORE_DB_PASSWORD_FILE') ?: null;
        $password = null;
        if ($passwordFile !== null) {
            $text = @file_get_contents($passwordFile);
            if ($text === false) {
                throw new \RuntimeException("cannot read the database password file $passwordFile");
            }
            $password = rtrim(explode("\n", $text, 2)[0], "\r");
        }
        $db = new PDO($dsn, $user, $password, [
            PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
            PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC,
            PDO::ATTR_EMULATE_PREPARES => false,
            PDO::ATTR_TIMEOUT => 10,
        ]);
        if ($db->getAttribute(PDO::ATTR_DRIVER_NAME) === 'sqlite') {
            $db->exec('PRAGMA foreign_keys = ON');
            $db->exec('PRAGMA busy_timeout = 10000');
        }
        return new self($db, $data);
    }

    private function driver(): string
    {
        return $this->db->getAttribute(PDO::ATTR_DRIVER_NAME);
    }

    /** The bridge the staff page talks to. */
    public function bridgeUrl(): string
    {
        return trim((string) @file_get_contents("$this->data/bridge-url.txt")) ?: 'http://127.0.0.1:7878';
    }

    /** Create the SCD tables and the store's own, unless they exist. */
    public function install(): bool
    {
        $driver = $this->driver();
        $exists = $driver === 'sqlite'
            ? $this->db->query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'customers'")->fetchColumn()
            : $this->db->query("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'customers'")->fetchColumn();
        if ((int) $exists > 0) {
            return false;
        }
        if (!in_array($driver, ['sqlite', 'mysql'], true)) {
            throw new \RuntimeException("the demo store has schemas for SQLite and MySQL/MariaDB, not $driver");
        }
        if ($driver === 'sqlite') {
            // Readers (the admin page) and a writer (a checkout) at once.
            $this->db->exec('PRAGMA journal_mode = WAL');
        }
        foreach ([__DIR__ . "/../../../schema/$driver.sql", __DIR__ . "/../sql/$driver.sql"] as $file) {
            foreach (self::statements((string) file_get_contents($file)) as $sql) {
                $this->db->exec($sql);
            }
        }
        return true;
    }

    /** The statements of a schema file (no procedures: `;` at a line's end ends one). */
    private static function statements(string $sql): array
    {
        $sql = preg_replace('/^\s*--.*$/m', '', $sql);
        $sql = preg_replace('/\s--[^\'\n]*$/m', '', $sql);
        return array_values(array_filter(array_map('trim', preg_split('/;\s*$/m', $sql)), fn ($s) => $s !== ''));
    }

    /**
     * Take an order: seal the customer's card, address and phone with the public key, and store
     * everything in one transaction. A customer seen before gets their sealed rows replaced
     * (their latest card and address). Returns [order number, key id].
     *
     * $order: ['order' => '#1041', 'name' => …, 'shipping' => 'standard'|'express',
     *          'items' => [['sku', 'title', 'quantity'], …], 'customer' => split input (docs/SPLIT.md)]
     */
    public function checkout(array $order): array
    {
        $number = $order['order'] ?? null;
        $name = $order['name'] ?? null;
        $shipping = $order['shipping'] ?? 'standard';
        $items = $order['items'] ?? [];
        $customer = $order['customer'] ?? null;
        if (!is_string($number) || !preg_match('/\A#?[0-9A-Za-z-]{1,19}\z/', $number)) {
            throw new \InvalidArgumentException('order must be an order number: up to 20 letters, digits and -, optionally after #');
        }
        if (!is_string($name) || trim($name) === '' || mb_strlen($name) > 200 || preg_match('/\p{Cc}/u', $name)) {
            throw new \InvalidArgumentException('name must be 1 to 200 characters without control characters');
        }
        if (!in_array($shipping, ['standard', 'express'], true)) {
            throw new \InvalidArgumentException('shipping must be standard or express');
        }
        if (!is_array($customer) || !is_string($customer['id'] ?? null) || !preg_match('/\A[1-9][0-9]{0,17}\z/', $customer['id'])) {
            throw new \InvalidArgumentException('customer.id must be the customer\'s number (digits)');
        }
        if (!is_array($items) || !array_is_list($items) || count($items) > 100) {
            throw new \InvalidArgumentException('items must be a list of at most 100 lines');
        }
        foreach ($items as $i => $item) {
            $ok = is_array($item) && is_string($item['sku'] ?? null) && is_string($item['title'] ?? null)
                && is_int($item['quantity'] ?? null) && $item['quantity'] >= 1 && $item['quantity'] <= 9999
                && strlen($item['sku']) <= 40 && mb_strlen($item['title']) <= 200;
            if (!$ok) {
                throw new \InvalidArgumentException("items[$i] must have a sku (≤ 40), a title (≤ 200) and a quantity (1-9999)");
            }
        }
        $publicKey = @file_get_contents("$this->data/public-key.txt");
        if ($publicKey === false) {
            throw new \RuntimeException("the store's public key is missing ($this->data/public-key.txt)");
        }
        // The three lines a store adds to its checkout: seal, then store clear and sealed columns.
        $s = Sealer::sealCustomer($publicKey, $customer);
        $id = $s['id'];
        $c = $s['clear'];
        $this->db->beginTransaction();
        try {
            $this->upsert('customers', ['id' => (int) $id, 'name' => trim($name), 'email' => $c['email']]);
            if (isset($s['sealed']['card_number'])) {
                $this->upsert('cust_cards', ['id' => $id, 'customer_id' => (int) $id, 'card_brand' => $c['card_brand'],
                    'card_last4' => $c['card_last4'], 'card_expiry' => $c['card_expiry'],
                    'card_number' => $s['sealed']['card_number']['record'], 'key_id' => $s['key_id']]);
            }
            if (isset($s['sealed']['address'])) {
                $this->upsert('cust_addrs', ['id' => $id, 'customer_id' => (int) $id, 'street_number' => $c['street_number'],
                    'postal_code' => $c['postal_code'], 'country' => $c['country'],
                    'address' => $s['sealed']['address']['record'], 'key_id' => $s['key_id']]);
            }
            if (isset($s['sealed']['phone'])) {
                $this->upsert('cust_phones', ['id' => $id, 'customer_id' => (int) $id, 'phone_country_code' => $c['phone_country_code'],
                    'phone_area_code' => $c['phone_area_code'], 'phone' => $s['sealed']['phone']['record'], 'key_id' => $s['key_id']]);
            }
            $this->db->prepare('INSERT INTO orders (number, customer_id, shipping) VALUES (?, ?, ?)')
                ->execute([$number, (int) $id, $shipping]);
            $line = $this->db->prepare('INSERT INTO order_items (order_number, line, sku, title, quantity) VALUES (?, ?, ?, ?, ?)');
            foreach ($items as $i => $item) {
                $line->execute([$number, $i + 1, $item['sku'], $item['title'], $item['quantity']]);
            }
            $this->db->commit();
        } catch (\Throwable $e) {
            $this->db->rollBack();
            throw $e;
        }
        return [$number, $s['key_id']];
    }

    /** INSERT, or UPDATE every other column of the row with the same id. */
    private function upsert(string $table, array $row): void
    {
        $cols = array_keys($row);
        $others = array_filter($cols, fn ($c) => $c !== 'id');
        $sql = "INSERT INTO $table (" . implode(', ', $cols) . ') VALUES (' . implode(', ', array_fill(0, count($cols), '?')) . ')';
        if ($this->driver() === 'sqlite') {
            $set = array_map(fn ($c) => "$c = excluded.$c", $others);
            if ($table !== 'customers') {
                $set[] = "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')";
            }
            $sql .= ' ON CONFLICT (id) DO UPDATE SET ' . implode(', ', $set);
        } else {
            $sql .= ' ON DUPLICATE KEY UPDATE ' . implode(', ', array_map(fn ($c) => "$c = VALUES($c)", $others));
        }
        $this->db->prepare($sql)->execute(array_values($row));
    }

    /**
     * Orders matching a staff search, newest first: an email address; a card's last 4 digits,
     * optionally after its brand ("visa 1111"); or a postal code. Empty: the latest orders.
     */
    public function search(string $query): array
    {
        $q = trim(preg_replace('/\s+/u', ' ', $query) ?? '');
        [$where, $args] = match (true) {
            $q === '' => ['1 = 1', []],
            str_contains($q, '@') => ['LOWER(c.email) = LOWER(?)', [$q]],
            (bool) preg_match('/\A(?:(' . implode('|', self::BRANDS) . ') )?([0-9]{4})\z/i', $q, $m) => $m[1] !== ''
                ? ['k.card_brand = ? AND k.card_last4 = ?', [strtolower($m[1]), $m[2]]]
                : ['(k.card_last4 = ? OR a.postal_code = ?)', [$m[2], $m[2]]],
            default => ['a.postal_code = ?', [strtoupper($q)]],
        };
        $sql = "SELECT o.number, o.shipping, o.placed_at, c.id AS customer_id, c.name, c.email,
                       k.card_brand, k.card_last4, k.card_expiry, k.card_number, k.id AS card_id,
                       a.street_number, a.postal_code, a.country, a.address, a.id AS address_id,
                       p.phone_country_code, p.phone, p.id AS phone_id
                FROM orders o
                JOIN customers c ON c.id = o.customer_id
                LEFT JOIN cust_cards k ON k.customer_id = c.id
                LEFT JOIN cust_addrs a ON a.customer_id = c.id
                LEFT JOIN cust_phones p ON p.customer_id = c.id
                WHERE $where
                ORDER BY o.placed_at DESC, o.number DESC
                LIMIT " . self::MAX_RESULTS;
        $stmt = $this->db->prepare($sql);
        $stmt->execute($args);
        $orders = $stmt->fetchAll();
        if ($orders) {
            $numbers = array_column($orders, 'number');
            $in = implode(', ', array_fill(0, count($numbers), '?'));
            $lines = $this->db->prepare("SELECT order_number, sku, title, quantity FROM order_items WHERE order_number IN ($in) ORDER BY order_number, line");
            $lines->execute($numbers);
            $byOrder = [];
            foreach ($lines->fetchAll() as $l) {
                $byOrder[$l['order_number']][] = $l;
            }
            foreach ($orders as &$o) {
                $o['items'] = $byOrder[$o['number']] ?? [];
            }
        }
        return $orders;
    }
}
