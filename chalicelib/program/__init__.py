"""The program: member-wide rules (tiers, stages, own-purchase points, contact policy), versioned."""
