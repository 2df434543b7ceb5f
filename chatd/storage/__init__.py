"""
Storage behind interfaces, so that the core never knows which database keeps
its data nor waits for one.

- L{chatd.storage.threaded}: what every history store shares: the writer's
  thread, its bound and back-pressure, the readers' threads and limits.
- L{chatd.storage.schema}: the SQLite schema, its versions and migrations.
- L{chatd.storage.sqlite}: L{IHistoryStore} on an SQLite file, written by one
  dedicated thread.
- L{chatd.storage.accounts}: L{IAccountStore} in the same file, with its own
  thread, which also does the (deliberately slow) password hashing.
- L{chatd.storage.pgschema}, L{chatd.storage.postgres}: both stores on a
  PostgreSQL database that several daemons may share.
- L{chatd.storage.worker}: the loop by which a store's thread answers jobs.
"""

from zope.interface import Attribute, Interface


class HistoryError(Exception):
    """
    The history store cannot be used; the message says why, for an operator.
    """


class HistoryRefused(Exception):
    """
    A read the history store refuses or gives up on, with a message meant
    for the user who asked (the front end shows it as a refusal; nothing is
    wrong with the store).  One of its subclasses:
    """


class HistoryBusy(HistoryRefused):
    """
    Too many reads of this kind are waiting already; the request was not
    queued.  Asking again a moment later may succeed.
    """


class SearchTooComplex(HistoryRefused):
    """
    The search words hold more tokens (words and the parts of words between
    punctuation, as the full-text index splits them) than a search may have.
    """


class QueryTooSlow(HistoryRefused):
    """
    The read ran longer than the store's deadline and was stopped.
    """


class HistoryUnavailable(HistoryRefused):
    """
    The database that keeps history cannot be reached for now (a shared
    database server restarting, say).
    """


class IHistoryStore(Interface):
    """
    Where room lines (L{chatd.events.Said}, L{chatd.events.Acted} and
    L{chatd.events.TopicChanged}) are kept.

    Every method is called on the reactor thread and returns at once: work
    that touches the database happens elsewhere and its result arrives through
    a L{Deferred}, on the reactor thread.  Reads see exactly the lines
    appended before they were asked for: a user who talks and then asks for
    history finds their own line, and one who joins a room gets each line
    once, either in the replay or live.
    """

    shared = Attribute(
        "Whether other daemons store their lines here too (PostgreSQL), so "
        "that a read finds lines said on any of them once their daemon has "
        "stored them; L{False} for a store of this daemon's lines alone.")

    def nextId():
        """
        A new message id, greater than every id handed out before, in this
        run or any earlier one, without waiting for the database.

        @rtype: L{int}
        """

    def observed(id):
        """
        Another daemon sharing the store made the id C{id}, for a line this
        daemon has just delivered: L{nextId} makes greater ones from now on
        (a Lamport clock), so that a reply sorts after what it answers,
        however close in time.  A store no other daemon shares ignores it.
        """

    def append(event):
        """
        Queue C{event}, which carries its id from L{nextId}, for storage.
        Never refused: when too much is waiting to be stored, the store asks
        its registered producer to pause (see L{registerProducer}).
        """

    def registerProducer(producer, streaming):
        """
        Tell C{producer} (an L{twisted.internet.interfaces.IPushProducer},
        the one thing that feeds the store: whatever reads every
        connection's input) when the store falls behind.  When the lines
        appended but not yet committed exceed the store's bound (in lines or
        in bytes of text), it calls C{producer.pauseProducing()} once; when
        the writer has caught up to half the bound, it calls
        C{producer.resumeProducing()} once, on the reactor thread.  Lines
        appended while paused are still taken (nothing is ever dropped), and
        a C{pauseProducing} comes at once if the store is behind already.
        The calls alternate and never nest: should the lines the producer
        hands over while it resumes put the store over its bound again, the
        C{pauseProducing} comes once C{resumeProducing} has returned.

        @param streaming: must be L{True} (only push producers).
        """

    def unregisterProducer():
        """
        Stop telling the producer anything; if it was paused it stays so.
        """

    def mayHold(room):
        """
        Whether the room called C{room} may have lines stored: L{False} when
        it certainly has none (L{recent} would answer nothing), so that a
        join's replay of it need not be asked for.
        """

    def recent(room, count):
        """
        The last C{count} lines of the room called C{room}, oldest first, as
        of this call: nothing appended after it, even if the store gets to it
        before answering.  (A user who joins sees each line once: in the
        replay, or live.)

        A join's replay or a user's request for more (C{/history}): either
        is answered ahead of every search (its own queue and thread), so
        that searches, however many and slow, never hold them up.

        @return: a L{Deferred} firing with a L{list} of events, or failing
            with L{HistoryBusy} when too many reads of that kind wait
            already, or L{QueryTooSlow}.
        """

    def page(room, count, before=None, after=None, oldest=False):
        """
        At most C{count} lines of the room called C{room} strictly between
        C{after} and C{before}, as of this call, oldest first: the newest
        such lines, or the oldest with C{oldest}.  Each bound is L{None}
        (none), C{("id", ID)} or C{("time", SECONDS)} (POSIX).  Answered
        ahead of searches, as L{recent} is.

        @return: a L{Deferred} firing with a L{list} of events, or failing
            with L{HistoryBusy} or L{QueryTooSlow}.
        """

    def lastTopic(room):
        """
        The topic in force in the room called C{room} when its last topic
        line was stored, as of this call: a tuple C{(topic, nick, time)}
        (the setter's nickname and POSIX time), or L{None} when no topic
        line is stored or the last one cleared the topic.  Answered ahead of
        searches, as a replay is.

        @return: a L{Deferred} firing with that tuple or L{None}.
        """

    def search(rooms, words, limit):
        """
        The newest lines, at most C{limit}, in any of the rooms called
        C{rooms}, that contain every one of C{words}; newest first.

        @return: a L{Deferred} firing with a L{list} of events, or failing
            with L{SearchTooComplex}, L{HistoryBusy} or L{QueryTooSlow}.
        """

    def prune(before):
        """
        Forget every line older than C{before} (POSIX seconds).

        @return: a L{Deferred} firing with how many lines were forgotten.
        """

    def flush():
        """
        @return: a L{Deferred} firing once every line appended before the
            call is safely stored.
        """

    def close():
        """
        Store everything appended so far, then let go of the database.

        @return: a L{Deferred} firing when that is done.
        """


