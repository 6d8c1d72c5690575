-- The demo store's own tables, beside the SCD tables of schema/sqlite.sql: customers (clear
-- name and email), orders and order lines. Nothing here is sensitive; a customer's card,
-- address and phone live sealed in cust_cards, cust_addrs and cust_phones, whose rows have the
-- customer's id as their id (docs/SCHEMA.md).

CREATE TABLE customers (
  id     INTEGER NOT NULL PRIMARY KEY,
  name   TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  email  TEXT
) STRICT;
CREATE INDEX idx_customers_email ON customers (email COLLATE NOCASE);

CREATE TABLE orders (
  number       TEXT    NOT NULL PRIMARY KEY CHECK (length(number) BETWEEN 1 AND 20),
  customer_id  INTEGER NOT NULL REFERENCES customers (id),
  shipping     TEXT    NOT NULL DEFAULT 'standard' CHECK (shipping IN ('standard', 'express')),
  placed_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
CREATE INDEX idx_orders_customer ON orders (customer_id);

CREATE TABLE order_items (
  order_number  TEXT    NOT NULL REFERENCES orders (number),
  line          INTEGER NOT NULL,
  sku           TEXT    NOT NULL,
  title         TEXT    NOT NULL,
  quantity      INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 9999),
  PRIMARY KEY (order_number, line)
) STRICT;
