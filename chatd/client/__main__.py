"""
C{python -m chatd.client}: the same as C{chat-client}.
"""

from chatd.client.script import main

main()
