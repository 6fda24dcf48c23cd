"""What a shared link shows: share texts per channel, previews, the landing page, posters."""
