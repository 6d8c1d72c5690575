<?php
/**
 * For a store without Composer: `require 'path/to/clients/php/autoload.php';` loads the
 * VbzKey\ classes from src/ on first use (PSR-4, as Composer's autoloader would).
 */

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'VbzKey\\') && !str_starts_with($class, 'VbzKey\\Tests\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 7)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
