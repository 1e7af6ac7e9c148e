"""The one base of the errors a user can act on.

`UserError` marks a problem with what the user gave or the state they are in (an option, an input
file, a lake, a skill folder, a server's answer to a setting): the command line prints its message
and exits with status 1, without a traceback. Anything else is a bug and keeps its traceback.
Each stage's error class derives from it (and from the built-in class it always was, so code that
catches `ValueError` or `RuntimeError` still does).
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; its message says what and where."""
