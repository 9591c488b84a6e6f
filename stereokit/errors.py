"""The one exception type users catch."""


class StereoKitError(ValueError):
    """Bad input or an unreadable file; the message names the problem."""