class AccountError(Exception):
    """
    An account request the store refuses (the nickname is already registered,
    say); the message is meant for the user.
    """


class AccountsBusy(AccountError):
    """
    Too many password checks are waiting already; the request was not
    queued.  Asking again a moment later may succeed.
    """


class IAccountStore(Interface):
    """
    Registered nicknames with their password hashes, the bans in force, and
    the rooms kept for their registered owners.

    Called on the reactor thread.  Whether a nickname is registered, and the
    bans, are known at once (kept in memory); anything that hashes a password
    or writes happens elsewhere, its result arriving through a L{Deferred} on
    the reactor thread.  L{register}, L{verify} and L{changePassword} fail
    with L{AccountsBusy} when too many of them wait already.  Passwords are
    never stored, logged or kept: only their salted hashes.
    """

    def isRegistered(nick):
        """
        @rtype: L{bool}
        """

    def register(nick, password):
        """
        Register C{nick} with C{password}.

        @return: a L{Deferred} firing with L{None}, or failing with
            L{AccountError} when C{nick} is already registered.
        """

    def verify(nick, password):
        """
        @return: a L{Deferred} firing with whether C{password} is C{nick}'s
            (L{False} for a nickname that is not registered).
        """

    def changePassword(nick, password):
        """
        @return: a L{Deferred} firing when C{nick}'s password is C{password}.
        """

    def bans():
        """
        Every ban stored, as L{chatd.bans.Ban}s, read when the store
        opened.
        """

    def addBan(ban):
        """
        Store C{ban}, replacing any ban with the same target and place;
        a room ban only when the room is not stored kept for an owner other
        than C{ban.by}.

        @return: a L{Deferred} firing once stored.
        """

    def removeBan(ban):
        """
        @return: a L{Deferred} firing once C{ban} is forgotten.
        """

    def watch(watcher):
        """
        Tell C{watcher}, on the reactor thread, of the bans other daemons
        sharing the database add and remove while this one runs:
        C{watcher.storedBanAdded(ban)}, C{watcher.storedBanRemoved(ban)}
        (for the bans this daemon changes too, once stored).  A store no
        other daemon shares never calls them.
        """

    def rooms():
        """
        Every kept room stored, as (name, owner's nickname key, topic, first
        history id or L{None}) tuples, read when the store opened.
        """

    def keepRoom(name, owner, topic, firstId):
        """
        Store the kept room C{name} (owned by the nickname key C{owner}), or
        its new C{topic} when it is stored already with that owner.  A room
        stored with another owner (kept first through another daemon
        sharing the database) is left as it is: the first to keep a room
        owns it.

        @return: a L{Deferred} firing once stored with the room as stored
            now, a (name, owner's nickname key, topic, first history id)
            tuple: another owner's when C{owner} lost it.
        """

    def watchRooms(watcher):
        """
        Tell C{watcher}, on the reactor thread, of the rooms other daemons
        sharing the database keep while this one runs (and of those this
        one keeps, once stored), and of their new topics:
        C{watcher.storedRoomKept(name, owner, topic, firstId)}, once or more
        for each change, and for every kept room after the store
        reconnects.  A store no other daemon shares never calls it.
        """

    def close():
        """
        Finish every pending write, then let go of the database.

        @return: a L{Deferred} firing when that is done.
        """
