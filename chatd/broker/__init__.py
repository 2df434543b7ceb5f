"""
Several daemons as one chat, through Redis (C{twistd chat --broker
redis://HOST:PORT[/DB]}).

The broker sits behind the fan-out; the core does not know it is there.

- L{chatd.broker.codec}: events as JSON, by type name and fields, from a
  registry of the event classes (never pickle).
- L{chatd.broker.fanout}: L{BrokeredFanout}, the fan-out every daemon of a
  cluster uses: it publishes what the core emits to one Redis Stream, delivers
  to its local users what it reads back from that stream (its own events too,
  so that every member sees one order), mirrors the other daemons' users and
  rooms into the local core, and claims nicknames in Redis.
- L{chatd.broker.link}: the Redis operations, and L{RedisLink}, which runs them
  on two connections of the reactor's own, so that the reactor never waits.
- L{chatd.broker.resp}: one connection to Redis on the reactor, pipelined,
  its replies read by hiredis's C parser.
"""
