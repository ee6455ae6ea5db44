"""The package and the `fdb` command give the same answers on the same database and photos."""

import json

import numpy as np
import pytest

import fdbfaces
from conftest import PEOPLE, enroll_gallery, photo, run_fdb, stranger

PROBES = [photo(p, 4) for p in PEOPLE] + [stranger("AJ_Cook"), stranger("Aaron_Eckhart")]


def cli_json(fdb_bin, db, *args):
    out = run_fdb(fdb_bin, db, "--json", *args)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory, fdb_bin):
    path = tmp_path_factory.mktemp("cli") / "db"
    enroll_gallery(path)
    return path


def test_search_matches_the_cli(fdb_bin, db_path):
    rows = cli_json(fdb_bin, db_path, "search", "-k", "3", *PROBES)
    with fdbfaces.FaceDb(db_path) as db:
        answers = [db.search(p, k=3) for p in PROBES]
    assert [r["path"] for r in rows] == [str(p) for p in PROBES]
    identities = []
    for row, answer in zip(rows, answers):
        [cli] = row["faces"]
        assert answer.identity == cli["identity"], row["path"]
        assert [m.person for m in answer.matches] == [m["person"] for m in cli["matches"]]
        assert [m.face for m in answer.matches] == [m["face"] for m in cli["matches"]]
        np.testing.assert_allclose([m.distance for m in answer.matches], [m["distance"] for m in cli["matches"]], atol=1e-5)
        assert answer.threshold == pytest.approx(cli["threshold"], abs=1e-6)
        assert answer.calibration == cli["calibration"]
        np.testing.assert_allclose(answer.bbox, cli["bbox"], atol=1e-3)
        identities.append(answer.identity)
    # The known answers: the three people found, the strangers unknown.
    assert identities == ["Colin Powell", "Serena Williams", "Tony Blair", None, None]


def test_verify_matches_the_cli(fdb_bin, db_path):
    pairs = [(photo("Tony_Blair", 4), photo("Tony_Blair", 1)), (photo("Tony_Blair", 4), photo("Colin_Powell", 4))]
    cli = [cli_json(fdb_bin, db_path, "verify", a, b) for a, b in pairs]
    with fdbfaces.FaceDb(db_path) as db:
        ours = [db.verify(a, b) for a, b in pairs]
    for v, c in zip(ours, cli):
        assert v.same == c["same"]
        assert v.distance == pytest.approx(c["distance"], abs=1e-5)
        assert v.threshold == pytest.approx(c["threshold"], abs=1e-6)
    assert [v.same for v in ours] == [True, False]


def test_embed_matches_the_cli(fdb_bin, db_path):
    probe = photo("Serena_Williams", 4)
    with fdbfaces.FaceDb(db_path) as db:
        [face] = db.embed(probe)
        recipe = db.stats()["recipe"]  # `fdb embed` makes plain vectors unless told the database's recipe
    [cli] = cli_json(fdb_bin, db_path, "embed", "--recipe", recipe, probe)
    np.testing.assert_allclose(face.vector, np.asarray(cli["embedding"], np.float32), atol=1e-5)
