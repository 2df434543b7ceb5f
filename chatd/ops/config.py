"""
C{--config FILE}: options from a TOML file whose keys are the long option
names (C{flood-rate = 10}, C{listen = ["tcp:55555", "ssl:6697:..."]}).  The
command line wins: an option given there replaces the file's, a list of
C{--listen} or C{--operator} included.
"""

import tomllib

from twisted.python import usage


def _wanted(argv, known):
    """
    The long option names C{argv} gives, and the C{--config} file it names
    (the last one), or L{None}.
    """
    given, config = set(), None
    words = iter(argv)
    for word in words:
        if word == "--":
            break
        if not word.startswith("--"):
            continue
        name, hasValue, value = word[2:].partition("=")
        if name not in known:
            # getopt takes any unambiguous abbreviation.
            matches = [k for k in known if k.startswith(name)]
            if len(matches) != 1:
                continue
            name = matches[0]
        if known[name] and not hasValue:
            value = next(words, None)
        given.add(name)
        if name == "config":
            config = value
    return given, config


def withConfigFile(argv, options):
    """
    C{argv} with the options of the C{--config} file it names, if any, in
    front of it.

    @param options: the L{usage.Options} that will parse the result (for
        its option names).
    @raise usage.UsageError: for a file that cannot be read, is not TOML, or
        names an unknown option or a value of the wrong kind.
    """
    # Option names, and whether each takes a value.
    known = {name.rstrip("="): name.endswith("=") for name in options.longOpt}
    given, path = _wanted(argv, known)
    if path is None:
        return list(argv)
    try:
        with open(path, "rb") as f:
            settings = tomllib.load(f)
    except OSError as e:
        raise usage.UsageError(f"--config {path}: cannot read it: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise usage.UsageError(f"--config {path}: not valid TOML: {e}") from None
    front = []
    for name, value in settings.items():
        if name not in known or name in ("config", "help", "version"):
            raise usage.UsageError(f"--config {path}: {name!r} is not an option of chatd")
        if name in given:
            continue
        values = value if isinstance(value, list) else [value]
        repeatable = name in options.repeatable
        if isinstance(value, list) and not repeatable:
            raise usage.UsageError(f"--config {path}: {name} takes one value, not a list")
        for one in values:
            if not known[name]:
                # A flag: true gives it, false leaves it out.
                if not isinstance(one, bool):
                    raise usage.UsageError(f"--config {path}: {name} is true or false")
                if one:
                    front.append(f"--{name}")
                continue
            if isinstance(one, bool) or not isinstance(one, (str, int, float)):
                raise usage.UsageError(
                    f"--config {path}: {name} = {one!r}: expected a string or a number")
            front.append(f"--{name}={one}")
    return front + list(argv)
