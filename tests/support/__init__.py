"""Test helpers that run real things (a webhook receiver) rather than mocks."""
