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
              "chatd.storage", "twisted.plugins"],
    package_dir={"": "."},
    # [tls]: pyOpenSSL and service_identity, for chat-client --tls and the
    # server's ssl: listeners; argon2-cffi hashes the passwords of registered
    # nicknames.
    install_requires=["twisted[tls]>=24.3", "argon2-cffi>=21.2"],
    entry_points={"console_scripts": [
        "chat-client = chatd.client.script:main",
        "chatd-export = chatd.export:main",
    ]},
    extras_require={"test": ["pytest", "pytest-timeout", "hypothesis"]},
)
