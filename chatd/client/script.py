"""
The C{chat-client} command (also C{python -m chatd.client}).
"""

import sys

from twisted.logger import Logger, globalLogBeginner, textFileLogObserver
from twisted.python import usage

from chatd.client import tap

_log = Logger()


def main(argv=None):
    """
    Run the client until the session ends; exit 0 if it ended well, 1 if not
    (in pipe mode: the server could not confirm every line), 2 on a usage
    error.
    """
    config = tap.Options()
    try:
        config.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        # The usage line, not the whole help: the error stays in sight.
        sys.stderr.write(f"chat-client: {e}\n{config.getSynopsis()}\n"
                         "chat-client --help lists the options\n")
        sys.exit(2)
    from twisted.internet import reactor

    from chatd.client.app import openLog

    try:
        log = openLog(config["log"])
    except OSError as e:
        sys.stderr.write(f"chat-client: cannot log to {config['log']}: {e}\n")
        sys.exit(2)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
    client = tap.makeService(config, reactor)
    failed = False
    try:
        client.startService()
        reactor.addSystemEventTrigger("before", "shutdown", client.stopService)
        reactor.run()
    except Exception:
        # On a terminal in raw mode a traceback would be scribbled across
        # the screen: it goes to the log, and a line to stderr once the
        # terminal is back.
        _log.failure("chat-client failed")
        failed = True
    finally:
        client.stopService()
        client.restoreOutput()
    if failed:
        sys.stderr.write(f"chat-client: failed; see {config['log']}\n")
        sys.exit(1)
    sys.exit(0 if client.ok else 1)
