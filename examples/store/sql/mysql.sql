-- The demo store's own tables for MySQL 8 / MariaDB 10.6+, beside schema/mysql.sql (see
-- sql/sqlite.sql for what they hold).

CREATE TABLE customers (
  id     BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  name   VARCHAR(200) NOT NULL,
  email  VARCHAR(254) NULL,
  KEY idx_customers_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE orders (
  number       VARCHAR(20) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  customer_id  BIGINT UNSIGNED NOT NULL,
  shipping     ENUM('standard', 'express') NOT NULL DEFAULT 'standard',
  placed_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  KEY idx_orders_customer (customer_id),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE order_items (
  order_number  VARCHAR(20) CHARACTER SET ascii NOT NULL,
  line          SMALLINT UNSIGNED NOT NULL,
  sku           VARCHAR(40) NOT NULL,
  title         VARCHAR(200) NOT NULL,
  quantity      SMALLINT UNSIGNED NOT NULL CHECK (quantity BETWEEN 1 AND 9999),
  PRIMARY KEY (order_number, line),
  CONSTRAINT fk_items_order FOREIGN KEY (order_number) REFERENCES orders (number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
