"""CSV exports for ops (API.md "Insight (additions)"): the leaderboard, the funnel by day and
channel, and ledger entries — UTF-8 with BOM, paged so no response nears Lambda's 6 MB."""
