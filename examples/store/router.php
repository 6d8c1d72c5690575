<?php
// Router for PHP's built-in web server in the demo: "/" is the admin page.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if ($path === '/' || $path === '/admin.php') {
    require __DIR__ . '/admin.php';
    return true;
}
if ($path === '/vbzkey.js') {
    require __DIR__ . '/vbzkey.js.php';
    return true;
}
http_response_code(404);
header('Content-Type: text/plain; charset=utf-8');
echo "not found\n";
return true;
