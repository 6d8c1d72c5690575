<?php
/**
 * The demo store's admin page: lists orders with their clear fields, and each sealed field as
 * an element the staff's vbzkey.js opens through the bridge (docs/SCHEMA.md shows the same
 * for rows of the SCD tables). The server never sees a plaintext.
 *
 * Environment: VBZKEY_STORE_DATA (orders/ and bridge-url.txt).
 */

declare(strict_types=1);

$data = getenv('VBZKEY_STORE_DATA') ?: '.';
$bridge = trim((string) @file_get_contents("$data/bridge-url.txt")) ?: 'http://127.0.0.1:7878';
$orders = [];
foreach (glob("$data/orders/*.json") ?: [] as $file) {
    $orders[] = json_decode((string) file_get_contents($file), true);
}
usort($orders, fn ($a, $b) => strcmp($a['order'], $b['order']));
$h = fn (?string $s): string => htmlspecialchars((string) $s, ENT_QUOTES | ENT_HTML5, 'UTF-8');

/** A sealed value, rendered for vbzkey.js. */
function sealed(array $order, string $field, string $kind = ''): string
{
    $f = $order['sealed'][$field] ?? null;
    if ($f === null) {
        return '<td>—</td>';
    }
    $e = fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
    $k = $kind !== '' ? ' data-vbzkey-kind="' . $e($kind) . '"' : '';
    return '<td><span class="sealed" data-vbzkey-record="' . $e($f['record']) . '" data-vbzkey-context="'
        . $e($f['context']) . '"' . $k . '>[sealed]</span></td>';
}

header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Demo store — orders</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
  h1 { font-size: 1.4em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { border-bottom: 1px solid #ddd; padding: .45em .6em; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; }
  .sealed { color: #888; font-family: ui-monospace, monospace; white-space: pre-line; }
  .vbzkey-open { color: #0a5; }
  .vbzkey-error { color: #c00; }
  #vbzkey-bar { margin: 1em 0; padding: .6em .8em; background: #eef4ff; border-radius: 6px; }
  #vbzkey-bar form, #vbzkey-bar button, #vbzkey-bar a { display: inline; margin-left: .8em; }
  .vbzkey-reveal { margin-left: .5em; font-size: .8em; }
</style>
</head>
<body>
<h1>Demo store — recent orders</h1>
<p>Card numbers, addresses and phone numbers are sealed in the database; the rest is clear.
Your vbzkey dongle opens them on this computer only.</p>
<div id="vbzkey-bar">Looking for the key bridge…</div>
<table>
<thead><tr><th>Order</th><th>Customer</th><th>Card</th><th>Card number</th><th>Expiry</th>
<th>Address</th><th>Postcode</th><th>Phone</th><th>Email</th></tr></thead>
<tbody>
<?php foreach ($orders as $o): $c = $o['clear']; ?>
<tr>
  <td><?= $h($o['order']) ?></td>
  <td><?= $h($o['name']) ?></td>
  <td><?= $h(ucfirst((string) $c['card_brand'])) ?> …<?= $h($c['card_last4']) ?></td>
  <?= sealed($o, 'card_number', 'card') ?>
  <td><?= $h($c['card_expiry']) ?></td>
  <?= sealed($o, 'address') ?>
  <td><?= $h($c['postal_code']) ?> <?= $h($c['country']) ?></td>
  <?= sealed($o, 'phone') ?>
  <td><?= $h($c['email']) ?></td>
</tr>
<?php endforeach; ?>
</tbody>
</table>
<script src="vbzkey.js"></script>
<script>window.vbzkey = VbzKey.start({ bridge: <?= json_encode($bridge) ?>, bar: "#vbzkey-bar" });</script>
</body>
</html>
