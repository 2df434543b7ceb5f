"""
Terminal mode: incoming lines appear above an input line that they never
tear, wherever the cursor is in it.

It follows L{twisted.conch.manhole.Manhole.addOutput} (erase the input line,
write the output, draw the prompt and the typed line again) on the
L{twisted.conch.insults} terminal, but edits text rather than bytes:
L{twisted.conch.recvline.RecvLine} keeps a list of bytes and moves the cursor
one column per byte, which splits UTF-8 characters and misplaces the cursor
after wide (CJK) ones.  Here the line is a list of characters, the bytes of
each keystroke are decoded incrementally, and the whole input line is redrawn
on every change, scrolled sideways so that it always fits on one row: output
then never has to reckon with a wrapped input line.
"""

import codecs
import os
import termios
import tty
import unicodedata

from twisted.conch.insults import insults

from chatd.client import render, session as S


def charWidth(ch: str) -> int:
    """
    The columns C{ch} takes on a terminal: two for wide East Asian
    characters, none for combining marks.
    """
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def textWidth(chars) -> int:
    return sum(charWidth(ch) for ch in chars)


class ChatTerminal(insults.TerminalProtocol):
    """
    The chat on a terminal: the view of a L{S.Session} and its line editor.

    Keys: Left/Right, Home/End (Ctrl-A/Ctrl-E), Backspace, Delete, Ctrl-K and
    Ctrl-U (erase to the end / the start), Ctrl-W (erase a word), Up/Down
    (Ctrl-P/Ctrl-N) for earlier lines, Ctrl-L to redraw, Ctrl-C or Ctrl-D on
    an empty line to quit.

    @ivar session: the L{S.Session} typed lines go to; set before connecting.
    """

    width = 80
    session = None

    def __init__(self, colour, onFinished):
        """
        @param colour: whether to colour the output.
        @param onFinished: called with the session's outcome when it is over.
        """
        self.colour = colour
        self._onFinished = onFinished

    # Framework callbacks

    def connectionMade(self):
        self.buffer = []
        self.cursor = 0
        self._scroll = 0
        self.history = []
        self._historyIndex = 0
        self._draft = []
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        t = self.terminal
        self._keys = {
            t.LEFT_ARROW: self.left,
            b"\x02": self.left,
            t.RIGHT_ARROW: self.right,
            b"\x06": self.right,
            t.HOME: self.home,
            b"\x01": self.home,
            t.END: self.end,
            b"\x05": self.end,
            t.BACKSPACE: self.backspace,
            b"\x08": self.backspace,
            t.DELETE: self.delete,
            b"\x0b": self.eraseToEnd,
            b"\x15": self.eraseToStart,
            b"\x17": self.eraseWord,
            t.UP_ARROW: self.historyBack,
            b"\x10": self.historyBack,
            t.DOWN_ARROW: self.historyForward,
            b"\x0e": self.historyForward,
            b"\r": self.enter,
            b"\n": self.enter,
            b"\x0c": self.redrawScreen,
            b"\x03": self.interrupt,
            b"\x04": self.endOfInput,
        }
        self.drawInputLine()

    def keystrokeReceived(self, keyID, modifier):
        if modifier is not None:
            # Alt-something: nothing is bound to it.
            return
        handler = self._keys.get(keyID)
        if handler is not None:
            self._decoder.reset()
            handler()
        elif isinstance(keyID, bytes) and keyID >= b" ":
            # ServerProtocol hands over one byte at a time: put UTF-8
            # characters back together before inserting them.
            self.insert(self._decoder.decode(keyID))

    def terminalSize(self, width, height):
        self.width = width
        self.drawInputLine()

    def unhandledControlSequence(self, seq):
        pass

    # Output

    def addOutput(self, text: str):
        """
        Show a line above the input line, which is then drawn again as it was.
        """
        self.terminal.write(b"\r")
        self.terminal.eraseToLineEnd()
        # ServerProtocol.write turns LF into CRLF, as raw mode needs.
        self.terminal.write(text.encode("utf-8") + b"\n")
        self.drawInputLine()

    def prompt(self) -> str:
        s = self.session
        if s is None or s.state == S.OFFLINE:
            where = "offline"
        elif s.state == S.LOGIN:
            where = "logging in"
        elif s.current:
            where = f"{s.nick} {s.current}"
        else:
            where = s.nick
        return f"[{where}] "

    def drawInputLine(self):
        """
        Draw the prompt and the part of the typed line around the cursor that
        fits on the row, with the cursor in place.
        """
        prompt = render.safe(self.prompt())
        room = max(self.width - textWidth(prompt) - 1, 8)
        # Keep the cursor in view, and as much of the line as fits.
        self._scroll = min(self._scroll, self.cursor)
        while textWidth(self.buffer[self._scroll:self.cursor]) > room:
            self._scroll += 1
        while self._scroll > 0 and textWidth(self.buffer[self._scroll - 1:]) <= room:
            self._scroll -= 1
        shown, used = [], 0
        for ch in self.buffer[self._scroll:]:
            used += charWidth(ch)
            if used > room:
                break
            shown.append(ch)
        painted = f"\x1b[1m{prompt}\x1b[0m" if self.colour else prompt
        self.terminal.write(("\r" + painted + "".join(shown)).encode("utf-8"))
        self.terminal.eraseToLineEnd()
        after = textWidth(shown[self.cursor - self._scroll:])
        if after:
            self.terminal.cursorBackward(after)

    def close(self):
        """
        Leave the row of the input line empty, for the shell that follows.
        """
        self.terminal.write(b"\r")
        self.terminal.eraseToLineEnd()

    # The session's view

    def show(self, raw, line):
        self.addOutput(render.formatLine(raw, line, self.colour))

    def showOwn(self, line):
        self.addOutput(render.formatOwn(line, self.colour))

    def note(self, text):
        self.addOutput(render.formatNote(text, self.colour))

    def changed(self):
        self.drawInputLine()

    def finished(self, ok):
        self._onFinished(ok)

    # Editing

    def insert(self, text):
        chars = [ch for ch in text if unicodedata.category(ch) != "Cc"]
        if chars:
            self.buffer[self.cursor:self.cursor] = chars
            self.cursor += len(chars)
            self.drawInputLine()

    def left(self):
        self._moveTo(self.cursor - 1)

    def right(self):
        self._moveTo(self.cursor + 1)

    def home(self):
        self._moveTo(0)

    def end(self):
        self._moveTo(len(self.buffer))

    def backspace(self):
        if self.cursor > 0:
            self.cursor -= 1
            del self.buffer[self.cursor]
            self.drawInputLine()

    def delete(self):
        if self.cursor < len(self.buffer):
            del self.buffer[self.cursor]
            self.drawInputLine()

    def eraseToEnd(self):
        del self.buffer[self.cursor:]
        self.drawInputLine()

    def eraseToStart(self):
        del self.buffer[:self.cursor]
        self.cursor = 0
        self.drawInputLine()

    def eraseWord(self):
        start = self.cursor
        while start > 0 and self.buffer[start - 1] == " ":
            start -= 1
        while start > 0 and self.buffer[start - 1] != " ":
            start -= 1
        del self.buffer[start:self.cursor]
        self.cursor = start
        self.drawInputLine()

    def historyBack(self):
        if self._historyIndex == 0:
            return
        if self._historyIndex == len(self.history):
            self._draft = self.buffer
        self._historyIndex -= 1
        self._replaceLine(list(self.history[self._historyIndex]))

    def historyForward(self):
        if self._historyIndex >= len(self.history):
            return
        self._historyIndex += 1
        if self._historyIndex == len(self.history):
            self._replaceLine(self._draft)
        else:
            self._replaceLine(list(self.history[self._historyIndex]))

    def enter(self):
        text = "".join(self.buffer)
        # Not kept for recalling with the arrows: a password, or what was
        # typed while logging in (a nickname, maybe with its password, or
        # the password asked for).
        remembered = (self.session.state == S.ONLINE and not S.carriesPassword(text))
        if text and remembered and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._historyIndex = len(self.history)
        self._draft = []
        self._replaceLine([])
        self.session.send(text)

    def redrawScreen(self):
        self.terminal.eraseDisplay()
        self.terminal.cursorHome()
        self.drawInputLine()

    def interrupt(self):
        self.session.quit()

    def endOfInput(self):
        if self.buffer:
            self.delete()
        else:
            self.session.quit()

    def _moveTo(self, index):
        index = max(0, min(index, len(self.buffer)))
        if index != self.cursor:
            self.cursor = index
            self.drawInputLine()

    def _replaceLine(self, chars):
        self.buffer = chars
        self.cursor = len(chars)
        self._scroll = 0
        self.drawInputLine()


class RawTerminal:
    """
    A terminal in raw mode (every key at once, no echo, Ctrl-C a key) that
    can be put back as it was, any number of times.
    """

    def __init__(self, fd):
        self.fd = fd
        self._saved = None

    def enter(self):
        self._saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd)

    def restore(self):
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def size(self):
        size = os.get_terminal_size(self.fd)
        return size.columns, size.lines
