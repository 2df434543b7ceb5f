"""
The web front end: the browser client's page (C{static/}), the HTTP site that
serves it (L{chatd.web.resource}), the WebSocket speaking JSON
(L{chatd.web.protocol}) and its wire format (L{chatd.web.wire}).
"""
