"""
The README stays true to the code: its commands are CI's, and it documents
every command and option.
"""

import re
from pathlib import Path

from chatd.line.commands import COMMANDS
from chatd.tap import Options

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_setupCommandsOpenTheReadme():
    """
    The README's first code block holds exactly the two set-up commands, the
    first running the daemon and the second the tests.
    """
    block = re.search(r"```sh\n(.*?)```", README, re.S).group(1).splitlines()
    assert len(block) == 2
    assert block[0].endswith("twistd -n chat")
    assert block[1].endswith("python -m pytest")


def test_ciRunsTheReadmeTestCommand():
    """
    .ci/run runs the README's test command word for word.
    """
    testCommand = re.search(r"```sh\n.*?\n(.*?)\n```", README, re.S).group(1)
    assert testCommand in (ROOT / ".ci" / "run").read_text().splitlines()


def test_everyCommandDocumented():
    """
    Each command in the table has a row in the README.
    """
    for name, cmd in COMMANDS.items():
        assert f"| `/{name}" in README, name


def test_everyOptionDocumented():
    """
    Each option of C{twistd chat} appears in the README's option table.
    """
    options = [o[0] for o in Options.optParameters] + ["listen"]
    table = README[README.index("| option | default | meaning |"):]
    for option in options:
        assert f"| `--{option}" in table, option


def test_firstSessionIsAsShown():
    """
    The README's first session (greeting, prompt, the nickname typed and the
    replies to it) is what a new connection gets, word for word, with bob
    already in the lobby and saying hi.
    """
    from support import MemoryServer

    block = re.search(r"The server greets you.*?```\n(.*?)```", README, re.S).group(1)
    shown = block.splitlines()
    typed = [line for line in shown if not re.match(r"(-!-|\?\?\?|===|#lobby) ", line)]
    assert typed == ["alice"]
    server = MemoryServer()
    bob = server.connect("bob")
    alice = server.connect()
    greeting = alice.lines()
    alice.send("alice")
    bob.send("hi alice!")
    assert greeting + ["alice"] + alice.lines() == shown
