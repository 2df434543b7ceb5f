# Run chatd with its defaults: twistd -n --pidfile= -y chatd.tac
import os
import sys

# From a checkout that is not installed, find the chatd package beside this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.application import service  # noqa: E402

from chatd import tap  # noqa: E402

config = tap.Options()
config.parseOptions([])
application = service.Application("chatd")
tap.makeService(config).setServiceParent(application)
