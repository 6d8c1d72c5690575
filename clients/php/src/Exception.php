<?php

declare(strict_types=1);

namespace VbzKey;

/**
 * Every error of the sealer: a stable code shared with the Rust implementation (for example
 * `luhn_check_failed`, `cvv_refused`, `bad_public_key`) and a message that names the field,
 * never its value, so it can go into a log.
 */
final class Exception extends \RuntimeException
{
    public function __construct(private readonly string $errorCode, string $message)
    {
        parent::__construct($message);
    }

    /** The stable error code (docs/SPLIT.md, docs/FORMAT.md). */
    public function getErrorCode(): string
    {
        return $this->errorCode;
    }
}
