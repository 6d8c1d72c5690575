<?php
/**
 * Create the demo store's tables (the SCD tables of schema/ and the store's own of sql/) in its
 * database, unless they exist: `php install.php`. Environment as for checkout.php.
 */

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

$created = DemoStore\Store::fromEnvironment()->install();
echo $created ? "tables created\n" : "tables already there\n";
