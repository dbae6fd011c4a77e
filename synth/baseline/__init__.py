"""The yardstick: a tuned standard optimizer, scored as candidates are, and the search against it."""
