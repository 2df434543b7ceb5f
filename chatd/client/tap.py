"""
The client's options and the service they build: the only module of the
client that knows about endpoints, files and defaults.  C{chat-client},
C{python -m chatd.client} and C{twistd -n chat-client} all come through here.
"""

import getopt
import getpass
import os
import sys

from twisted.internet import endpoints
from twisted.python import usage

from chatd import __version__
from chatd.core.identity import Identity

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 55555


def defaultLogPath(environ=os.environ) -> str:
    """
    Where the client logs: under C{$XDG_STATE_HOME} (C{~/.local/state}).
    """
    state = environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "chatd", "chat-client.log")


def defaultNick() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "guest"


class Options(usage.Options):
    synopsis = "[options] [HOST [PORT]]"
    longdesc = (
        "chat-client, the terminal client of chatd. On a terminal, incoming "
        "lines appear above the line you type, which they never tear. With "
        "stdin not a terminal it is a pipe: it sends each line read, prints "
        "each line received, and at the end of its input waits for the server "
        "to confirm before it exits (status 1 if it could not). It connects "
        f"to HOST (default {DEFAULT_HOST}) on PORT (default {DEFAULT_PORT}), "
        "or to --connect ENDPOINT, and reconnects by itself, claiming its "
        "nickname and rooms again."
    )
    optFlags = [
        ["tls", None, "Connect with TLS, checking the server's certificate "
         "against the system's trusted CAs, or --ca."],
        ["insecure-accept-any-cert", None, "With --tls: accept any "
         "certificate, a self-signed one included, without checking it. "
         "Anyone on the way can then read and change the conversation."],
    ]
    optParameters = [
        ["nick", None, None, "The nickname to claim [default: your login name]."],
        ["connect", None, None, "Connect to this Twisted client endpoint "
         "description instead of HOST PORT, e.g. tcp:host=chat.example:port=55555, "
         "unix:path=/run/chatd.sock, or tls:chat.example:55555."],
        ["ca", None, None, "With --tls: trust the certificates in this PEM "
         "file (e.g. the server's own self-signed one) instead of the system's CAs."],
        ["log", None, None, "Log to this file [default: "
         "$XDG_STATE_HOME/chatd/chat-client.log]."],
        ["password-file", None, None, "Give the server the password of a "
         "registered --nick from this file's first line (or CHATD_PASSWORD), "
         "at every login; never on the command line, which others can read."],
    ]

    def getSynopsis(self):
        synopsis = super().getSynopsis()
        # (Under twistd, its own usage line comes first.)
        return synopsis if self.parent is not None else f"Usage: chat-client {synopsis}"

    def opt_version(self):
        """
        Display the version of chatd and exit.
        """
        print(f"chat-client (chatd) {__version__}")
        sys.exit(0)

    def parseOptions(self, options=None):
        """
        As L{usage.Options.parseOptions}, but options may also follow HOST
        and PORT, as GNU tools take them: they are moved in front first.
        """
        if options is None:
            options = sys.argv[1:]
        try:
            found, arguments = getopt.gnu_getopt(options, self.shortOpt, self.longOpt)
        except getopt.error as e:
            raise usage.UsageError(str(e))
        ordered = []
        for name, value in found:
            takesValue = (f"{name[2:]}=" in self.longOpt if name.startswith("--")
                          else f"{name[1:]}:" in self.shortOpt)
            ordered += [name, value] if takesValue else [name]
        super().parseOptions(ordered + ["--"] + arguments)

    def parseArgs(self, host=None, port=None):
        self["host"] = host
        self["port"] = port

    def postOptions(self):
        if self["connect"] and (self["host"] or self["port"]):
            raise usage.UsageError("give either --connect or HOST [PORT], not both")
        if self["connect"] and self["tls"]:
            raise usage.UsageError("--tls goes with HOST [PORT]; for --connect, "
                                   "use a tls: endpoint description")
        if (self["ca"] or self["insecure-accept-any-cert"]) and not self["tls"]:
            raise usage.UsageError("--ca and --insecure-accept-any-cert need --tls")
        if self["ca"] and self["insecure-accept-any-cert"]:
            raise usage.UsageError("give --ca or --insecure-accept-any-cert, not both")
        self["host"] = self["host"] or DEFAULT_HOST
        try:
            self["port"] = int(self["port"] or DEFAULT_PORT)
        except ValueError:
            raise usage.UsageError(f"PORT must be a number, not {self['port']!r}")
        if not 0 < self["port"] < 65536:
            raise usage.UsageError(f"PORT must be 1-65535, not {self['port']}")
        if self["connect"]:
            try:
                # Parsing needs no reactor: a bad description is a usage error.
                endpoints.clientFromString(None, self["connect"])
            except Exception as e:
                # (Some say nothing: a tls: trustRoots= that is a file, not
                # a folder, is an UnlistableError with no words.)
                raise usage.UsageError(f"--connect {self['connect']}: "
                                       f"{str(e) or type(e).__name__}")
        if self["ca"]:
            try:
                with open(self["ca"]) as f:
                    self["caPEM"] = f.read()
            except OSError as e:
                raise usage.UsageError(f"--ca: {e}")
        self["nick"] = self["nick"] or defaultNick()
        self["password"], source = os.environ.get("CHATD_PASSWORD") or None, "CHATD_PASSWORD"
        if self["password-file"]:
            source = f"--password-file {self['password-file']}"
            try:
                with open(self["password-file"]) as f:
                    self["password"] = f.readline().strip()
            except OSError as e:
                raise usage.UsageError(f"{source}: {e.strerror}") from None
        if self["password"] is not None and (len(self["password"]) < Identity.PASSWORD_MIN
                                             or " " in self["password"]):
            # The server would take it for another nickname: a public one.
            raise usage.UsageError(f"{source}: not a password (at least "
                                   f"{Identity.PASSWORD_MIN} characters, no spaces)")
        self["log"] = self["log"] or defaultLogPath()

    def address(self) -> str:
        """
        How to name the server to the user.
        """
        return self["connect"] or f"{self['host']}:{self['port']}"


def clientEndpoint(config, reactor):
    """
    The endpoint the options describe.
    """
    if config["connect"]:
        return endpoints.clientFromString(reactor, config["connect"])
    tcp = endpoints.HostnameEndpoint(reactor, config["host"], config["port"])
    if not config["tls"]:
        return tcp
    # Imported here: TLS needs pyOpenSSL, and plain TCP should not.
    from twisted.internet import ssl

    if config["insecure-accept-any-cert"]:
        creator = ssl.CertificateOptions(verify=False)
    else:
        trustRoot = ssl.Certificate.loadPEM(config["caPEM"]) if config["ca"] else None
        creator = ssl.optionsForClientTLS(config["host"], trustRoot=trustRoot)
    return endpoints.wrapClientTLS(creator, tcp)


def makeService(config, reactor=None):
    """
    Build the client from parsed L{Options}.

    Before it is started, it already sends stdout and stderr to the log
    file (see L{chatd.client.app.ChatClientService}): under twistd the log's
    first lines are written between building the service and starting it.
    """
    if reactor is None:
        from twisted.internet import reactor
    from chatd.client.app import ChatClientService

    return ChatClientService(config, clientEndpoint(config, reactor), reactor)
