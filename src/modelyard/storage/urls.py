"""Credentials in store URLs, masked before they are shown: re-exported from the leaf
:mod:`modelyard.redaction`, where the domain records may use them too."""

from __future__ import annotations

from modelyard.redaction import (
    MASK,
    is_secret_parameter,
    mask_url,
    mask_webhook_url,
    redact,
    secrets_in,
)

__all__ = ["MASK", "is_secret_parameter", "mask_url", "mask_webhook_url", "redact", "secrets_in"]
