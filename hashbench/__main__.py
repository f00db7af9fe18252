"""``python -m hashbench``: the same command as ``hashbench``."""

import sys

from hashbench.cli import main

sys.argv[0] = "hashbench"  # the name the messages show
main()
