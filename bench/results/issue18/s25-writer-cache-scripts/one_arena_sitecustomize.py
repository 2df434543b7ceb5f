# Experiment: one glibc malloc arena for every thread (as MALLOC_ARENA_MAX=1), set before any thread starts.
import ctypes
M_ARENA_MAX = -8
ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1)
