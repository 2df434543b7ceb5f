"""
Events as bytes that cross the broker: JSON of the event's type name and its
fields, read back through a registry of the event classes.  Nothing but the
registered classes can come out of it (unlike pickle).
"""

import dataclasses
import json

from chatd.core import events

REGISTRY = {
    cls.__name__: cls
    for cls in vars(events).values()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == events.__name__
}


class UnknownEvent(ValueError):
    """
    A daemon sent an event this one does not know (a newer chatd).
    """


def eventToJSON(event):
    """
    A JSON-able dict for C{event}: C{"t"} names its class, the rest are its
    fields.
    """
    cls = type(event)
    if REGISTRY.get(cls.__name__) is not cls:
        raise UnknownEvent(cls.__name__)
    data = {field.name: getattr(event, field.name) for field in dataclasses.fields(cls)}
    data["t"] = cls.__name__
    return data


def eventFromJSON(data):
    """
    The event C{data} (from L{eventToJSON}) describes.

    @raise UnknownEvent: for a type name not in the registry.
    """
    data = dict(data)
    cls = REGISTRY.get(data.pop("t", None))
    if cls is None:
        raise UnknownEvent(repr(data))
    names = {field.name for field in dataclasses.fields(cls)}
    # JSON has no tuples; events hold tuples, never lists.
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in data.items() if k in names})


def dumps(entry):
    """
    An entry (a dict that may hold an event under C{"e"}, or a list of
    them under C{"es"}) as bytes.
    """
    if "e" in entry:
        entry = dict(entry, e=eventToJSON(entry["e"]))
    if "es" in entry:
        entry = dict(entry, es=[eventToJSON(event) for event in entry["es"]])
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(data):
    """
    The entry C{data} (from L{dumps}) holds, its events decoded.
    """
    entry = json.loads(data)
    if "e" in entry:
        entry["e"] = eventFromJSON(entry["e"])
    if "es" in entry:
        entry["es"] = [eventFromJSON(event) for event in entry["es"]]
    return entry
