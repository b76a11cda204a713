"""The one exception type for user mistakes.

Anything a user can get wrong (a path, a residue, a config key, a prompt that is too long, a corrupt file)
raises :class:`UserError` with a one-line message naming the problem. The ``maskzoo`` command prints that line
to stderr and exits with status 2; it never shows a traceback for a ``UserError``. Programming errors stay
ordinary exceptions.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in user input; ``str(err)`` is the one line shown to the user."""

    exit_code: int = 2
