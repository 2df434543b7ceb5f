"""
A thread that owns one SQLite connection and answers the reactor's jobs.

SQLite connections belong to the thread that uses them, and the reactor
thread must never wait for the disk: each store hands jobs to such a thread and
gets a L{Deferred} back, fired on the reactor thread.
"""

from twisted.python.failure import Failure

STOP = object()
"""Put on a job queue to end its thread, after the jobs before it."""


def answerJobs(jobs, connection, reactor, closed):
    """
    Run on a thread of its own: take C{(job, done)} pairs from the queue
    C{jobs} until L{STOP}, call C{job(connection)} and fire the L{Deferred}
    C{done} with its result or failure on the reactor thread; then close the
    connection and fire C{closed}.
    """
    while True:
        item = jobs.get()
        if item is STOP:
            break
        job, done = item
        try:
            result = job(connection)
        except Exception:
            reactor.callFromThread(done.errback, Failure())
        else:
            reactor.callFromThread(done.callback, result)
    connection.close()
    reactor.callFromThread(closed.callback, None)
