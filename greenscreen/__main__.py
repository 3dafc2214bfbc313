"""``python -m greenscreen`` runs the command line."""

from greenscreen.cli import main

if __name__ == "__main__":  # pack workers are spawned processes that import this module
    main()
