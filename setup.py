from setuptools import setup

setup(
    name="chatd",
    version="0.1.0",
    description="A real-time, multi-user chat daemon on Twisted",
    python_requires=">=3.11",
    # The flat layout with a top-level twisted/plugins folder: list the
    # packages by hand (find_packages cannot see twisted.plugins), and map the
    # root explicitly so that an editable install puts this folder on sys.path.
    packages=["chatd", "chatd.core", "chatd.edge", "chatd.line", "chatd.irc", "chatd.client",
              "chatd.storage", "chatd.web", "chatd.broker", "chatd.ops", "twisted.plugins"],
    # The web client's page and assets, served from inside the package.
    package_data={"chatd.web": ["static/*"]},
    package_dir={"": "."},
    # [tls]: pyOpenSSL and service_identity, for chat-client --tls and the
    # server's ssl: listeners; [websocket]: wsproto, for twisted.web.websocket
    # (Twisted 25.5 and later), which the web client talks through;
    # argon2-cffi hashes the passwords of registered nicknames;
    # prometheus_client, the Prometheus project's own maintained library,
    # writes --metrics in the exposition formats Prometheus reads.
    install_requires=["twisted[tls,websocket]>=25.5", "argon2-cffi>=21.2",
                      "prometheus_client>=0.17"],
    entry_points={"console_scripts": [
        "chat-client = chatd.client.script:main",
        "chatd-export = chatd.export:main",
    ]},
    # [broker]: hiredis, the C reply parser (and command packer) that the
    # Redis project maintains, for --broker (several daemons sharing rooms):
    # chatd speaks to Redis on the reactor (chatd/broker/resp.py), so it needs
    # no client with threads of its own (redis-py) nor one with a parser in
    # Python; [postgres]: psycopg 3, PostgreSQL's maintained Python driver,
    # for --db postgresql://, with its binary wheel, which brings its own
    # libpq (no compiler, no libpq-dev); 3.2 for Connection.notifies(timeout=...).
    # The tests need both, so that the README's test command covers them, and
    # selenium, which drives the system's Chromium in the web client's tests.
    extras_require={"broker": ["hiredis>=3"],
                    "postgres": ["psycopg[binary]>=3.2"],
                    "test": ["pytest", "pytest-timeout", "hypothesis", "selenium",
                             "hiredis>=3", "psycopg[binary]>=3.2"]},
)
