<?php
// The staff client, served by the store from its own origin (no cross-origin script).
header('Content-Type: application/javascript; charset=utf-8');
readfile(__DIR__ . '/../../host-bridge/static/vbzkey.js');
