"""``facerec eval verify | identify | calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

PACK = click.option(
    "--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
FLIP = click.option("--flip", is_flag=True, help="add the mirrored crop's embedding (TTA)")
DEVICE = click.option("--device", default="auto", show_default=True)


def _pairs(bin_file: Path | None, pairs: Path | None, images: Path | None) -> Any:
    from service.evaluation.datasets import read_bin, read_pairs

    if bin_file is not None:
        return read_bin(bin_file)
    if pairs is None or images is None:
        raise click.UsageError("give --bin FILE, or --pairs FILE with --images DIR")
    return read_pairs(pairs, images)


def _pipeline(pack: Path, device: str) -> Any:
    from service.recognition.pipeline import Pipeline

    return Pipeline.from_pack(pack, device=device)


def _embed(
    pipeline: Any, images: list[bytes], aligned: bool, flip: bool, label: str
) -> tuple[np.ndarray, list[bool]]:
    """Embeddings, with a progress bar."""
    from tqdm import tqdm

    from service.evaluation.runner import embed_images

    with tqdm(total=len(images), unit="img", desc=label) as bar:
        return embed_images(pipeline, images, aligned=aligned, flip=flip, progress=bar.update)


def _scores(pipeline: Any, data: Any, flip: bool) -> tuple[np.ndarray, int]:
    from service.recognition.matching import cosine

    emb, found = _embed(pipeline, data.images, data.aligned, flip, "embed")
    # the service's own cosine (float32 dot, clipped), so that a calibrated threshold is
    # compared with the very numbers /verify computes for the same embeddings
    scores = np.array([cosine(emb[i], emb[j]) for i, j in data.pairs], dtype=np.float64)
    return scores, len(found) - sum(found)


@click.group("eval")
def eval_group() -> None:
    """Measure a model pack with the ArcFace paper's metrics on your own data."""


@eval_group.command("verify")
@PACK
@click.option(
    "--bin",
    "bin_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="insightface verification set: lfw.bin, cfp_fp.bin, agedb_30.bin",
)
@click.option(
    "--pairs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="LFW-style pairs.txt",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="folder of the pairs' images (name/name_000N.jpg)",
)
@FLIP
@DEVICE
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("eval"),
    show_default=True,
    help="report.json and roc.png go here",
)
def verify_command(
    pack: Path,
    bin_file: Path | None,
    pairs: Path | None,
    images: Path | None,
    flip: bool,
    device: str,
    out: Path,
) -> None:
    """10-fold accuracy, ROC with TAR at FAR 1e-1 … 1e-6, and EER."""
    from service.evaluation.report import plot_roc, verification_report, write_json

    data = _pairs(bin_file, pairs, images)
    scores, missed = _scores(_pipeline(pack, device), data, flip)
    report = verification_report(scores, data.same, missed)
    name = (bin_file or pairs or Path("pairs")).stem
    report.update({"set": name, "pack": str(pack), "flip": flip})
    write_json(report, out / "report.json")
    plot_roc(scores, data.same, out / "roc.png", f"{name}: ROC ({pack.name})")
    click.echo(
        f"{name}: {report['pairs']} pairs ({report['genuine']} genuine), "
        f"{missed} images without a face"
    )
    click.echo(f"accuracy (10-fold)  {report['accuracy']:.4%} ± {report['accuracy_std']:.4%}")
    click.echo(f"EER                 {report['eer']:.4%}")
    for far, row in report["tar_at_far"].items():
        click.echo(f"TAR @ FAR {far:<8} {row['tar']:.4%}  (threshold {row['threshold']:.6f})")
    click.echo(f"wrote {out / 'report.json'} and {out / 'roc.png'}")


