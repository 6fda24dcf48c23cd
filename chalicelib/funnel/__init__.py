"""Campaign funnel and K-factor: clicks → sign-ups → first purchases → GMV, reward cost, invites
and advocates per day and channel, kept from the streams (docs/funnel.md)."""
