"""fdb's embedded face-match database: enrol, search, verify and embed faces.

>>> import fdbfaces
>>> with fdbfaces.FaceDb("faces.db") as db:
...     db.enroll("alice", ["alice_1.jpg", "alice_2.jpg"])
...     print(db.search("probe.jpg").identity)

The classes and exceptions are documented in their docstrings and in the type stubs.
"""

import atexit
import os
import tempfile
import threading

from ._fdbfaces import *  # noqa: F401,F403
from ._fdbfaces import FaceDb, __version__  # noqa: F401

_scratch = None
_scratch_lock = threading.Lock()


def embed(image, *, bgr=False):
    """Every face in ``image`` with its box, landmarks, quality, crop and float32 vector, the
    primary face first, as a new database embeds faces (the default model and recipe): the
    vectors compare with those of any database that has not switched either.

    It needs no database of yours: a private one is made in a temporary directory on first use
    and removed at exit. ``FaceDb.embed`` embeds as that database does.
    """
    global _scratch
    with _scratch_lock:
        if _scratch is None:
            folder = tempfile.TemporaryDirectory(prefix="fdbfaces-")
            db = FaceDb(os.path.join(folder.name, "db"))

            def remove():
                db.close()
                folder.cleanup()

            atexit.register(remove)  # after TemporaryDirectory's own hook, so it runs first
            _scratch = db
    return _scratch.embed(image, bgr=bgr)
