"""pocketfit devices."""
