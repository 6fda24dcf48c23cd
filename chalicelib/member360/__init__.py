"""Member 360: one member's whole story for ops (GET /v1/ops/members/{member_id})."""
