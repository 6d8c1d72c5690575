-- What every VbzCart shop that used its RSA cipher had to change: the documented
-- Encrypted VARCHAR(127) cannot hold an RSA-2048 blob (256 bytes raw, 344 characters in
-- base64; VbzCart's own code refuses more than 256), and raw blobs are bytes, not text.
ALTER TABLE `cust_cards` MODIFY `Encrypted` VARBINARY(384) COMMENT "encrypted card number, CVV, expiration";
