"""Shared fixtures: the repository's photos, a gallery of three people, and the `fdb` binary.

With FDB_REQUIRE_DATA=1 (CI sets it) a missing piece (the binary) fails the test that needs
it, naming what is missing; otherwise the test is skipped and says why.
"""

import os
import pathlib
import subprocess

import pytest

import fdbfaces

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
PEOPLE = ["Colin_Powell", "Serena_Williams", "Tony_Blair"]


def photo(person: str, i: int) -> pathlib.Path:
    """`tests/fixtures/people/<person>/<person>_000<i>.jpg`."""
    return FIXTURES / "people" / person / f"{person}_{i:04d}.jpg"


def stranger(name: str) -> pathlib.Path:
    return FIXTURES / "strangers" / f"{name}_0001.jpg"


def missing(what: str):
    """Fail under FDB_REQUIRE_DATA=1, else skip, naming what is missing."""
    if os.environ.get("FDB_REQUIRE_DATA") == "1":
        pytest.fail(f"missing {what}; FDB_REQUIRE_DATA=1 makes missing data a failure")
    pytest.skip(f"missing {what}")


def enroll_gallery(path) -> None:
    """Photos 1-3 of each person in `tests/fixtures/people`, under their folder's name."""
    with fdbfaces.FaceDb(path) as db:
        for person in PEOPLE:
            outcomes = db.enroll(person.replace("_", " "), [photo(person, i) for i in (1, 2, 3)])
            assert [o.status for o in outcomes] == ["enrolled"] * 3, outcomes


@pytest.fixture(scope="session")
def gallery_path(tmp_path_factory):
    """A closed database holding the gallery (copied by tests that change it)."""
    path = tmp_path_factory.mktemp("gallery") / "db"
    enroll_gallery(path)
    return path


@pytest.fixture(scope="session")
def gallery(gallery_path):
    """The gallery, open for the session's read-only tests."""
    db = fdbfaces.FaceDb(gallery_path)
    yield db
    db.close()


@pytest.fixture(scope="session")
def fdb_bin() -> pathlib.Path:
    """The `fdb` command cargo built: $FDB_BIN, else $CARGO_TARGET_DIR/release/fdb, else target/release/fdb."""
    candidates = [os.environ.get("FDB_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "fdb"))
    candidates.append(str(REPO / "target" / "release" / "fdb"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return pathlib.Path(c)
    missing(f"the fdb binary (looked at {[c for c in candidates if c]}; `cargo build --release` makes it)")


def run_fdb(fdb_bin, db, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(fdb_bin), "--db", str(db), *map(str, args)], capture_output=True, text=True, timeout=300)
