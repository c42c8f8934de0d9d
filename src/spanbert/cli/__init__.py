"""The ``spanbert`` command line."""

from spanbert.cli.app import app, main

__all__ = ["app", "main"]
