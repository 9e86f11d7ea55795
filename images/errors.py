"""The one exception the image builder raises for problems a user can fix."""

from __future__ import annotations


class ImageError(Exception):
    """A missing package, a corrupt input, a failed kernel build, an image over budget.

    The message is one or two lines: what went wrong, where, and what to do next. The
    command line turns it into a usage error (exit status 2).
    """
