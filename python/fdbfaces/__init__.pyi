"""fdb's embedded face-match database: enrol, search, verify and embed faces.

Every ``image`` argument (``Image`` below) is one of:

- a path: ``str`` or ``os.PathLike`` (JPEG, PNG, PNM, BMP, GIF or WebP; EXIF orientation applied);
- encoded bytes of such a file: ``bytes`` or ``bytearray``;
- a numpy ``uint8`` array: ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA, or ``(H, W)`` / ``(H, W, 1)``
  grey. Any strides (slices, ``img[..., ::-1]``) are accepted; the pixels are copied.

OpenCV users: ``cv2.imread`` and video frames are BGR. Pass ``bgr=True`` (or ``img[..., ::-1]``).

Distances are squared L2 between unit vectors (0..4); similarity is ``1 - distance / 2``.
"""

import os
import pathlib
from types import TracebackType
from typing import Any, Iterable, Literal, Optional, Union

import numpy as np
import numpy.typing as npt

__version__: str

Image = Union[str, os.PathLike[str], bytes, bytearray, npt.NDArray[np.uint8]]
"""A photo: a path, encoded bytes, or a uint8 array (RGB, RGBA or grey; ``bgr=True`` for BGR)."""

BBox = tuple[float, float, float, float]
"""(x1, y1, x2, y2) in the photo's pixels."""

Landmarks = list[tuple[float, float]]
"""Five (x, y) points: left eye, right eye, nose, left and right mouth corners."""

class FdbError(Exception):
    """Every error fdb raises. The message is the library's: it names the file and the reason."""

class ImageError(FdbError):
    """A photo cannot be used."""

class ImageReadError(ImageError):
    """A photo's file is missing or cannot be read."""

class CorruptImageError(ImageError):
    """A photo's bytes are empty, no image format, damaged, truncated, or an unsupported variant."""

class ImageTooLargeError(ImageError):
    """A photo exceeds the decode limits (checked before decoding)."""

class BadFrameError(ImageError):
    """An array whose shape or dtype fdb cannot read as a photo, or a frame with no pixels."""

class NoFaceError(FdbError):
    """A readable photo with no usable face."""

class NotFoundError(FdbError):
    """No person or face by that name or id."""

class UnknownPersonError(NotFoundError):
    """No person by that name."""

class LockedError(FdbError):
    """Another process holds the database, still after the lock wait."""

class DatabaseError(FdbError):
    """The database failed, is closed, is not a database, is newer than this fdb, or needs ``fdb repair``."""

class ModelError(FdbError):
    """The networks' weights are missing, or a network or device failed."""

class InvalidArgumentError(FdbError):
    """An argument out of its range (the message says which)."""

class Match:
    """One person in a search answer: the best of their faces."""

    person: str
    """The person's name."""
    face: int
    """Their face nearest the probe (an id for ``FaceDb.face``)."""
    distance: float
    """Squared L2 between unit embeddings, 0..4."""
    similarity: float
    """Cosine similarity, 1 - distance / 2."""
    quality: Optional[float]
    """The matched face's quality; None for a face stored without one."""

class SearchResult:
    """The answer to "who is this?" for one face of a photo."""

    identity: Optional[str]
    """The person the face is taken to be, or None for unknown."""
    matches: list[Match]
    """The best match per person, nearest first."""
    bbox: BBox
    """The probe face in the photo."""
    source: str
    """How the face was found: "detected", "detected_after_contrast", "detected_after_padding",
    "detected_after_contrast_and_padding", "whole_image", or "embedding" (``search_vector``)."""
    quality: float
    """The probe face's quality, in [0, 1] (NaN for ``search_vector``)."""
    low_quality: bool
    """The quality is below the floor, so the answer is unknown whatever the distances."""
    threshold: float
    """The 1:N threshold this answer used (squared L2)."""
    calibration: Literal["gallery", "evaluation", "lfw"]
    """Whose impostor distances the threshold was read from."""
    expected_far: float
    """The chance, by that calibration, that a stranger is accepted at this threshold."""

