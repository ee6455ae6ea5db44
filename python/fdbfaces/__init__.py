"""fdb's embedded face-match database: enrol, search, verify and embed faces.

>>> import fdbfaces
>>> with fdbfaces.FaceDb("faces.db") as db:
...     db.enroll("alice", ["alice_1.jpg", "alice_2.jpg"])
...     print(db.search("probe.jpg").identity)
"""

from ._fdbfaces import *  # noqa: F401,F403
from ._fdbfaces import __version__  # noqa: F401
