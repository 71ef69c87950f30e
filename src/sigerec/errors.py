"""The one error type users see.

Everything that validates user input (files, configs, command-line values) raises
``SigerecError`` with a message that names the file/line/field and says how to fix it.
The CLI turns it into a one-paragraph message and exit code 2, never a traceback.
"""


class SigerecError(Exception):
    """A problem with the user's input, described well enough to fix without reading code."""