@eval_group.command("identify")
@PACK
@click.option(
    "--gallery",
    "gallery_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="one sub-folder per identity",
)
@click.option(
    "--probes",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="one sub-folder per identity (same names)",
)
@click.option(
    "--distractors",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="images of people outside the probe set, added to the gallery",
)
@click.option("--aligned", is_flag=True, help="the images are aligned 112×112 crops")
@FLIP
@DEVICE
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("eval"),
    show_default=True,
)
def identify_command(
    pack: Path,
    gallery_dir: Path,
    probes: Path,
    distractors: Path | None,
    aligned: bool,
    flip: bool,
    device: str,
    out: Path,
) -> None:
    """Rank-1 / rank-5 and the CMC curve; rank-1 as distractors join the gallery."""
    from service.evaluation.datasets import IMAGE_SUFFIXES, identity_folders
    from service.evaluation.report import identification_report, write_json
    from service.gallery.store import feature_centre

    pipeline = _pipeline(pack, device)
    enrolled = identity_folders(gallery_dir)
    names = sorted({n for n, _ in enrolled})
    emb, _ = _embed(pipeline, [p.read_bytes() for _, p in enrolled], aligned, flip, "gallery")
    templates = []
    for name in names:
        mine = emb[[i for i, (n, _) in enumerate(enrolled) if n == name]]
        centre = feature_centre(mine[np.linalg.norm(mine, axis=1) > 0])
        templates.append(centre if centre is not None else np.zeros(emb.shape[1], np.float32))
    gallery = np.stack(templates)
    labels = list(names)
    probe_items = identity_folders(probes)
    p_emb, _ = _embed(pipeline, [p.read_bytes() for _, p in probe_items], aligned, flip, "probes")
    p_labels = [n for n, _ in probe_items]
    report: dict[str, Any] = {"pack": str(pack), "flip": flip}
    report["closed_set"] = identification_report(p_emb @ gallery.T, p_labels, labels)
    if distractors is not None:
        files = sorted(p for p in distractors.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        d_emb, _ = _embed(pipeline, [p.read_bytes() for p in files], aligned, flip, "distractors")
        growth = []
        for count in sorted({0, *[int(len(files) * f) for f in (0.1, 0.25, 0.5, 1.0)]}):
            g = np.concatenate([gallery, d_emb[:count]])
            lab = labels + [f"distractor-{i}" for i in range(count)]
            r = identification_report(p_emb @ g.T, p_labels, lab)
            growth.append({"distractors": count, "rank1": r["rank1"]})
        report["with_distractors"] = growth
    write_json(report, out / "identify.json")
    closed = report["closed_set"]
    click.echo(
        f"{closed['probes']} probes, {closed['gallery']} identities: rank-1 "
        f"{closed['rank1']:.4%}, rank-5 {closed['rank5']:.4%}"
    )
    for row in report.get("with_distractors", []):
        click.echo(f"  + {row['distractors']:>7} distractors: rank-1 {row['rank1']:.4%}")
    click.echo(f"wrote {out / 'identify.json'}")


@eval_group.command("calibrate")
@PACK
@click.option("--far", type=float, required=True, help="target false-accept rate, e.g. 1e-4")
@click.option("--bin", "bin_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pairs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path))
@FLIP
@DEVICE
def calibrate_command(
    pack: Path,
    far: float,
    bin_file: Path | None,
    pairs: Path | None,
    images: Path | None,
    flip: bool,
    device: str,
) -> None:
    """Set the pack's verify threshold to the one giving FAR on these pairs."""
    from service.evaluation.metrics import tar_at_far
    from service.models.manifest import ThresholdSpec
    from service.models.packs import load_pack, write_manifest

    if flip:
        click.echo(
            "note: the service does not flip; a threshold calibrated with --flip fits "
            "flipped embeddings only",
            err=True,
        )
    data = _pairs(bin_file, pairs, images)
    scores, _ = _scores(_pipeline(pack, device), data, flip)
    found = tar_at_far(scores, data.same, [far], decimals=6)
    if far not in found:
        impostors = len(data.same) - sum(data.same)
        raise click.ClickException(
            f"FAR {far:g} is not measurable with {impostors} impostor pairs (needs ≥ {1 / far:.0f})"
        )
    tar, threshold = found[far]
    loaded = load_pack(pack)
    name = (bin_file or pairs or Path("pairs")).name
    spec = ThresholdSpec(
        value=threshold,  # rounded up: never accepts more impostors than FAR allows
        source="calibrated",
        far=far,
        note=f"TAR {tar:.4f} at FAR {far:g} on {name} ({len(data.same)} pairs)",
    )
    write_manifest(pack, loaded.manifest.model_copy(update={"verify_threshold": spec}))
    click.echo(
        f"threshold {threshold:.6f} (TAR {tar:.4%} at FAR {far:g}) written to "
        f"{pack / 'manifest.json'}"
    )
