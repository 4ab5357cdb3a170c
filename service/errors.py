"""Domain errors. Each carries a stable ``code`` and the HTTP status it maps to.

Only ``service.api`` turns them into responses; everything else raises them and knows
nothing of HTTP beyond the status number kept here as data.
"""

from __future__ import annotations


class FaceRecError(Exception):
    """Base of every error the service reports to a client."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImage(FaceRecError):
    """The bytes are not a readable image (empty, truncated, corrupt)."""

    code = "invalid_image"
    status = 400


class UnsupportedFormat(FaceRecError):
    """A readable file of a format the service does not accept."""

    code = "unsupported_format"
    status = 415


class ImageTooLarge(FaceRecError):
    """Too many bytes or too many pixels (checked before a full decode)."""

    code = "image_too_large"
    status = 413


class NoFaceFound(FaceRecError):
    code = "no_face"
    status = 422


class TooManyFaces(FaceRecError):
    code = "too_many_faces"
    status = 422


class ModelNotReady(FaceRecError):
    code = "model_not_ready"
    status = 503


class Overloaded(FaceRecError):
    """The batch queue is full: the client should retry later."""

    code = "overloaded"
    status = 503

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelPackError(FaceRecError):
    """A model pack that is missing, malformed, or fails its hash check."""

    code = "model_pack_error"
    status = 500


class IdentityNotFound(FaceRecError):
    code = "identity_not_found"
    status = 404


class FaceNotFound(FaceRecError):
    code = "face_not_found"
    status = 404


class Conflict(FaceRecError):
    """The request conflicts with the gallery's state (e.g. a duplicate external_id)."""

    code = "conflict"
    status = 409


class EmptyIdentity(FaceRecError):
    """An identity with no enrolled face has no template to compare with."""

    code = "identity_has_no_faces"
    status = 422


class GalleryMismatch(FaceRecError):
    """The gallery was made with another recognizer: the service refuses to start."""

    code = "gallery_mismatch"
    status = 500
