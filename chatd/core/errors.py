"""
The refusal every layer shares.
"""


class ChatError(Exception):
    """
    A request the core refuses; the message is meant for the user who made it.
    """
