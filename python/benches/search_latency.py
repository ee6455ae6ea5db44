"""Search latency from Python against the library's, on one database and photo, in one run.

    python python/benches/search_latency.py FDB_BINARY [ROUNDS]

The library's figure is the `fdb` command's: `fdb search` given the probe N+1 times, less the
same command given it once (which leaves out the process start and the model load), over N.
The Python figures are `FaceDb.search` on the path and on a decoded RGB array, after a warm-up.
Each figure is the best of ROUNDS rounds (default 3) of N = 40 searches.
"""

import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

import fdbfaces

REPO = pathlib.Path(__file__).resolve().parents[2]
PEOPLE = REPO / "tests" / "fixtures" / "people"
PNG = REPO / "tests" / "fixtures" / "libjpeg_decoded" / "Abel_Pacheco_0004.png"
N = 40


def cli_seconds(fdb, db, probes) -> float:
    t = time.perf_counter()
    subprocess.run([fdb, "--db", db, "--json", "search", *probes], check=False, capture_output=True)
    return time.perf_counter() - t


def python_seconds(db, image) -> float:
    t = time.perf_counter()
    for _ in range(N):
        db.search(image)
    return (time.perf_counter() - t) / N


def main():
    fdb, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    db_path = str(pathlib.Path(tempfile.mkdtemp()) / "db")
    with fdbfaces.FaceDb(db_path) as db:
        for person in sorted(PEOPLE.iterdir()):
            db.enroll(person.name, sorted(person.glob("*.jpg")))
    from PIL import Image  # only to hand the same photo over as an array

    probe, pixels = str(PNG), np.asarray(Image.open(PNG).convert("RGB"))
    library, by_path, by_array = [], [], []
    for _ in range(rounds):
        one, many = cli_seconds(fdb, db_path, [probe]), cli_seconds(fdb, db_path, [probe] * (N + 1))
        library.append((many - one) / N)
        with fdbfaces.FaceDb(db_path) as db:
            db.search(probe)  # the networks loaded
            by_path.append(python_seconds(db, probe))
            by_array.append(python_seconds(db, pixels))
    ms = lambda xs: f"{min(xs) * 1000:.1f} ms"
    print(f"library (fdb search, per photo): {ms(library)}")
    print(f"Python FaceDb.search(path):      {ms(by_path)}")
    print(f"Python FaceDb.search(array):     {ms(by_array)}")


if __name__ == "__main__":
    main()
