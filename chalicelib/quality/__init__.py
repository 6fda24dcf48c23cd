"""Quality of referred members: repeat purchases and refunds per cohort, channel and advocate."""
