"""
The IRC front end: a sibling of the line protocol (L{chatd.line}) over the same
core and fan-out, for irssi, WeeChat, HexChat and every other IRC client.
"""
