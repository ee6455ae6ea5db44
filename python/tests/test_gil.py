"""Detection, embedding and search run with the GIL released: Python threads run meanwhile,
and two threads searching at once finish sooner than one after the other."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import photo

PROBE = photo("Tony_Blair", 4)


def python_work(seconds: float) -> int:
    """Pure-Python steps done in `seconds` of wall time."""
    steps, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        steps += 1
    return steps


def test_python_threads_run_during_a_search(gallery):
    gallery.search(PROBE)  # the networks loaded before the clock starts
    alone = python_work(1.0)
    stop = threading.Event()
    searches = []

    def search_loop():
        while not stop.is_set():
            searches.append(gallery.search(PROBE).identity)

    worker = threading.Thread(target=search_loop)
    worker.start()
    try:
        beside = python_work(1.0)
    finally:
        stop.set()
        worker.join()
    assert len(searches) >= 2 and set(searches) == {"Tony Blair"}
    # Holding the GIL through a search would leave this thread only the moments between two
    # searches (a few percent of its steps); with it released, it shares the CPUs fairly.
    assert beside > 0.2 * alone, f"{beside} Python steps beside searches, {alone} alone"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="two threads need two cores to finish sooner than one")
def test_two_threads_search_faster_than_one_after_the_other(tmp_path):
    # One network thread per search (RAYON_NUM_THREADS=1), so that two searches at once have
    # the second core to themselves; in its own process, as rayon's pool is sized once. Each
    # round first measures whether a second core is free now: sha256 releases the GIL, so two
    # threads hashing finish in about half the sequential time on an idle 2-core machine. A
    # round counts when hashing shows a free second core both before and after its searches.
    script = textwrap.dedent(f"""
        import hashlib, json, threading, time, fdbfaces
        db = fdbfaces.FaceDb({str(tmp_path / "db")!r})
        db.enroll("Tony Blair", [{str(photo("Tony_Blair", 1))!r}])
        probe = {str(PROBE)!r}
        blob = bytes(64 << 20)

        def searches():
            for _ in range(6):
                db.search(probe)

        def hashes():
            for _ in range(4):
                hashlib.sha256(blob).digest()

        def ratio(work):
            t = time.perf_counter(); work(); work(); sequential = time.perf_counter() - t
            threads = [threading.Thread(target=work) for _ in range(2)]
            t = time.perf_counter()
            for th in threads: th.start()
            for th in threads: th.join()
            return (time.perf_counter() - t) / sequential

        searches()
        rounds = []
        for _ in range(5):
            # The machine's share of a second core, just before and just after the searches.
            before, searching, after = ratio(hashes), ratio(searches), ratio(hashes)
            rounds.append((max(before, after), searching))
            if rounds[-1][0] < 0.7 and searching < 0.85:
                break
        print(json.dumps(rounds))
    """)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    rounds = json.loads(out.stdout)
    free = [search for machine, search in rounds if machine < 0.7]
    if not free:
        pytest.skip(f"no second core free now (other processes hold them); (hashing, searching) parallel/sequential ratios: {rounds}")
    assert min(free) < 0.85, f"two threads searching took {min(free):.2f} of the sequential time (rounds: {rounds})"
