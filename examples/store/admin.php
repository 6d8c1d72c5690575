<?php
/**
 * The demo store's admin page: search orders by their clear columns (card brand + last 4,
 * postal code, email), see each order's sealed card, address and phone as elements the staff
 * member's vbzkey.js opens through the bridge, and print shipping labels and packing lists for
 * the selected orders. The server never sees a plaintext.
 *
 * Environment: as src/Store.php.
 */

declare(strict_types=1);

require __DIR__ . '/bootstrap.php';

use DemoStore\Store;

/** Where parcels come from; a label shows the country only for parcels leaving it. */
const SENDER = ['Demo Store', '1 Market Street', 'London EC1A 1AA', 'GB'];
const COUNTRY_NAMES = [
    'GB' => 'UNITED KINGDOM', 'US' => 'UNITED STATES', 'CA' => 'CANADA', 'DE' => 'GERMANY',
    'FR' => 'FRANCE', 'IE' => 'IRELAND', 'NL' => 'NETHERLANDS', 'AU' => 'AUSTRALIA',
];

$store = Store::fromEnvironment();
$store->install();
$query = is_string($_GET['q'] ?? null) ? mb_substr($_GET['q'], 0, 100) : '';
$orders = $store->search($query);
$bridge = $store->bridgeUrl();

$h = fn (?string $s): string => htmlspecialchars((string) $s, ENT_QUOTES | ENT_HTML5, 'UTF-8');

/** A sealed value, rendered for vbzkey.js (empty when the customer has none). */
function sealed(?string $record, string $table, ?string $id, string $column, string $kind = '', string $tag = 'span'): string
{
    if ($record === null || $id === null) {
        return '—';
    }
    $e = fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
    $k = $kind !== '' ? ' data-vbzkey-kind="' . $e($kind) . '"' : '';
    return "<$tag class=\"sealed\" data-vbzkey-record=\"" . $e($record) . '" data-vbzkey-context="'
        . $e("$table/$id/$column") . "\"$k>[sealed]</$tag>";
}

/** A mailto: link to exactly this address: no '?', '&' or ',' of the value reaches the URL. */
function mailto(string $email): string
{
    [$local, $domain] = explode('@', $email, 2) + ['', ''];
    return 'mailto:' . rawurlencode($local) . '@' . rawurlencode($domain);
}

/** Carriers want a phone number for express and for parcels leaving the country. */
function needsPhone(array $o): bool
{
    return $o['shipping'] === 'express' || ($o['country'] ?? SENDER[3]) !== SENDER[3];
}

$nonce = base64_encode(random_bytes(16));
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
header('Referrer-Policy: no-referrer');
header('X-Content-Type-Options: nosniff');
// Plaintext lives in this page's DOM once opened: script from this origin only, and network
// access to the bridge only, so an injected script has no channel to send it anywhere.
header("Content-Security-Policy: default-src 'none'; script-src 'self' 'nonce-$nonce'; style-src 'nonce-$nonce'; "
    . 'connect-src ' . preg_replace('/[^A-Za-z0-9:\/.\[\]-]/', '', $bridge) . "; img-src 'self'; form-action 'self'; "
    . "base-uri 'none'; frame-ancestors 'none'");
