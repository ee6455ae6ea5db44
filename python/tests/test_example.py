"""examples/find_who.py answers as the README says."""

import pathlib
import subprocess
import sys

from conftest import PEOPLE, photo, stranger

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "find_who.py"


def test_find_who_names_a_known_face_and_not_a_stranger(tmp_path):
    known = tmp_path / "known"
    for person in PEOPLE:
        (known / person).mkdir(parents=True)
        for i in (1, 2, 3):  # photo 4 of each person stays out, to be found
            (known / person / f"{i}.jpg").symlink_to(photo(person, i))

    def find_who(image) -> list:
        out = subprocess.run([sys.executable, str(EXAMPLE), str(known), str(image)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    [line] = find_who(photo("Serena_Williams", 4))
    assert line.startswith("Serena_Williams at ("), line
    [line] = find_who(stranger("AJ_Cook"))
    assert line.startswith("unknown at ("), line
