"""pocketfit export."""
