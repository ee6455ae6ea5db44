"""The database from Python: enrol, search, verify, embed, people and faces, close and locks."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fdbfaces
from conftest import FIXTURES, photo, stranger


@pytest.fixture()
def db(tmp_path):
    with fdbfaces.FaceDb(tmp_path / "db") as db:
        yield db


def test_search_and_verify_on_the_gallery(gallery):
    probe = gallery.search(photo("Tony_Blair", 4), k=3)
    assert probe.identity == "Tony Blair"
    assert [m.person for m in probe.matches][0] == "Tony Blair"
    assert len(probe.matches) == 3
    distances = [m.distance for m in probe.matches]
    assert distances == sorted(distances)
    assert probe.matches[0].distance < probe.threshold < probe.matches[1].distance
    for m in probe.matches:
        assert abs(m.similarity - (1 - m.distance / 2)) < 1e-6
    assert probe.calibration in ("gallery", "evaluation", "lfw")
    assert gallery.search(photo("Serena_Williams", 4), k=1).identity == "Serena Williams"
    assert gallery.search(stranger("AJ_Cook")).identity is None

    same = gallery.verify(photo("Colin_Powell", 4), photo("Colin_Powell", 1))
    assert same.same and same.distance < same.threshold
    other = gallery.verify(photo("Colin_Powell", 4), photo("Serena_Williams", 4))
    assert not other.same and other.distance > other.threshold
    assert gallery.verify(photo("Colin_Powell", 4), photo("Colin_Powell", 1), threshold=0.01).same is False
    with pytest.raises(fdbfaces.InvalidArgumentError):
        gallery.verify(photo("Colin_Powell", 4), photo("Colin_Powell", 1), threshold=-1.0)


def test_group_photo_answers_per_face(gallery):
    group = FIXTURES / "group_simon_cowell_0001.jpg"
    faces = gallery.embed(group)
    answers = gallery.identify_all(group)
    assert len(faces) >= 2 and len(answers) == len(faces)
    assert faces[0].primary and not any(f.primary for f in faces[1:])
    for f in faces:
        assert len(f.landmarks) == 5 and 0.0 <= f.quality <= 1.0
        assert f.crop.shape == (160, 160, 3) and f.crop.dtype == np.uint8


def test_enrol_outcomes(db, tmp_path):
    good = [photo("Tony_Blair", 1), photo("Tony_Blair", 2)]
    first = db.enroll("Tony Blair", good)
    assert [o.status for o in first] == ["enrolled", "enrolled"]
    assert all(o.ok and o.face is not None and o.reason is None for o in first)
    again = db.enroll("Tony Blair", good[0])  # a single photo is a list of one
    assert [(o.status, o.face) for o in again] == [("duplicate", first[0].face)]
    missing = tmp_path / "gone.jpg"
    mixed = db.enroll("Tony Blair", [missing, FIXTURES / "no_face_shapes.png", photo("Tony_Blair", 3).read_bytes()])
    assert [o.status for o in mixed] == ["failed", "no_face", "enrolled"]
    assert "gone.jpg" in mixed[0].reason and not mixed[0].ok
    assert "no face" in mixed[1].reason
    assert mixed[2].path.startswith("<encoded image")
    with pytest.raises(fdbfaces.InvalidArgumentError):
        db.enroll("", good)


def test_people_and_faces(db):
    alice = db.enroll("alice", [photo("Serena_Williams", 1), photo("Serena_Williams", 2)])
    db.enroll("bob", [photo("Colin_Powell", 1)])
    assert [p.name for p in db.people()] == ["alice", "bob"]
    faces = db.faces("alice")
    assert [f.id for f in faces] == [o.face for o in alice]
    record = db.face(alice[0].face)
    assert record.source_name == str(photo("Serena_Williams", 1))
    assert record.person_id == db.people()[0].id
    assert db.face(10_000) is None

    crop = db.face_crop(alice[0].face)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    # The stored vector is the one embedding gives for the photo.
    stored = db.face_vector(alice[0].face)
    np.testing.assert_allclose(stored, db.embed(photo("Serena_Williams", 1))[0].vector, atol=1e-5)
    with pytest.raises(fdbfaces.NotFoundError):
        db.face_crop(10_000)

    db.rename("alice", "Serena")
    assert [p.name for p in db.people()] == ["Serena", "bob"]
    with pytest.raises(fdbfaces.UnknownPersonError, match="alice"):
        db.faces("alice")
    db.remove_face(alice[1].face)
    assert [f.id for f in db.faces("Serena")] == [alice[0].face]
    assert db.remove_person("bob") == 1
    assert [p.name for p in db.people()] == ["Serena"]
    with pytest.raises(fdbfaces.UnknownPersonError):
        db.remove_person("bob")
    stats = db.stats()
    assert stats["people"] == 1 and stats["faces"] == 1


def test_embeddings_are_stored_and_searched_like_photos(db):
    db.enroll("tony", [photo("Tony_Blair", 1)])
    face = db.embed(photo("Colin_Powell", 1))[0]
    added = db.add_face("colin", face)
    assert added.status == "enrolled" and added.person == "colin"
    assert db.add_face("colin", face).status == "duplicate"
    # A photo enrolled by embedding is the same face as the photo enrolled by path.
    assert db.enroll("colin", photo("Colin_Powell", 1))[0].status == "duplicate"
    probe = db.embed(photo("Colin_Powell", 2))[0]
    by_face = db.search_face(probe)
    by_photo = db.search(photo("Colin_Powell", 2))
    assert by_face.identity == by_photo.identity
    assert abs(by_face.matches[0].distance - by_photo.matches[0].distance) < 1e-5
    by_vector = db.search_vector(probe.vector)
    assert by_vector.matches[0].person == by_photo.matches[0].person
    assert by_vector.source == "embedding"


def test_close_and_context_manager(tmp_path):
    path = tmp_path / "db"
    with fdbfaces.FaceDb(path) as db:
        assert not db.closed
        db.enroll("tony", [photo("Tony_Blair", 1)])
    assert db.closed
    with pytest.raises(fdbfaces.DatabaseError, match="closed"):
        db.search(photo("Tony_Blair", 2))
    db.close()  # twice is fine
    # Closed means the lock is given back: it opens again at once, with the face kept.
    with fdbfaces.FaceDb(path, lock_wait=0) as again:
        assert [p.name for p in again.people()] == ["tony"]
    with pytest.raises(fdbfaces.DatabaseError, match="no fdb database"):
        fdbfaces.FaceDb(tmp_path / "absent", create=False)


def test_another_process_gets_locked_error(tmp_path):
    path = tmp_path / "db"
    with fdbfaces.FaceDb(path):
        code = textwrap.dedent(f"""
            import fdbfaces
            try:
                fdbfaces.FaceDb({str(path)!r}, lock_wait=0.2)
            except fdbfaces.LockedError as e:
                print("LockedError", e)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("LockedError"), out
    assert "in use by another process" in out.stdout


