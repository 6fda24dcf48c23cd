"""Share material a member sends to friends: link posters (docs/posters.md)."""