class Verification:
    """The answer to "are these the same person?"."""

    same: bool
    """True when the distance is under the threshold and neither face is below the quality floor."""
    distance: float
    """Squared L2 between the two unit embeddings, 0..4."""
    similarity: float
    """Cosine similarity, 1 - distance / 2."""
    threshold: float
    """The 1:1 threshold compared with."""
    low_quality: bool
    """A face is below the quality floor: the answer is unknown, never ``same``."""
    qualities: tuple[float, float]
    """Each face's quality."""
    sources: tuple[str, str]
    """How each face was found."""
    calibration: Literal["gallery", "evaluation", "lfw"]
    """Whose impostor distances say what the threshold lets through."""
    expected_far: float
    """The chance, by that calibration, that two different people pass this threshold."""

class Face:
    """One face of a photo, found, aligned and embedded as the database embeds faces."""

    @property
    def bbox(self) -> BBox: ...
    @property
    def landmarks(self) -> Landmarks: ...
    @property
    def quality(self) -> float:
        """The face's quality score, in [0, 1]."""
    @property
    def detector_score(self) -> float:
        """The detector's probability for the face."""
    @property
    def source(self) -> str:
        """How the face was found: "detected", ..., or "whole_image"."""
    @property
    def primary(self) -> bool:
        """The face that enrolment and search take from the photo (the largest, most central)."""
    @property
    def vector(self) -> npt.NDArray[np.float32]:
        """The unit embedding, shape (512,) (a new array at each access)."""
    @property
    def crop(self) -> npt.NDArray[np.uint8]:
        """The aligned crop the vector was computed from, (160, 160, 3) RGB."""
    @property
    def vectors_id(self) -> str:
        """The embedder and recipe that made the vector; only the same database's vectors compare."""

class EnrollOutcome:
    """What happened to one photo of an enrolment."""

    path: str
    """The photo: its file, or a description of a photo given from memory."""
    person: str
    """The person it was enrolled as."""
    status: Literal["enrolled", "duplicate", "no_face", "failed"]
    """"duplicate": the same photo (bytes, or pixels for an array) is stored already."""
    face: Optional[int]
    """The stored face's id (enrolled or duplicate)."""
    quality: Optional[float]
    """The face's quality (enrolled)."""
    source: Optional[str]
    """How the face was found (enrolled)."""
    reason: Optional[str]
    """Why not (no_face or failed), naming the photo."""
    @property
    def ok(self) -> bool:
        """True when the photo's face is in the database (enrolled now or before)."""

class Person:
    """An enrolled person."""

    id: int
    name: str
    created_ms: int
    """Milliseconds since the Unix epoch."""

class FaceRecord:
    """A stored face's record."""

    id: int
    person_id: int
    source_name: str
    """Where the face came from, as given at enrolment."""
    bbox: BBox
    landmarks: Landmarks
    detector_score: float
    quality: Optional[float]
    """The quality score given at enrolment; None for a face stored without one."""
    created_ms: int

def embed(image: Image, *, bgr: bool = False) -> list[Face]:
    """Every face in ``image`` (box, landmarks, quality, crop, float32 vector), the primary
    first, as a new database embeds faces (the default model and recipe).

    Needs no database of yours: a private one is made in a temporary directory on first use
    and removed at exit. ``FaceDb.embed`` embeds as that database does.
    """