def test_module_embed_needs_no_database(gallery):
    [face] = fdbfaces.embed(photo("Tony_Blair", 4))
    # The gallery keeps the default model and recipe, so its vectors are the same.
    [same] = gallery.embed(photo("Tony_Blair", 4))
    np.testing.assert_allclose(face.vector, same.vector, atol=1e-5)
    assert face.vectors_id == same.vectors_id
    assert fdbfaces.embed(FIXTURES / "no_face_shapes.png") == []


def test_close_waits_for_searches_running_in_other_threads(tmp_path):
    import threading
    import time

    path = tmp_path / "db"
    db = fdbfaces.FaceDb(path)
    db.enroll("tony", [photo("Tony_Blair", 1)])
    answers, errors = [], []

    def search_until_closed():
        while True:
            try:
                answers.append(db.search(photo("Tony_Blair", 4)).identity)
            except fdbfaces.DatabaseError as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=search_until_closed) for _ in range(2)]
    for t in threads:
        t.start()
    while len(answers) < 2:
        time.sleep(0.01)
    db.close()
    for t in threads:
        t.join(timeout=60)
    assert set(answers) == {"tony"}
    assert len(errors) == 2 and all("closed" in e for e in errors)
    # close() returned once the searches in flight let go: the lock is free at once.
    with fdbfaces.FaceDb(path, lock_wait=0) as again:
        assert [p.name for p in again.people()] == ["tony"]
