"""
L{chatd.core.turns.Turns}: password checks take turns among address groups
and, within a group, among nicknames.
"""

from twisted.internet.defer import Deferred, succeed

from chatd.core.turns import Turns


def test_turnsGoRoundGroupsThenNicknames():
    """
    At most RUNNING jobs run at once; the next turn goes to the group (and
    within it the nickname) that waited longest since its last turn, so a
    group with many jobs waiting lets each other group's through after one
    of its own.
    """
    turns = Turns()
    turns.RUNNING = 1
    started, answers = [], {}

    def job(name):
        def run():
            started.append(name)
            answers[name] = Deferred()
            return answers[name]
        return run

    done = [turns.take("flood", "mallory", job(f"m{i}")) for i in range(4)]
    done.append(turns.take("flood", "olga", job("olga")))
    done.append(turns.take("192.0.2.9", "bob", job("bob")))
    for name in ["m0", "m1", "bob", "olga", "m2", "m3"]:
        assert started[-1] == name
        answers[name].callback(name)
    assert [d.result for d in done] == ["m0", "m1", "m2", "m3", "olga", "bob"]


def test_jobsAnsweredAtOnceDoNotRecurse():
    """
    Thousands of jobs that answer at once (their users gone) are handed on
    in a loop, not a recursion as deep as the queue.
    """
    turns = Turns()
    blocker = Deferred()
    turns.RUNNING = 1
    first = turns.take("a", "a", lambda: blocker)
    rest = [turns.take("a", "a", lambda: succeed(None)) for i in range(5000)]
    blocker.callback(None)
    assert first.called and all(d.called for d in rest)
