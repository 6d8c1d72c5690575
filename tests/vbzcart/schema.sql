-- VbzCart's customer tables as VbzCart documents them (its wiki, "VbzCart/tables/...", and the
-- column names its code uses: cust/cust-card.php, cust/cust-phone.php). Written for the tests
-- from that documentation, never copied from VbzCart:
--
--  * cust_cards: the documented table (2013: CardSafe; later WhenEnc, which VbzCart's code sets
--    when it encrypts), ENGINE = MYISAM as documented. Encrypted is VARCHAR(127) as documented,
--    although no RSA blob fits it (RSA-2048: 256 bytes raw, 344 in base64): see legacy.sql.
--  * cust_addrs: the documented fields (Label, Name, Street, Town, State, Zip, Country, Full,
--    Search, Search_raw, WhenAct, WhenExp, WhenVoid, WhenEnt, WhenUpd); the widths of the
--    fields whose width we could not find are our choice.
--  * cust_phones, cust_emails: we found no published CREATE TABLE; the columns are those
--    VbzCart's code reads and writes (Phone, PhoneSrch, isActive, WhenEnt, WhenUpd; Email alike),
--    with widths of our choice.

CREATE TABLE `cust_cards` (
  `ID`          INT           NOT NULL AUTO_INCREMENT,
  `WhenEnt`     DATETIME      NOT NULL COMMENT "date when record was first created",
  `WhenUpd`     DATETIME  DEFAULT NULL COMMENT "date when record was last updated",
  `WhenEnc`     DATETIME  DEFAULT NULL COMMENT "date when Encrypted was last written",
  `Name`        VARCHAR(31)            COMMENT "human-assigned nickname for this card",
  `ID_Cust`     INT                    COMMENT "core_custs.ID",
  `ID_Name`     INT                    COMMENT "cust_names.ID",
  `ID_Addr`     INT                    COMMENT "cust_addrs.ID of card's billing address",
  `CardNum`     VARCHAR(31)            COMMENT "charge card number",
  `CardExp`     DATE                   COMMENT "expiration date",
  `CardCVV`     VARCHAR(7)  DEFAULT NULL COMMENT "CVV(2) code",
  `CardSafe`    VARCHAR(127)  NOT NULL COMMENT "unencrypted 'safe' card info in human-readable format",
  `OwnerName`   VARCHAR(127)           COMMENT "cardholder name, as it appears on card",
  `Address`     VARCHAR(255)           COMMENT "text of address, for redundancy",
  `Encrypted`   VARCHAR(127)           COMMENT "encrypted card number, CVV, expiration",
  `isActive`    BOOL      DEFAULT FALSE COMMENT "FALSE = don't use this number",
  `WhenInvalid` DATETIME  DEFAULT NULL COMMENT "deactivation timestamp",
  `Notes`       VARCHAR(255) DEFAULT NULL COMMENT "human-entered notes about this card",
  PRIMARY KEY(`ID`)
) ENGINE = MYISAM;

CREATE TABLE `cust_addrs` (
  `ID`          INT           NOT NULL AUTO_INCREMENT,
  `ID_Cust`     INT                    COMMENT "core_custs.ID",
  `Label`       VARCHAR(31)            COMMENT "human-assigned name for this address",
  `Name`        VARCHAR(255)           COMMENT "addressee name",
  `Street`      VARCHAR(127),
  `Town`        VARCHAR(63),
  `State`       VARCHAR(63),
  `Zip`         VARCHAR(31),
  `Country`     VARCHAR(63),
  `Full`        VARCHAR(255)           COMMENT "complete address formatted for printing",
  `Search`      VARCHAR(255)           COMMENT "complete address with punctuation stripped",
  `Search_raw`  VARCHAR(255)           COMMENT "fields appended, to detect when Search is stale",
  `Tag`         VARCHAR(31)            COMMENT "what this address is for",
  `WhenAct`     DATETIME               COMMENT "date when first active/usable; NULL = always",
  `WhenExp`     DATETIME               COMMENT "date when no longer usable; NULL = never",
  `WhenVoid`    DATETIME  DEFAULT NULL COMMENT "when the record was voided",
  `WhenEnt`     DATETIME      NOT NULL,
  `WhenUpd`     DATETIME  DEFAULT NULL,
  PRIMARY KEY(`ID`)
) ENGINE = MYISAM;

CREATE TABLE `cust_phones` (
  `ID`          INT           NOT NULL AUTO_INCREMENT,
  `ID_Cust`     INT                    COMMENT "core_custs.ID",
  `Phone`       VARCHAR(63)            COMMENT "phone number as entered",
  `PhoneSrch`   VARCHAR(63)            COMMENT "digits only, for searching",
  `isActive`    BOOL      DEFAULT FALSE,
  `WhenEnt`     DATETIME      NOT NULL,
  `WhenUpd`     DATETIME  DEFAULT NULL,
  PRIMARY KEY(`ID`)
) ENGINE = MYISAM;

CREATE TABLE `cust_emails` (
  `ID`          INT           NOT NULL AUTO_INCREMENT,
  `ID_Cust`     INT                    COMMENT "core_custs.ID",
  `Email`       VARCHAR(127)           COMMENT "email address as entered",
  `isActive`    BOOL      DEFAULT FALSE,
  `WhenEnt`     DATETIME      NOT NULL,
  `WhenUpd`     DATETIME  DEFAULT NULL,
  PRIMARY KEY(`ID`)
) ENGINE = MYISAM;
