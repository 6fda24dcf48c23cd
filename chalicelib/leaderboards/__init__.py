"""Leaderboards per campaign and period: referrals, referred GMV and points, kept from the stream."""
