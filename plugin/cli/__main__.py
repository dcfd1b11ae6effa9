"""``python -m plugin.cli``: the same command line as ``unitguard``."""

from plugin.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
