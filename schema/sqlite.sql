-- vbzkey SCD tables for SQLite 3.37+ (STRICT tables; docs/SCHEMA.md).
-- Same columns and meaning as mysql.sql.
PRAGMA foreign_keys = ON;

CREATE TABLE cust_cards (
  id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  customer_id  INTEGER NOT NULL,
  card_brand   TEXT    NOT NULL CHECK (card_brand IN ('visa', 'mastercard', 'amex', 'discover', 'other')),
  card_last4   TEXT    NOT NULL CHECK (length(card_last4) = 4),
  card_expiry  TEXT    NOT NULL CHECK (card_expiry GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]'),
  card_number  TEXT    NOT NULL CHECK (card_number LIKE 'vk1.%'),
  key_id       TEXT    NOT NULL CHECK (length(key_id) = 16),
  created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
CREATE INDEX idx_cards_customer ON cust_cards (customer_id);
CREATE INDEX idx_cards_last4 ON cust_cards (card_last4, card_brand);
CREATE INDEX idx_cards_key ON cust_cards (key_id);

CREATE TABLE cust_bank_accounts (
  id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  customer_id     INTEGER NOT NULL,
  bank_last4      TEXT    NOT NULL,
  bank_routing    TEXT,
  account_number  TEXT    NOT NULL CHECK (account_number LIKE 'vk1.%'),
  key_id          TEXT    NOT NULL CHECK (length(key_id) = 16),
  created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
CREATE INDEX idx_banks_customer ON cust_bank_accounts (customer_id);
CREATE INDEX idx_banks_last4 ON cust_bank_accounts (bank_last4);
CREATE INDEX idx_banks_key ON cust_bank_accounts (key_id);

CREATE TABLE cust_addrs (
  id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  customer_id    INTEGER NOT NULL,
  street_number  TEXT,
  postal_code    TEXT,
  country        TEXT    NOT NULL CHECK (length(country) = 2),
  address        TEXT    NOT NULL CHECK (address LIKE 'vk1.%'),
  key_id         TEXT    NOT NULL CHECK (length(key_id) = 16),
  created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
CREATE INDEX idx_addrs_customer ON cust_addrs (customer_id);
CREATE INDEX idx_addrs_postal ON cust_addrs (country, postal_code, street_number);
CREATE INDEX idx_addrs_key ON cust_addrs (key_id);

CREATE TABLE cust_phones (
  id                  TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
  customer_id         INTEGER NOT NULL,
  phone_country_code  TEXT    NOT NULL,
  phone_area_code     TEXT,
  phone               TEXT    NOT NULL CHECK (phone LIKE 'vk1.%'),
  key_id              TEXT    NOT NULL CHECK (length(key_id) = 16),
  created_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  updated_at          TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
) STRICT;
CREATE INDEX idx_phones_customer ON cust_phones (customer_id);
CREATE INDEX idx_phones_area ON cust_phones (phone_country_code, phone_area_code);
CREATE INDEX idx_phones_key ON cust_phones (key_id);
