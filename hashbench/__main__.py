"""``python -m hashbench``."""

from hashbench.cli import main

main()
