"""pocketfit personalize."""
