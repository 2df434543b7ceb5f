"""
The one place where events reach their recipients.

An event is encoded once per wire format, and the same bytes object is handed
to every recipient's outbox: fan-out to a thousand members costs one format and
a thousand appends, never a thousand formats.

A wire format is any object with:

- C{encode(event)}: the bytes every recipient but the actor gets;
- C{encodeOwn(event)}: the bytes that confirm the event to its actor (IRC
  echoes a JOIN, the line protocol says C{=== joined #room}), or L{None} when
  the actor is told nothing (a room message is not echoed);
- C{encodeHistory(event)}: the bytes that show a stored room line later.
"""


class Fanout:
    """
    Delivers events to users' outboxes.
    """

    def toRoom(self, room, event, actor=None):
        """
        Deliver C{event} to every member of C{room}; C{actor}, if a member,
        gets its own confirmation of it instead.
        """
        self.toUsers(room.members.values(), event, actor)

    def toUser(self, user, event):
        """
        Deliver C{event} to C{user} alone.
        """
        user.outbox.send(user.wire.encode(event))

    def toActor(self, user, event):
        """
        Confirm C{event} to C{user}, who did it, if their wire format shows
        such a confirmation.
        """
        data = user.wire.encodeOwn(event)
        if data:
            user.outbox.send(data)

    def toUsers(self, users, event, actor=None):
        """
        Deliver C{event} to each of C{users}, and its confirmation to
        C{actor} if among them.
        """
        encoded = {}
        # Everyone usually shares one wire format: only a change of format
        # needs the look-up.
        lastWire = data = None
        # A snapshot: a delivery may disconnect its recipient, which changes
        # the collection being walked.
        for user in tuple(users):
            if user is actor:
                self.toActor(user, event)
                continue
            wire = user.wire
            if wire is not lastWire:
                data = encoded.get(wire)
                if data is None:
                    data = encoded[wire] = wire.encode(event)
                lastWire = wire
            user.outbox.send(data)

    def userGone(self, user):
        """
        C{user} has left the server (their rooms were told already).  Nothing
        to do for one daemon; a brokered fan-out frees their nickname in the
        cluster.
        """
