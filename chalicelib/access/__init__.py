"""Access: revoking staff and service tokens."""
