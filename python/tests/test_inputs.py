"""Photos reach fdb as paths, bytes or numpy arrays, and each form gives the same faces; bad
input raises the library's kinds of error, naming the photo."""

import pathlib

import numpy as np
import pytest
from PIL import Image

import fdbfaces
from conftest import FIXTURES, photo

# A lossless PNG of a decoded JPEG: its pixels, read here, are exactly what fdb reads.
PNG = FIXTURES / "libjpeg_decoded" / "Abel_Pacheco_0004.png"
PGM = FIXTURES / "gray_aitor_gonzalez_0001.pgm"


def rgb_pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def pgm_pixels(path) -> np.ndarray:
    """A binary 8-bit PGM (P5) read with numpy alone."""
    data = pathlib.Path(path).read_bytes()
    magic, width, height, maxval, rest = data.split(maxsplit=4)
    assert magic == b"P5" and maxval == b"255"
    w, h = int(width), int(height)
    return np.frombuffer(rest[: w * h], dtype=np.uint8).reshape(h, w)


def only_face(db, image, **kw) -> fdbfaces.Face:
    faces = db.embed(image, **kw)
    assert faces, f"no face in {image!r:.80}"
    return faces[0]


def assert_same_face(a: fdbfaces.Face, b: fdbfaces.Face):
    np.testing.assert_allclose(a.vector, b.vector, atol=1e-5, rtol=0)
    np.testing.assert_allclose(a.bbox, b.bbox, atol=1e-3)


@pytest.fixture(scope="module")
def by_path(gallery):
    return only_face(gallery, PNG)


def test_rgb_array_is_the_same_photo_as_its_file(gallery, by_path):
    pixels = rgb_pixels(PNG)
    assert pixels.shape == (250, 250, 3) and pixels.dtype == np.uint8
    face = only_face(gallery, pixels)
    assert_same_face(face, by_path)
    assert face.vector.dtype == np.float32 and face.vector.shape == (512,)
    assert abs(float(np.linalg.norm(face.vector)) - 1.0) < 1e-4
    # The search answers agree as well.
    a, b = gallery.search(pixels), gallery.search(PNG)
    assert a.identity == b.identity
    assert [(m.person, m.face) for m in a.matches] == [(m.person, m.face) for m in b.matches]
    np.testing.assert_allclose([m.distance for m in a.matches], [m.distance for m in b.matches], atol=1e-5)


def test_opencv_bgr_arrays(gallery, by_path):
    bgr = rgb_pixels(PNG)[..., ::-1]  # what cv2.imread gives: a strided view here
    assert not bgr.flags.c_contiguous
    assert_same_face(only_face(gallery, bgr, bgr=True), by_path)
    assert_same_face(only_face(gallery, np.ascontiguousarray(bgr), bgr=True), by_path)
    assert_same_face(only_face(gallery, bgr[..., ::-1]), by_path)  # the README's other way
    # Without bgr=True the channels are swapped: another photo, another vector.
    swapped = only_face(gallery, bgr)
    assert not np.allclose(swapped.vector, by_path.vector, atol=1e-3)


def test_arrays_with_strides_padding_and_alpha(gallery, by_path):
    pixels = rgb_pixels(PNG)
    padded = np.zeros((250, 257, 3), np.uint8)
    padded[:, :250] = pixels
    assert_same_face(only_face(gallery, padded[:, :250]), by_path)
    fortran = np.asfortranarray(pixels)
    assert_same_face(only_face(gallery, fortran), by_path)
    rgba = np.dstack([pixels, np.full((250, 250), 255, np.uint8)])
    assert_same_face(only_face(gallery, rgba), by_path)
    bgra = np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    assert_same_face(only_face(gallery, bgra, bgr=True), by_path)


def test_gray_arrays(gallery):
    gray = pgm_pixels(PGM)
    by_path = only_face(gallery, PGM)
    assert_same_face(only_face(gallery, gray), by_path)
    assert_same_face(only_face(gallery, gray[:, :, None]), by_path)


def test_bytes_and_path_types(gallery, by_path):
    data = PNG.read_bytes()
    assert_same_face(only_face(gallery, data), by_path)
    assert_same_face(only_face(gallery, bytearray(data)), by_path)
    assert_same_face(only_face(gallery, str(PNG)), by_path)


def test_an_array_is_copied_before_the_gil_is_released(gallery, by_path):
    # The call reads its own copy: an array changed afterwards does not change the answer.
    pixels = rgb_pixels(PNG).copy()
    face = only_face(gallery, pixels)
    pixels[:] = 0
    assert_same_face(face, by_path)


def test_damaged_and_missing_photos_raise_image_errors(gallery, tmp_path):
    jpeg = photo("Tony_Blair", 4).read_bytes()
    with pytest.raises(fdbfaces.CorruptImageError, match="not an image"):
        gallery.search(b"just some text")
    with pytest.raises(fdbfaces.CorruptImageError, match="empty"):
        gallery.search(b"")
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(jpeg[:300])  # the header, cut before the first scan
    with pytest.raises(fdbfaces.CorruptImageError, match="damaged.jpg"):
        gallery.search(damaged)
    with pytest.raises(fdbfaces.CorruptImageError):
        gallery.search(jpeg[:300])
    missing = tmp_path / "nobody.jpg"
    with pytest.raises(fdbfaces.ImageReadError, match="nobody.jpg"):
        gallery.search(missing)
    with pytest.raises(fdbfaces.ImageTooLargeError, match="100000x100000"):
        gallery.embed(FIXTURES / "bomb_100000x100000.png")
    # All of them are fdb's image errors.
    with pytest.raises(fdbfaces.ImageError):
        gallery.verify(missing, photo("Tony_Blair", 4))


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((40, 40, 2), np.uint8), r"shape .* got \(40, 40, 2\)"),
        (np.zeros((40, 40, 3, 1), np.uint8), r"got \(40, 40, 3, 1\)"),
        (np.zeros(1600, np.uint8), r"got \(1600\)"),
        (np.zeros((40, 40, 3), np.float32), "dtype uint8, got float32"),
        (np.zeros((40, 40, 3), np.uint16), "dtype uint8, got uint16"),
        (np.zeros((0, 40, 3), np.uint8), "no pixels"),
    ],
)
def test_wrong_arrays_raise_bad_frame(gallery, array, message):
    with pytest.raises(fdbfaces.BadFrameError, match=message):
        gallery.search(array)
    assert issubclass(fdbfaces.BadFrameError, fdbfaces.ImageError)


def test_what_is_no_image_is_a_type_error(gallery):
    for wrong in (3, None, 2.5, {"path": "x.jpg"}):
        with pytest.raises(TypeError, match="an image is a path"):
            gallery.search(wrong)


def test_a_photo_without_a_face(gallery):
    shapes = FIXTURES / "no_face_shapes.png"
    with pytest.raises(fdbfaces.NoFaceError, match="no_face_shapes.png: no face found"):
        gallery.search(shapes)
    assert gallery.embed(shapes) == []


def test_exception_hierarchy():
    for name in [
        "ImageError", "ImageReadError", "CorruptImageError", "ImageTooLargeError", "BadFrameError",
        "NoFaceError", "NotFoundError", "UnknownPersonError", "LockedError", "DatabaseError",
        "ModelError", "InvalidArgumentError",
    ]:
        assert issubclass(getattr(fdbfaces, name), fdbfaces.FdbError), name
    assert issubclass(fdbfaces.FdbError, Exception)
    assert issubclass(fdbfaces.UnknownPersonError, fdbfaces.NotFoundError)
