"""Outbound events: what happens here, told to a brand's systems through signed webhooks."""
