"""Who is in this photo? face_recognition's "recognize faces in pictures", with fdb.

    python find_who.py KNOWN_FOLDER PHOTO      # KNOWN_FOLDER/<name>/*.jpg: photos of each person
"""
import pathlib, sys, tempfile

import fdbfaces

known, photo = pathlib.Path(sys.argv[1]), sys.argv[2]
with fdbfaces.FaceDb(pathlib.Path(tempfile.mkdtemp()) / "faces.db") as db:
    for person in sorted(p for p in known.iterdir() if p.is_dir()):
        db.enroll(person.name, sorted(person.glob("*.jpg")))
    for face in db.identify_all(photo):
        x1, y1, x2, y2 = (round(v) for v in face.bbox)
        print(f"{face.identity or 'unknown'} at ({x1}, {y1})-({x2}, {y2})")
