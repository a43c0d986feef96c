"""Masking engine: PII recognizers and validators, masking operators, role/region masking profiles."""
