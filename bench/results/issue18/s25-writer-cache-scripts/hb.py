import sys, runpy
import chatd.storage.sqlite as s
s.WRITER_CACHE_KIB = int(sys.argv[1])
sys.argv = ["bench/history_bench.py"] + sys.argv[2:]
runpy.run_path("bench/history_bench.py", run_name="__main__")
