"""``facerec gallery``: counts, and migration between the FAISS and Milvus backends."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["gallery_group"]

_BACKENDS = click.Choice(["faiss", "milvus"])


def _meta(backend: str, data_dir: Path, uri: str, token: str | None, prefix: str) -> dict[str, str]:
    if backend == "faiss":
        from service.gallery.store import stored_meta

        return stored_meta(data_dir / "gallery.sqlite3")
    from service.gallery.milvus import stored_meta as milvus_meta

    return milvus_meta(uri, token, prefix)


@click.group("gallery")
def gallery_group() -> None:
    """Inspect the gallery; move it between backends."""


@gallery_group.command()
@click.option("--from", "source", type=_BACKENDS, required=True)
@click.option("--to", "target", type=_BACKENDS, required=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--milvus-uri", default=None, help="default: FACEREC_MILVUS_URI or data_dir/...")
@click.option("--sample", type=int, default=100, show_default=True, help="identities compared")
def migrate(
    source: str, target: str, data_dir: Path | None, milvus_uri: str | None, sample: int
) -> None:
    """Copy every identity, face and template from one backend to the other.

    The model id and embedding size come from the source gallery. Resumable: identities
    already in the target are skipped. Exits 1 unless the counts agree at the end."""
    from tqdm import tqdm

    from service.gallery.migrate import migrate as run
    from service.gallery.open import milvus_uri as default_uri
    from service.gallery.open import open_gallery
    from service.settings import settings_from_options

    if source == target:
        raise click.UsageError("--from and --to name the same backend")
    settings = settings_from_options(data_dir=data_dir, milvus_uri=milvus_uri)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    meta = _meta(source, settings.data_dir, default_uri(settings), token, settings.milvus_prefix)
    if "model_id" not in meta:
        raise click.ClickException(f"no {source} gallery found to migrate from")
    model_id, size = meta["model_id"], int(meta["embedding_size"])
    src = open_gallery(settings, model_id, size, backend=source)
    dst = open_gallery(settings, model_id, size, backend=target)
    try:
        total = src.counts()["identities"]
        with tqdm(total=total, unit="id", desc=f"{source} → {target}") as bar:
            summary = run(src, dst, bar.update, sample=sample)
    finally:
        src.close()
        dst.close()
    click.echo(f"copied {summary.copied}, already there {summary.already_there}")
    click.echo(f"{'':12}{source:>12}{target:>12}")
    for key in ("identities", "searchable", "faces"):
        a, b = summary.source_counts.get(key, 0), summary.target_counts.get(key, 0)
        click.echo(f"{key:12}{a:>12}{b:>12}{'' if a == b else '  MISMATCH'}")
    click.echo(
        f"sample: {summary.sampled - len(summary.sample_mismatches)}/{summary.sampled} "
        "identities equal field by field"
    )
    if not summary.ok:
        raise SystemExit(1)


@gallery_group.command()
@click.option("--backend", type=_BACKENDS, default=None, help="default: FACEREC_GALLERY_BACKEND")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--milvus-uri", default=None)
def stats(backend: str | None, data_dir: Path | None, milvus_uri: str | None) -> None:
    """Identities, searchable identities and faces in the gallery."""
    from service.gallery.open import milvus_uri as default_uri
    from service.gallery.open import open_gallery
    from service.settings import settings_from_options

    settings = settings_from_options(data_dir=data_dir, milvus_uri=milvus_uri)
    chosen = backend or settings.gallery_backend
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    meta = _meta(chosen, settings.data_dir, default_uri(settings), token, settings.milvus_prefix)
    if "model_id" not in meta:
        raise click.ClickException(f"no {chosen} gallery found")
    gallery = open_gallery(settings, meta["model_id"], int(meta["embedding_size"]), chosen)
    try:
        counts = gallery.counts()
    finally:
        gallery.close()
    click.echo(f"model {meta['model_id']}, {meta['embedding_size']}-d")
    for key, value in counts.items():
        click.echo(f"{key:12}{value:>12}")


@gallery_group.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def check(data_dir: Path | None) -> None:
    """Check the FAISS backend's SQLite gallery is whole (after a crash, say): file
    integrity, orphan faces, face counts, embeddings and templates. Read-only; exits 1 on
    any problem. (The FAISS index is rebuilt from this file at every start.)"""
    from service.gallery.check import store_problems
    from service.settings import settings_from_options

    settings = settings_from_options(data_dir=data_dir)
    path = settings.data_dir / "gallery.sqlite3"
    if not path.is_file():
        raise click.ClickException(f"no gallery at {path}")
    problems = store_problems(path)
    for problem in problems:
        click.echo(problem)
    if problems:
        raise SystemExit(1)
    click.echo(f"{path}: consistent")
