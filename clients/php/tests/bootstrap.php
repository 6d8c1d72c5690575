<?php
/**
 * PHPUnit bootstrap: Composer's autoloader when the package was installed with its dev
 * dependencies, otherwise the package's own (Debian's phpunit brings its own PHPUnit).
 */

declare(strict_types=1);

if (is_file(__DIR__ . '/../vendor/autoload.php')) {
    require __DIR__ . '/../vendor/autoload.php';
} else {
    require __DIR__ . '/../autoload.php';
    spl_autoload_register(static function (string $class): void {
        if (str_starts_with($class, 'VbzKey\\Tests\\')) {
            $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, 13)) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
