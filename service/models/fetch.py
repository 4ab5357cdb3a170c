"""``facerec models fetch NAME``: download a public insightface pack with insightface's own
downloader, unpack it safely and import it.

The download address is insightface's model-zoo release URL; ``FACEREC_MODEL_ZOO_URL`` (or
``--base-url``) points it elsewhere, e.g. at a mirror inside your network.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from service.errors import ModelPackError
from service.models.importer import ImportReport, import_pack

__all__ = ["KNOWN_PACKS", "fetch_pack", "model_zoo_url"]

log = logging.getLogger(__name__)

KNOWN_PACKS = ("antelopev2", "buffalo_l", "buffalo_m", "buffalo_s", "buffalo_sc")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")


def model_zoo_url(name: str, base_url: str | None = None) -> str:
    base = base_url or os.environ.get("FACEREC_MODEL_ZOO_URL")
    if base:
        return f"{base.rstrip('/')}/{name}.zip"
    from insightface.utils.storage import model_zoo_download_url

    return str(model_zoo_download_url(f"{name}.zip"))


def fetch_pack(name: str, packs_dir: str | Path, base_url: str | None = None) -> ImportReport:
    if not name or not set(name.lower()) <= _NAME_CHARS or name.startswith("."):
        raise ModelPackError(f"invalid pack name {name!r}")
    try:
        from insightface.utils.download import download_file
    except ImportError as exc:
        raise ModelPackError("fetching needs insightface (pip install insightface)") from exc
    url = model_zoo_url(name, base_url)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{name}.zip"
        log.info("downloading %s", url)
        try:
            download_file(url, path=str(archive), overwrite=True)
        except Exception as exc:  # requests' errors, HTTP status errors
            raise ModelPackError(f"could not download {url}: {exc}") from exc
        if not archive.is_file():
            raise ModelPackError(f"could not download {url}")
        return import_pack(archive, packs_dir, name)