?><!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Demo store — orders</title>
<style nonce="<?= $h($nonce) ?>">
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
  .vbzkey-notice { margin-left: .8em; color: #a50; }
  .vbzkey-reveal { margin-left: .5em; font-size: .8em; }
  .search, .actions { margin: 1em 0; }
  .search input { width: 22em; }
  /* Print sheets (vbzkey.js lays out the pages: 4×6 in labels, A4/Letter packing lists). */
  .vbzkey-print .sealed, .vbzkey-print .vbzkey-open { color: inherit; font: inherit; }
  .label { font: 12pt/1.3 system-ui, sans-serif; }
  .label-from { font-size: 8pt; border-bottom: 1px solid #000; padding-bottom: .3em; margin-bottom: 1.2em; }
  .label-to { font-size: 15pt; line-height: 1.35; margin-left: .3in; }
  .label-name { font-weight: 600; }
  .label-order { margin-top: 1.5em; font-size: 9pt; border-top: 1px solid #000; padding-top: .3em; }
  .packing h2 { font-size: 16pt; margin: 0 0 .3em; }
  .packing .ship-to { margin: 1em 0; }
  .packing table { width: 100%; border-collapse: collapse; }
  .packing th, .packing td { border-bottom: 1px solid #999; padding: .3em; }
</style>
</head>
<body>
<h1>Demo store — orders</h1>
<p>Card numbers, addresses and phone numbers are sealed in the database; the rest is clear.
Your vbzkey dongle opens them on this computer only.</p>
<form class="search" method="get" role="search">
  <input name="q" type="search" value="<?= $h($query) ?>" placeholder="Visa 1111, postcode or email" aria-label="Search orders">
  <button type="submit">Search</button>
  <?php if ($query !== ''): ?><a href="?">All orders</a><?php endif; ?>
</form>
<div id="vbzkey-bar">Looking for the key bridge…</div>
<div class="actions">
  <button type="button" data-vbzkey-print="labels">Print labels</button>
  <button type="button" data-vbzkey-print="packing">Packing list</button>
  <select data-vbzkey-paper aria-label="Paper for packing lists">
    <option value="a4">A4</option>
    <option value="letter">Letter</option>
  </select>
</div>
<p class="results"><?= count($orders) ?> order<?= count($orders) === 1 ? '' : 's' ?><?= $query !== '' ? ' for “' . $h($query) . '”' : '' ?></p>
<table>
<thead><tr><th></th><th>Order</th><th>Customer</th><th>Card</th><th>Card number</th><th>Expiry</th>
<th>Address</th><th>Postcode</th><th>Phone</th><th>Email</th><th>Shipping</th></tr></thead>
<tbody>
<?php foreach ($orders as $o): ?>
<tr>
  <td><input type="checkbox" data-vbzkey-select value="<?= $h($o['number']) ?>" aria-label="Select order <?= $h($o['number']) ?>"></td>
  <td><?= $h($o['number']) ?></td>
  <td><?= $h($o['name']) ?></td>
  <td><?= $o['card_brand'] ? $h(ucfirst($o['card_brand'])) . ' …' . $h($o['card_last4']) : '—' ?></td>
  <td><?= sealed($o['card_number'], 'cust_cards', $o['card_id'], 'card_number', 'card') ?></td>
  <td><?= $h($o['card_expiry']) ?></td>
  <td><?= sealed($o['address'], 'cust_addrs', $o['address_id'], 'address') ?></td>
  <td><?= $h($o['postal_code']) ?> <?= $h($o['country']) ?></td>
  <td><?= sealed($o['phone'], 'cust_phones', $o['phone_id'], 'phone', 'phone') ?></td>
  <td><?= $o['email'] ? '<a href="' . $h(mailto($o['email'])) . '">' . $h($o['email']) . '</a>' : '—' ?></td>
  <td><?= $h($o['shipping']) ?></td>
</tr>
<?php endforeach; ?>
</tbody>
</table>

<?php foreach ($orders as $o): if ($o['address'] === null) continue; ?>
<template data-vbzkey-sheet="labels" data-vbzkey-for="<?= $h($o['number']) ?>">
  <div class="label">
    <div class="label-from"><?= $h(implode(' · ', SENDER)) ?></div>
    <div class="label-to">
      <div class="label-name"><?= $h($o['name']) ?></div>
      <?= sealed($o['address'], 'cust_addrs', $o['address_id'], 'address', '', 'div') ?>
      <div><?= $h($o['postal_code']) ?></div>
      <?php if ($o['country'] !== SENDER[3]): ?><div><?= $h(COUNTRY_NAMES[$o['country']] ?? $o['country']) ?></div><?php endif; ?>
      <?php if (needsPhone($o) && $o['phone'] !== null): ?><div>Tel. <?= sealed($o['phone'], 'cust_phones', $o['phone_id'], 'phone') ?></div><?php endif; ?>
    </div>
    <div class="label-order">Order <?= $h($o['number']) ?> · <?= $h(ucfirst($o['shipping'])) ?></div>
  </div>
</template>
<template data-vbzkey-sheet="packing" data-vbzkey-for="<?= $h($o['number']) ?>">
  <div class="packing">
    <h2>Packing list — order <?= $h($o['number']) ?></h2>
    <div>Placed <?= $h(substr((string) $o['placed_at'], 0, 10)) ?> · <?= $h(ucfirst($o['shipping'])) ?> shipping</div>
    <div class="ship-to"><strong>Ship to</strong><br><?= $h($o['name']) ?>
      <?= sealed($o['address'], 'cust_addrs', $o['address_id'], 'address', '', 'div') ?>
      <div><?= $h($o['postal_code']) ?> <?= $h($o['country']) ?></div>
    </div>
    <table>
      <thead><tr><th>SKU</th><th>Item</th><th>Qty</th><th>Packed</th></tr></thead>
      <tbody>
      <?php foreach ($o['items'] as $item): ?>
        <tr><td><?= $h($item['sku']) ?></td><td><?= $h($item['title']) ?></td><td><?= (int) $item['quantity'] ?></td><td>☐</td></tr>
      <?php endforeach; ?>
      </tbody>
    </table>
  </div>
</template>
<?php endforeach; ?>
<script src="vbzkey.js"></script>
<script nonce="<?= $h($nonce) ?>">window.vbzkey = VbzKey.start({ bridge: <?= json_encode($bridge, JSON_UNESCAPED_SLASHES | JSON_HEX_TAG) ?>, bar: "#vbzkey-bar" });</script>
</body>
</html>