class FaceDb:
    """A face database: one directory, shared by the threads of this process.

    Calls that detect, embed or search release the GIL, so threads run them at once.
    Another process opening the database meanwhile waits ``lock_wait`` seconds and then gets
    ``LockedError``. Use it in a ``with`` block, or call ``close()``.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike[str], None] = None,
        *,
        create: bool = True,
        lock_wait: float = 3.0,
        device: Optional[str] = None,
        models_dir: Union[str, os.PathLike[str], None] = None,
        install_models: bool = True,
    ) -> None:
        """Opens (or, with ``create``, creates) the database at ``path``.

        ``path`` None: ``$FDB_DB``, else ``~/.local/share/fdb/db``. ``device``: "cpu", "cuda"
        or "cuda:N" (default: cuda when available). ``models_dir``: where the weights are
        (default ``$FDB_MODELS_DIR``, else ``~/.cache/fdb/models``); with ``install_models``
        they are installed on first use.
        """
    @property
    def path(self) -> pathlib.Path:
        """The database directory."""
    @property
    def closed(self) -> bool:
        """True once ``close()`` has run."""
    def close(self) -> None:
        """Saves the index, flushes every write and gives the lock back (once calls running in
        other threads finish). Later calls raise ``DatabaseError``; closing twice does nothing."""
    def __enter__(self) -> "FaceDb": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
    def enroll(self, name: str, images: Union[Image, Iterable[Image]], *, bgr: bool = False) -> list[EnrollOutcome]:
        """Enrols each image's face (the largest, most central) as ``name``.

        One outcome per image, in order; an unreadable photo or one without a usable face is
        reported there ("failed", "no_face"), not raised. The same photo twice is stored once.
        """
    def search(self, image: Image, k: int = 5, *, bgr: bool = False) -> SearchResult:
        """Who is the most central face in ``image``? The ``k`` nearest people (best face each),
        and ``identity`` when the nearest is under the 1:N threshold.

        Raises ``NoFaceError`` without a face, ``ImageError`` for an unusable photo.
        """
    def identify_all(self, image: Image, k: int = 5, *, bgr: bool = False) -> list[SearchResult]:
        """``search`` for every face of a group photo."""
    def verify(self, a: Image, b: Image, *, threshold: Optional[float] = None, bgr: bool = False) -> Verification:
        """Are the most central faces of ``a`` and ``b`` the same person? At ``threshold``
        (squared L2), else at the database's 1:1 threshold."""
    def embed(self, image: Image, *, bgr: bool = False) -> list[Face]:
        """Every face in ``image`` (box, landmarks, quality, crop, vector), the primary first.
        A photo without a face gives an empty list."""
    def add_face(self, name: str, face: Face) -> EnrollOutcome:
        """Stores a face from ``embed`` as ``name``'s, as enrolment stores it."""
    def search_face(self, face: Face, k: int = 5) -> SearchResult:
        """``search`` for a face from ``embed``: the same answer."""
    def search_vector(self, vector: Union[npt.NDArray[np.float32], list[float]], k: int = 5) -> SearchResult:
        """Who is this vector (a ``Face.vector`` of this database's model)? The same decision as
        ``search``; no box, and no quality floor applies."""
    def people(self) -> list[Person]:
        """Everyone enrolled, in creation order."""
    def faces(self, name: str) -> list[FaceRecord]:
        """A person's faces, in id order. Raises ``UnknownPersonError``."""
    def face(self, id: int) -> Optional[FaceRecord]:
        """A stored face's record; None when there is no such face."""
    def face_crop(self, id: int) -> npt.NDArray[np.uint8]:
        """A stored face's aligned crop, (H, W, 3) RGB. Raises ``NotFoundError``."""
    def face_vector(self, id: int) -> Optional[npt.NDArray[np.float32]]:
        """A stored face's vector. Raises ``NotFoundError``; None when the vector is missing
        (``fdb repair`` re-embeds it)."""
    def rename(self, old: str, new: str) -> None:
        """Renames a person. Raises ``UnknownPersonError``."""
    def remove_person(self, name: str) -> int:
        """Removes a person and their faces; returns how many faces went."""
    def remove_face(self, id: int) -> None:
        """Removes one face by id."""
    def stats(self) -> dict[str, Any]:
        """Counts, model, thresholds and size on disk, as ``fdb --json stats`` prints them."""
