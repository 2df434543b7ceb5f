import json, os, sys
sys.path.insert(0, os.environ["SRC"]); sys.path.insert(0, "/work/wt-corelogin/bench")
from twisted.logger import globalLogBeginner, textFileLogObserver
globalLogBeginner.beginLoggingTo([textFileLogObserver(open(os.devnull, "w"))], redirectStandardIO=False)
try:
    from chatd.ops.logtext import leanTwistdLog; leanTwistdLog()
except ImportError: pass
import loginprobe
# Everything imported and warmed by a first small storm, then measured.
loginprobe.probe(int(sys.argv[1]))
