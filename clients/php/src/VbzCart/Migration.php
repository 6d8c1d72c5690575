<?php

declare(strict_types=1);

namespace VbzKey\VbzCart;

use VbzKey\Exception;
use VbzKey\Record;
use VbzKey\Sealer;

/**
 * Moves VbzCart's `cust_cards` from its legacy RSA blobs (number, CVV and expiry, PKCS#1 v1.5)
 * and clear `CardNum`/`CardCVV` to vbzkey (docs/VBZCART.md). For each row, in id order:
 *
 *  - the card comes from `CardNum`/`CardExp` when they are clear, else from the RSA blob in
 *    `Encrypted` (raw or base64), opened with the old private key;
 *  - the number alone is sealed to the store's vbzkey public key under {@see Cipher::CONTEXT}
 *    into `Encrypted`; `CardNum` and `CardCVV` become NULL; `CardExp` stays (or becomes, from
 *    the blob) clear; `CardSafe` is written in VbzCart's format; `WhenEnc` = NOW();
 *  - a CVV (clear or in the blob) is dropped and counted, never sealed;
 *  - a row it cannot read is left as it was, but for a clear CVV beside it (dropped), and
 *    reported by id and reason.
 *
 * Each batch is one transaction, and each row's UPDATE is a compare-and-swap on every column
 * it read, so a row the store changed meanwhile is left for the next run. A run killed at any
 * point leaves whole batches done or not done; running again carries on (a finished row — a
 * `vk1.` record, no `CardNum`, no `CardCVV` — is skipped).
 */
final class Migration
{
    public const TABLE = 'cust_cards';

    /** Counters of the summary, in the order they are printed. */
    public const COUNTS = [
        'rows' => 'rows',
        'already_sealed' => 'already sealed',
        'sealed_to_another_key' => 'of which sealed to another vbzkey key',
        'no_card' => 'no card',
        'cards_clear' => 'cards found clear',
        'blobs_decrypted' => 'blobs decrypted',
        'cvvs_dropped' => 'CVVs dropped',
        'sealed' => 'sealed',
        'changed_meanwhile' => 'changed meanwhile (left for the next run)',
        'unreadable' => 'unreadable (left as they were)',
    ];

    private array $counts;
    /** @var array<string,int> reason => rows */
    private array $reasons = [];
    /** @var list<array{id:string,reason:string,cvv_dropped:bool}> */
    private array $unreadable = [];
    private ?int $width = null;
    /** The 8-byte key id every record sealed to --public-key carries. */
    private readonly string $keyId;

    /**
     * @param ?LegacyKey $rsa the old RSA key; without it only clear cards move (and rows that
     *        need it are reported `needs_rsa_key`)
     */
    public function __construct(private readonly \PDO $db, private readonly string $publicKey, private readonly ?LegacyKey $rsa)
    {
        $this->keyId = Record::keyId(Record::parsePublicKey($publicKey));
        $this->counts = array_fill_keys(array_keys(self::COUNTS), 0);
        $this->db->setAttribute(\PDO::ATTR_ERRMODE, \PDO::ERRMODE_EXCEPTION);
        // Native prepared statements: raw RSA blobs travel as bytes, never through quoting.
        $this->db->setAttribute(\PDO::ATTR_EMULATE_PREPARES, false);
    }

    /**
     * A run writes only to a table with transactions. VbzCart documents `cust_cards` as MyISAM,
     * which has none: a batch could not be all or nothing. The admin converts it first
     * (docs/VBZCART.md); a dry run works on any engine.
     */
    public function checkWritable(): void
    {
        $q = $this->db->prepare('SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?');
        $q->execute([self::TABLE]);
        $engine = $q->fetchColumn();
        if ($engine === false) {
            throw new Exception('no_table', 'no cust_cards table in this database (or this user may not see it)');
        }
        if (strcasecmp((string) $engine, 'InnoDB') !== 0) {
            throw new Exception('not_transactional', "cust_cards is a $engine table, which has no transactions, so a batch could not be all or nothing: "
                . 'convert it first with ALTER TABLE cust_cards ENGINE=InnoDB (docs/VBZCART.md), or run with --dry-run');
        }
    }

