"""The unitguard web app: review at sign-off, coder queue, Task store API, CDS Hooks."""

from plugin.web.app import create_app

__all__ = ["create_app"]
