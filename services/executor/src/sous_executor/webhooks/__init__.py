"""Inbound webhooks on Standard Webhooks: signed, fresh, never replayed, rate limited per webhook."""