    /**
     * Run over the whole table. `$progress(done, total)` is called after every batch;
     * `$pause(rows)` after every batch too (to pace the run); `$stop()` is asked before each
     * batch whether to stop early.
     */
    public function run(bool $dryRun, int $batch, callable $progress, callable $pause, callable $stop): void
    {
        $this->width = $this->encryptedWidth();
        $total = (int) $this->db->query('SELECT COUNT(*) FROM ' . self::TABLE)->fetchColumn();
        $select = $this->db->prepare('SELECT ID, Encrypted, CardNum, CardCVV, CardExp, CardSafe FROM ' . self::TABLE
            . ' WHERE ID > ? ORDER BY ID LIMIT ' . $batch);
        $update = $this->db->prepare('UPDATE ' . self::TABLE . ' SET Encrypted = ?, CardNum = NULL, CardCVV = NULL,'
            . ' CardExp = ?, CardSafe = ?, WhenEnc = NOW()'
            . ' WHERE ID = ? AND Encrypted <=> ? AND CardNum <=> ? AND CardCVV <=> ? AND CardExp <=> ? AND CardSafe <=> ?');
        // A CVV beside a finished record, or beside a row it cannot read: only the CVV goes.
        $dropCvv = $this->db->prepare('UPDATE ' . self::TABLE . ' SET CardCVV = NULL'
            . ' WHERE ID = ? AND Encrypted <=> ? AND CardNum <=> ? AND CardCVV <=> ? AND CardExp <=> ? AND CardSafe <=> ?');
        $last = -1;
        $done = 0;
        while (!$stop()) {
            if (!$dryRun) {
                $this->db->beginTransaction();
            }
            $select->execute([$last]);
            $rows = $select->fetchAll(\PDO::FETCH_ASSOC);
            if ($rows === []) {
                if (!$dryRun) {
                    $this->db->commit();
                }
                break;
            }
            $pending = [];
            foreach ($rows as $row) {
                $plan = $this->plan($row);
                if ($plan !== null) {
                    $pending[] = [$plan, $row];
                }
            }
            if (!$dryRun) {
                // The test hook counts only batches with work to do.
                if ($pending !== []) {
                    Crash::at('read');
                }
                $half = intdiv(count($pending), 2);
                foreach ($pending as $i => [$plan, $row]) {
                    if ($i === $half) {
                        Crash::at('half-written');
                    }
                    $was = [$row['ID'], $row['Encrypted'], $row['CardNum'], $row['CardCVV'], $row['CardExp'], $row['CardSafe']];
                    $q = $plan['from'] === 'cvv-only' ? $dropCvv : $update;
                    $q->execute($plan['from'] === 'cvv-only' ? $was : [$plan['encrypted'], $plan['exp'], $plan['safe'], ...$was]);
                    $this->tally($plan, $q->rowCount() === 1);
                }
                $this->db->commit();
                if ($pending !== []) {
                    Crash::at('committed');
                }
            } else {
                foreach ($pending as [$plan]) {
                    $this->tally($plan, true);
                }
            }
            $last = (int) end($rows)['ID'];
            $done += count($rows);
            $progress($done, max($total, $done));
            $pause(count($rows));
        }
    }

