"""
Installing chatd as a user would: C{pip install .} and C{pip install -e .} into
fresh virtual environments, then C{twistd --help} must list C{chat}.
"""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_twistdListsChatAfterInstall(tmp_path, editable):
    """
    After a fresh install (plain or editable), run from an unrelated folder,
    C{twistd --help} lists the chat and chat-client commands, the
    chat-client command runs, and the web client's files are there.
    """
    env = tmp_path / "venv"
    # The fresh environment gets no pip of its own (ensurepip takes seconds):
    # this pip installs into it (--python), as its own would.  --no-compile:
    # byte-compiling Twisted at install time took longer than the rest of
    # the install; Python compiles what it imports anyway.
    venv.EnvBuilder(with_pip=False).create(env)
    args = ["-e", str(ROOT)] if editable else [str(ROOT)]
    install = subprocess.run([sys.executable, "-m", "pip", "--python", env / "bin" / "python",
                              "install", "-q", "--no-compile", *args],
                             cwd=tmp_path, capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    result = subprocess.run([env / "bin" / "twistd", "--help"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "    chat " in result.stdout
    assert "    chat-client " in result.stdout
    client = subprocess.run([env / "bin" / "chat-client", "--help"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert client.returncode == 0, client.stderr
    assert "--insecure-accept-any-cert" in client.stdout
    # The web client's page is installed with the package, and the
    # WebSocket's dependency with it.
    page = subprocess.run(
        [env / "bin" / "python", "-c", "import wsproto; from chatd.web.resource import "
         "ASSETS, asset; print(sum(len(asset(n)) > 0 for n, t in ASSETS.values()))"],
        capture_output=True, text=True, cwd=tmp_path)
    assert page.returncode == 0, page.stderr
    assert page.stdout.strip() == "4"
