<?php
// The demo store's classes: the vbzkey sealer (clients/php, as a store without Composer loads
// it) and the store's own code in src/.

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php';
require __DIR__ . '/src/Store.php';