    /** What to write for a row, or null when there is nothing to do or it cannot be read. */
    private function plan(#[\SensitiveParameter] array $row): ?array
    {
        $this->counts['rows']++;
        $enc = $row['Encrypted'] ?? '';
        $num = $row['CardNum'] ?? '';
        $cvv = $row['CardCVV'] ?? '';
        $hasCvv = trim($cvv) !== '';
        sodium_memzero($cvv);
        $sealed = str_starts_with($enc, 'vk1.');
        if ($sealed && trim($num) === '') {
            // A record it keeps must be one: junk that merely starts with `vk1.` is reported,
            // and one sealed to another key (an earlier run given another --public-key, or a
            // rotation not yet rewrapped) is counted, so the admin checks it opens somewhere.
            $header = Record::unb64(substr($enc, 4));
            if ($header === null || strlen($header) < 12 + 32 + 16 + 1 || !str_starts_with($header, "VK\x01\x01")) {
                return $this->unreadable($row['ID'], 'bad_vk1_record', $hasCvv);
            }
            if (substr($header, 4, 8) !== $this->keyId) {
                $this->counts['sealed_to_another_key']++;
            }
        }
        if (self::finished($row)) {
            $this->counts[$sealed ? 'already_sealed' : 'no_card']++;
            return null;
        }
        try {
            if (trim($num) !== '') {
                $card = Card::fromColumns($num, $row['CardExp']);
                $from = 'clear';
            } elseif ($sealed || $enc === '') {
                // Only a clear CVV is left beside a finished record (or beside nothing): drop it.
                return ['from' => 'cvv-only', 'cvv' => true, 'unreadable' => null];
            } else {
                [$card, $blobCvv] = $this->openBlob($enc);
                $hasCvv = $hasCvv || $blobCvv;
                $from = 'blob';
                if ($row['CardExp'] === null && $card->expiryUnreadable) {
                    // The blob is the only copy of the expiry as typed; sealing the number
                    // alone would throw it away. The admin reads it (the key still opens it).
                    throw new Exception('unreadable_expiry', 'the RSA blob holds an expiry that cannot be read, and CardExp is empty');
                }
                if ($row['CardExp'] !== null) {
                    // The clear column wins over the blob's copy, as VbzCart itself reads it.
                    $card = Card::fromColumns($card->number, $row['CardExp']);
                }
            }
        } catch (Exception $e) {
            return $this->unreadable($row['ID'], $e->getErrorCode(), $hasCvv);
        }
        $record = Sealer::seal($this->publicKey, Cipher::CONTEXT, $card->number);
        if ($this->width !== null && strlen($record) > $this->width) {
            return $this->unreadable($row['ID'], 'record_too_long_for_column', $hasCvv);
        }
        return ['encrypted' => $record, 'exp' => $row['CardExp'] ?? $card->cardExp(), 'safe' => $card->cardSafe(),
            'from' => $from, 'cvv' => $hasCvv];
    }

    /**
     * A row it cannot read keeps its number, blob, expiry and CardSafe as they are, for the
     * admin to look at; but a clear CVV beside them is dropped all the same (PCI DSS forbids
     * keeping it, nothing needs it to read the card, and a table "done" must hold none).
     */
    private function unreadable(mixed $id, string $reason, bool $clearCvv): ?array
    {
        $this->fail($id, $reason);
        return $clearCvv ? ['from' => 'cvv-only', 'cvv' => true, 'unreadable' => array_key_last($this->unreadable)] : null;
    }

    /** A row with nothing left to do: no clear number, no CVV, no RSA blob. */
    private static function finished(#[\SensitiveParameter] array $row): bool
    {
        $enc = $row['Encrypted'] ?? '';
        return trim($row['CardNum'] ?? '') === '' && trim($row['CardCVV'] ?? '') === ''
            && ($enc === '' || str_starts_with($enc, 'vk1.'));
    }

    /**
     * After a run: the ids of rows that still hold a clear number, a CVV or an RSA blob and
     * were not reported unreadable. The store wrote them while the run went on (a row it
     * changed under a compare-and-swap, or one behind the run's cursor, e.g. a checkout still
     * on VbzCart's old cipher); the next run takes them. While there are any, the old RSA key
     * is still needed and the table is not done.
     *
     * @return list<string>
     */
    public function leftForNextRun(): array
    {
        $reported = array_flip(array_column($this->unreadable, 'id'));
        $left = [];
        $q = $this->db->prepare('SELECT ID, Encrypted, CardNum, CardCVV FROM ' . self::TABLE . ' WHERE ID > ? ORDER BY ID LIMIT 1000');
        $last = -1;
        do {
            $q->execute([$last]);
            $rows = $q->fetchAll(\PDO::FETCH_ASSOC);
            foreach ($rows as $row) {
                if (!self::finished($row) && !isset($reported[(string) $row['ID']])) {
                    $left[] = (string) $row['ID'];
                }
                $last = (int) $row['ID'];
            }
        } while (count($rows) === 1000);
        return $left;
    }

    /** @return array{0:Card,1:bool} */
    private function openBlob(string $stored): array
    {
        if ($this->rsa === null) {
            throw new Exception('needs_rsa_key', 'an RSA blob and no --rsa-key');
        }
        $blob = $this->rsa->blobBytes($stored);
        if ($blob === null) {
            throw new Exception('not_an_rsa_blob', 'Encrypted is neither an RSA blob (raw or base64) nor a vk1. record');
        }
        $plain = $this->rsa->decrypt($blob);
        if ($plain === null) {
            throw new Exception('rsa_decrypt_failed', 'the RSA blob does not open with this key');
        }
        try {
            $opened = Card::fromPacked($plain);
        } catch (Exception $e) {
            throw new Exception('bad_packed_card', 'the RSA blob opens, but not to a VbzCart card (' . $e->getErrorCode() . ')');
        } finally {
            sodium_memzero($plain);
        }
        return $opened;
    }

    private function tally(array $plan, bool $written): void
    {
        if (!$written) {
            $this->counts['changed_meanwhile']++;
            return;
        }
        if (($plan['unreadable'] ?? null) !== null) {
            $this->unreadable[$plan['unreadable']]['cvv_dropped'] = true;
        }
        $this->counts['sealed'] += $plan['from'] === 'cvv-only' ? 0 : 1;
        $this->counts['cards_clear'] += $plan['from'] === 'clear' ? 1 : 0;
        $this->counts['blobs_decrypted'] += $plan['from'] === 'blob' ? 1 : 0;
        $this->counts['cvvs_dropped'] += $plan['cvv'] ? 1 : 0;
    }

    private function fail(mixed $id, string $reason): void
    {
        $this->counts['unreadable']++;
        $this->reasons[$reason] = ($this->reasons[$reason] ?? 0) + 1;
        $this->unreadable[] = ['id' => (string) $id, 'reason' => $reason, 'cvv_dropped' => false];
    }

    /** The declared length of `Encrypted` (characters or bytes), or null if unbounded. */
    private function encryptedWidth(): ?int
    {
        $q = $this->db->prepare('SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS'
            . ' WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?');
        $q->execute([self::TABLE, 'Encrypted']);
        $w = $q->fetchColumn();
        if ($w === false) {
            throw new Exception('no_table', 'no cust_cards.Encrypted column in this database (or this user may not see it)');
        }
        return $w === null ? null : (int) $w;
    }

    /** The key id it seals to, grouped as `vbzkey-admin pubkey` prints the fingerprint. */
    public function keyId(): string
    {
        return implode(' ', str_split(bin2hex($this->keyId), 4));
    }

    /** The summary: counters, failures by reason, and the unreadable rows (ids and reasons). */
    public function summary(): array
    {
        ksort($this->reasons);
        return ['key_id' => $this->keyId(), 'counts' => $this->counts, 'unreadable_by_reason' => $this->reasons, 'unreadable_rows' => $this->unreadable];
    }
}
