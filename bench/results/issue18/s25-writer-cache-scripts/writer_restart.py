"""The history writer alone, in process, filling a new file: what SQLite holds and what glibc's heap grows by."""
import ctypes, os, sys, tempfile, threading, time, sqlite3, json
sys.path.insert(0, os.getcwd())
from chatd.storage import schema, sqlite as store

lib = ctypes.CDLL("libsqlite3.so.0")
libc = ctypes.CDLL("libc.so.6")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena","ordblks","smblks","hblks","hblkhd","usmblks","fsmblks","uordblks","fordblks","keepcost")]
libc.mallinfo2.restype = MallInfo2
lib.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_int]
lib.sqlite3_status64.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64), ctypes.c_int]

def sqliteMem():
    cur, hi = ctypes.c_int64(), ctypes.c_int64()
    lib.sqlite3_status64(0, ctypes.byref(cur), ctypes.byref(hi), 0)
    return cur.value
def dbStatus(conn, op):
    db = ctypes.c_void_p.from_address(id(conn) + 16).value  # pysqlite_Connection.db
    cur, hi = ctypes.c_int(), ctypes.c_int()
    lib.sqlite3_db_status(db, op, ctypes.byref(cur), ctypes.byref(hi), 0)
    return cur.value
CACHE_USED, SCHEMA_USED, STMT_USED = 1, 2, 3
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
def snap(conn):
    m = libc.mallinfo2()
    return dict(rss=rss(), heapInUse=m.uordblks, heap=m.arena, sqlite=sqliteMem(),
                cache=dbStatus(conn, CACHE_USED), stmts=dbStatus(conn, STMT_USED), schema=dbStatus(conn, SCHEMA_USED))

kib = int(sys.argv[1]); lines = int(sys.argv[2]) if len(sys.argv) > 2 else 60000
mode = sys.argv[3] if len(sys.argv) > 3 else "new"
batch = 100
folder = tempfile.mkdtemp(dir="/tmp/sd")
path = os.path.join(folder, "history.sqlite")
out = {}
base = {}
def writer():
    h = store.SQLiteHistory(path, reactor=None)
    conn = schema.connect(path)
    conn.execute(f"PRAGMA cache_size = -{kib}")
    if mode != "new":  # a restarted daemon: the file already holds `lines` lines, all indexed
        text0 = "an older line, number %d, said before the daemon restarted"
        for start in range(0, lines, 1000):
            rows = [(i, time.time(), "#bench", "#bench", "message", "x", text0 % i) for i in range(start + 1, start + 1001)]
            h._store(conn, rows); h._committed(rows)
        while h._indexed < h._stored: h._index(conn, None)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        conn = schema.connect(path)
        conn.execute(f"PRAGMA cache_size = -{kib}")
        # what SQLiteHistory.open reads
        conn.execute("SELECT coalesce((SELECT max(id) FROM messages), 0), (SELECT value FROM counters WHERE name = 'indexed'), (SELECT value FROM counters WHERE name = 'last_id')").fetchone()
        list(conn.execute(store._ROOM_KEYS))
        if mode == "warm":  # the newest lines, as a replay or the appends would read them
            conn.execute("SELECT count(text) FROM (SELECT text FROM messages WHERE room_key = '#bench' ORDER BY id DESC LIMIT 5000)").fetchone()
            conn.execute("SELECT count(*) FROM messages_search WHERE messages_search MATCH 'number'").fetchone()
    out["opened"] = snap(conn)
    base.update(dict(rss=out["opened"]["rss"], heapInUse=out["opened"]["heapInUse"], sqlite=out["opened"]["sqlite"]))
    nid = h._stored; lines2 = nid + 60000
    text = "the quick brown fox jumps over the lazy dog, message number %d of the slow reader's load"
    t0 = time.perf_counter()
    marks = {}
    while nid < lines2:
        rows = []
        for _ in range(batch):
            nid += 1
            rows.append((nid, time.time(), "#bench", "#bench", "message", "sender%d" % (nid % 2), text % nid))
        h._store(conn, rows); h._committed(rows)
        h._afterCommit(conn)
        if nid % 2000 == 0:  # the writer idle now and then: it indexes a chunk
            h._index(conn, store.INDEX_CHUNK)
        if nid - lines2 + 60000 in (1000, 5000, 20000):
            marks[nid - lines2 + 60000] = snap(conn)
    out["stored_s"] = time.perf_counter() - t0
    out["marks"] = marks
    out["stored"] = snap(conn)
    while h._indexed < h._stored:
        h._index(conn, store.INDEX_CHUNK)
    out["indexed"] = snap(conn)
    out["total_s"] = time.perf_counter() - t0
    out["walBytes"] = os.path.getsize(path + "-wal")
    out["dbBytes"] = os.path.getsize(path)
    conn.close()
t = threading.Thread(target=writer); t.start(); t.join()
after = dict(rss=rss(), heapInUse=libc.mallinfo2().uordblks, sqlite=sqliteMem())
def kb(x): return round(x / 1024)
print(f"[{mode}, growth from the writer opened] cache {kib} KiB, {lines} lines: store {out['stored_s']:.2f} s, +index {out['total_s']:.2f} s; db {kb(out['dbBytes'])} KB, wal {kb(out['walBytes'])} KB")
for name in ("opened",) + tuple(out["marks"]) + ("stored", "indexed"):
    s = out[name] if isinstance(name, str) else out["marks"][name]
    print(f"  {str(name):>8}: RSS +{kb(s['rss']-base['rss'])} KB, heap in use +{kb(s['heapInUse']-base['heapInUse'])} KB, "
          f"sqlite malloc +{kb(s['sqlite']-base['sqlite'])} KB (cache {kb(s['cache'])}, stmts {kb(s['stmts'])}, schema {kb(s['schema'])})")
print(f"  closed  : RSS +{kb(after['rss']-base['rss'])} KB, heap in use +{kb(after['heapInUse']-base['heapInUse'])} KB, sqlite malloc +{kb(after['sqlite']-base['sqlite'])} KB")
import shutil; shutil.rmtree(folder)
