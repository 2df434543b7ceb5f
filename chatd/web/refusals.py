"""
The core's refusals in the web protocol's words: the line protocol's, except
where those tell the user to type one of its commands that a browser has its
own way of doing (the page asks for a registered nickname's password itself,
and a C{nick} message carries it).
"""

from chatd.core import refusals as R
from chatd.line import refusals as line


def _taken(r):
    if r.registered:
        return (f"the nickname {r.nick} is taken; if it is yours, give its password "
                "to take it back")
    return line.describe(r)


_TEXT = {
    R.NicknameTaken: _taken,
    R.PasswordRequired: lambda r: (f"{r.nick} is registered: if it is yours, give its "
                                   "password; otherwise choose another"),
}


def describe(refusal: R.Refusal) -> str:
    """
    The text of the error that tells a browser about C{refusal}.

    @raise KeyError: for a kind neither protocol has words for.
    """
    words = _TEXT.get(type(refusal))
    return words(refusal) if words is not None else line.describe(refusal)
