"""Runs moto_server with two fixes for testing at volume (semantics otherwise unchanged).

1. A faster clock. moto's SQS recomputes queue attributes (scanning every message and reading
   the clock twice per message through a datetime-based `unix_time`) on each send and receive,
   which makes it quadratic in queue depth: a 1,000-message queue took ~0.7 s per
   ReceiveMessage. `time.time()` returns the same value (seconds since the epoch) ~10x faster.
2. One lock around the SQS backend's message operations. moto's SQS is not thread-safe: a
   ReceiveMessage scanning a snapshot of the queue while a DeleteMessage (another server thread)
   rebuilds it can return a message that was just deleted (seen as a FIFO duplicate with
   receive count 2). The lock is released while a long poll waits for messages.
"""

import sys
import threading
import time

import moto.core.utils as utils

_unix_time = utils.unix_time


def unix_time(dt=None):
    return time.time() if dt is None else _unix_time(dt)


def unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _unix_time(dt) * 1000.0


utils.unix_time = unix_time
utils.unix_time_millis = unix_time_millis

from moto.sqs import models  # noqa: E402  (after the clock patch, so models bind it)

LOCK = threading.RLock()


def _locked(fn):
    def wrapper(*args, **kwargs):
        with LOCK:
            return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    return wrapper


for _name in [
    "create_queue",
    "delete_queue",
    "send_message",
    "send_message_batch",
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
]:
    _fn = getattr(models.SQSBackend, _name, None)
    if _fn is None:  # a moto release renamed it: run unpatched rather than not at all
        print(f"moto_server.py: SQSBackend.{_name} not found, not locked", file=sys.stderr)
        continue
    setattr(models.SQSBackend, _name, _locked(_fn))

_wait = models.Queue.wait_for_messages


def _wait_unlocked(self, timeout):
    # receive_message holds LOCK while it polls: let others in while it waits
    depth = 0
    while True:
        try:
            LOCK.release()
        except RuntimeError:
            break
        depth += 1
    try:
        _wait(self, timeout)
    finally:
        for _ in range(depth):
            LOCK.acquire()


models.Queue.wait_for_messages = _wait_unlocked

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
