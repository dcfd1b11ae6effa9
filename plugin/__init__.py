"""unitguard: checks that therapy documentation supports the billed timed units."""

__version__ = "0.1.0"
