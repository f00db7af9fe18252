"""hashbench."""
