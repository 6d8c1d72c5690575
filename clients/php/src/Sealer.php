<?php

declare(strict_types=1);

namespace VbzKey;

/**
 * Seal customer data at checkout with the store's PUBLIC key: checkout works while every key
 * device is unplugged, and the web server never holds anything that opens a record.
 *
 *     $s = \VbzKey\Sealer::sealCustomer(file_get_contents('store-public-key.txt'), $customer);
 *     // $s['clear'] goes into clear columns, $s['sealed'][$field]['record'] into sealed ones
 *
 * Errors are {@see Exception}s with a stable code and a message that never holds the value.
 */
final class Sealer
{
    /** Seal one UTF-8 value to a `vkpub1.` public key under a context; returns the `vk1.` text. */
    public static function seal(string $publicKey, string $context, #[\SensitiveParameter] string $plaintext): string
    {
        return Record::toText(Record::seal(Record::parsePublicKey($publicKey), $context, $plaintext));
    }

    /** The clear-field split alone (no key needed): see {@see CustomerSplit::split()}. */
    public static function split(array $customer): array
    {
        return CustomerSplit::split($customer);
    }

    /**
     * Split and seal a customer: what `vbzkey seal-customer` prints, as an array.
     * ['id', 'key_id' (hex), 'clear' => [...], 'sealed' => [field => ['table', 'context', 'record']]]
     */
    public static function sealCustomer(string $publicKey, array $customer): array
    {
        $pk = Record::parsePublicKey($publicKey);
        $split = CustomerSplit::split($customer);
        $sealed = [];
        foreach ($split['sealed'] as $field => $f) {
            $record = Record::toText(Record::seal($pk, $f['context'], $f['value']));
            sodium_memzero($f['value']);
            $sealed[$field] = ['table' => $f['table'], 'context' => $f['context'], 'record' => $record];
        }
        return ['id' => $customer['id'], 'key_id' => bin2hex(Record::keyId($pk)), 'clear' => $split['clear'], 'sealed' => $sealed];
    }
}
