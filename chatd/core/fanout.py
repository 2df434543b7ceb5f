"""
The one place where events reach their recipients.

An event is encoded once per wire format, and the same bytes object is handed
to every recipient's outbox: fan-out to a thousand members costs one format and
a thousand appends, never a thousand formats.
"""


class Fanout:
    """
    Delivers events to users' outboxes.
    """

    def toRoom(self, room, event, exclude=None):
        """
        Deliver C{event} to every member of C{room} except C{exclude}, the
        actor, who gets their wire format's own copy, if it has one.
        """
        self.toUsers(room.members.values(), event, exclude)
        # (Until the seam lands on main: the web client shows a user's own
        # lines when they come back.)
        encodeOwn = getattr(exclude.wire, "encodeOwn", None) if exclude is not None else None
        if encodeOwn is not None:
            data = encodeOwn(event)
            if data is not None:
                exclude.outbox.send(data)

    def toUser(self, user, event):
        """
        Deliver C{event} to C{user} alone.
        """
        user.outbox.send(user.wire.encode(event))

    def toUsers(self, users, event, exclude=None):
        """
        Deliver C{event} to each of C{users} except C{exclude}.
        """
        encoded = {}
        # Everyone usually shares one wire format: only a change of format
        # needs the look-up.
        lastWire = data = None
        # A snapshot: a delivery may disconnect its recipient, which changes
        # the collection being walked.
        for user in tuple(users):
            if user is exclude:
                continue
            wire = user.wire
            if wire is not lastWire:
                data = encoded.get(wire)
                if data is None:
                    data = encoded[wire] = wire.encode(event)
                lastWire = wire
            user.outbox.send(data)
