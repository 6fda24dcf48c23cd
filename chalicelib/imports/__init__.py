"""Bulk import for a brand moving from another system (API.md "Data rights, bulk import"):
members with their referrer, codes, purchase history — per-row errors, idempotent per row key,
history silent (no rewards) unless the call asks for them. See docs/imports.md."""
