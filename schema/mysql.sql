-- vbzkey SCD tables for MySQL 8 / MariaDB 10.6+ (docs/SCHEMA.md).
-- Clear columns are indexed for search; sealed columns hold the `vk1.` text form (ASCII,
-- at most 5546 characters); key_id (16 hex) lets a rotation find the records of an old key.
-- The row id is the `id` in each value's context: `<table>/<id>/<column>`.

CREATE TABLE cust_cards (
  id           VARCHAR(64)  CHARACTER SET ascii NOT NULL PRIMARY KEY,
  customer_id  BIGINT UNSIGNED NOT NULL,
  card_brand   ENUM('visa', 'mastercard', 'amex', 'discover', 'other') NOT NULL,
  card_last4   CHAR(4)      CHARACTER SET ascii NOT NULL,
  card_expiry  CHAR(7)      CHARACTER SET ascii NOT NULL,      -- YYYY-MM
  card_number  TEXT         CHARACTER SET ascii NOT NULL,      -- sealed: cust_cards/<id>/card_number
  key_id       CHAR(16)     CHARACTER SET ascii NOT NULL,
  created_at   TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at   TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  KEY idx_cards_customer (customer_id),
  KEY idx_cards_last4 (card_last4, card_brand),
  KEY idx_cards_key (key_id),
  CONSTRAINT chk_cards_sealed CHECK (card_number LIKE 'vk1.%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE cust_bank_accounts (
  id              VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  customer_id     BIGINT UNSIGNED NOT NULL,
  bank_last4      VARCHAR(4)  CHARACTER SET ascii NOT NULL,
  bank_routing    VARCHAR(11) CHARACTER SET ascii NULL,
  account_number  TEXT        CHARACTER SET ascii NOT NULL,    -- sealed: cust_bank_accounts/<id>/account_number
  key_id          CHAR(16)    CHARACTER SET ascii NOT NULL,
  created_at      TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at      TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  KEY idx_banks_customer (customer_id),
  KEY idx_banks_last4 (bank_last4),
  KEY idx_banks_key (key_id),
  CONSTRAINT chk_banks_sealed CHECK (account_number LIKE 'vk1.%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE cust_addrs (
  id             VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  customer_id    BIGINT UNSIGNED NOT NULL,
  street_number  VARCHAR(16) NULL,
  postal_code    VARCHAR(10) CHARACTER SET ascii NULL,
  country        CHAR(2)     CHARACTER SET ascii NOT NULL,
  address        TEXT        CHARACTER SET ascii NOT NULL,     -- sealed: cust_addrs/<id>/address
  key_id         CHAR(16)    CHARACTER SET ascii NOT NULL,
  created_at     TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at     TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  KEY idx_addrs_customer (customer_id),
  KEY idx_addrs_postal (country, postal_code, street_number),
  KEY idx_addrs_key (key_id),
  CONSTRAINT chk_addrs_sealed CHECK (address LIKE 'vk1.%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE cust_phones (
  id                  VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  customer_id         BIGINT UNSIGNED NOT NULL,
  phone_country_code  VARCHAR(3)  CHARACTER SET ascii NOT NULL,
  phone_area_code     CHAR(3)     CHARACTER SET ascii NULL,     -- NANP only
  phone               TEXT        CHARACTER SET ascii NOT NULL, -- sealed: cust_phones/<id>/phone
  key_id              CHAR(16)    CHARACTER SET ascii NOT NULL,
  created_at          TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at          TIMESTAMP   NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  KEY idx_phones_customer (customer_id),
  KEY idx_phones_area (phone_country_code, phone_area_code),
  KEY idx_phones_key (key_id),
  CONSTRAINT chk_phones_sealed CHECK (phone LIKE 'vk1.%')
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
