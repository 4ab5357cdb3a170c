"""``facerec bench …``: each prints a table and writes a JSON result with the machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.group("bench")
def bench_group() -> None:
    """Benchmarks: figures are measured, printed, and saved with the machine described."""


def _save(result: dict[str, Any], out: Path | None) -> None:
    from service.bench.machine import describe_machine

    result = {"machine": describe_machine(), **result}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {out}")


def _default_images() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        raise click.UsageError("give --images DIR (insightface's sample photos are not installed)")
    return [Path(spec.origin).parent / "data" / "images" / "t1.jpg"]


@bench_group.command("pipeline")
@click.option(
    "--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="folder of photos (default: insightface's t1.jpg)",
)
@click.option("--repeat", type=int, default=10, show_default=True)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--max-batch", type=int, default=64, show_default=True)
@click.option(
    "--runtime",
    type=click.Choice(["onnxruntime", "openvino", "torch", "tensorrt"]),
    default="onnxruntime",
    show_default=True,
)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp16")
@click.option("--workers", type=int, default=1, show_default=True, help="detector calls at once")
@click.option(
    "--embed-workers", type=int, default=None, help="recognizer calls at once (default: ≤ 2)"
)
@click.option(
    "--threads", type=int, default=0, show_default=True, help="our recognizer's CPU threads"
)
@click.option("--detect-threads", type=int, default=0, show_default=True)
@click.option(
    "--spinning/--no-spinning",
    default=False,
    show_default=True,
    help="ONNX Runtime threads spin while waiting (ours)",
)
@click.option(
    "--rounds", type=int, default=1, show_default=True, help="alternate ours/theirs N times"
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="recognizer for insightface's path (default: the pack's; e.g. the FP32 file of an "
    "INT8 pack)",
)
@click.option("--landmarks", type=click.Choice(["detector", "onet"]), default=None)
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def pipeline_command(
    pack: Path,
    images: Path | None,
    repeat: int,
    concurrency: int,
    device: str,
    max_batch: int,
    runtime: str,
    precision: str,
    workers: int,
    embed_workers: int | None,
    threads: int,
    detect_threads: int,
    spinning: bool,
    rounds: int,
    baseline: Path | None,
    landmarks: str | None,
    json_out: Path | None,
) -> None:
    """Images/s and faces/s end to end, and insightface's own path on the same faces."""
    from service.bench.pipeline import bench_pipeline

    paths = _photos(images)
    result = bench_pipeline(
        pack,
        paths,
        repeat,
        concurrency,
        device,
        max_batch,
        runtime,
        precision,
        workers,
        embed_workers=embed_workers,
        threads=threads,
        detect_threads=detect_threads,
        spinning=spinning,
        rounds=rounds,
        baseline=baseline,
        landmarks=landmarks,  # type: ignore[arg-type]
    )
    click.echo(
        f"ours: {result['runtime']}, {result['detector']}; insightface's path: ONNX Runtime "
        f"on {result['insightface_recognizer']}; lowest cosine between the two "
        f"{result['min_cosine_ours_vs_insightface']}"
    )
    click.echo(f"{'':<26}{'images/s':>10}{'faces/s':>10}{'faces':>7}")
    for stage in ("end_to_end", "recognition_only"):
        for who in ("ours", "insightface"):
            r = result[stage][who]
            label = f"{stage} {who}"
            click.echo(
                f"{label:<26}{r['images_per_s']:>10.2f}{r['faces_per_s']:>10.2f}{r['faces']:>7}"
            )
        click.echo(
            f"{stage + ' ratio':<26}{result[stage]['ratio']:>10.2f}x   (per round "
            f"{result[stage]['ratios_per_round']}; CPU time {result[stage]['cpu_ratio']:.2f}x)"
        )
    _save(result, json_out)


@bench_group.command("search")
@click.option("--gallery", "gallery_size", type=int, default=1_000_000, show_default=True)
@click.option("--queries", type=int, default=256, show_default=True)
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--batch-sizes", default="1,8,64", show_default=True)
@click.option("--dim", type=int, default=512, show_default=True)
@click.option(
    "--backends",
    default="faiss-flat",
    show_default=True,
    help="comma-separated: faiss-flat, torch-fp32, torch-fp16 (GPU), faiss-ivf (approximate), "
    "milvus-flat, milvus-ivf",
)
@click.option("--nprobe", type=int, default=32, show_default=True, help="IVF lists searched")
@click.option("--milvus-uri", default="", help="Milvus server for milvus-*; default: Lite, temp")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def search_command(
    gallery_size: int,
    queries: int,
    k: int,
    batch_sizes: str,
    dim: int,
    backends: str,
    nprobe: int,
    milvus_uri: str,
    json_out: Path | None,
) -> None:
    """Search latency (p50/p99), memory and recall on a synthetic gallery, per backend."""
    from service.bench.search import bench_search

    click.echo(f"gallery {gallery_size:,} × {dim}-d, {queries} probes, top-{k}")
    click.echo(
        f"{'backend':<12}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'ms/query':>10}{'queries/s':>12}"
    )
    result = bench_search(
        gallery_size,
        queries,
        k,
        _ints(batch_sizes),
        dim,
        backends=_names(backends),
        nprobe=nprobe,
        progress=click.echo,
        milvus_uri=milvus_uri,
    )
    for entry in result["backends"]:
        recall = entry.get("recall_at_1_vs_exact")
        click.echo(
            f"{entry['backend']}: {entry['index']}; built in {entry['build_s']} s, "
            f"{entry['vectors_mb']} MB of vectors, RSS {entry['rss_before_mb']} → "
            f"{entry['rss_after_build_mb']} MB; mate@1 {entry['mate_at_1']}"
            + ("" if recall is None else f"; recall@1 vs exact {recall}")
        )
    for skip in result["skipped"]:
        click.echo(f"skipped {skip['backend']}: {skip['reason']}")
    _save(result, json_out)


def _ints(text: str) -> list[int]:
    try:
        values = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@bench_group.command("embed")
@click.option(
    "--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--runtimes",
    default="onnxruntime-cpu,openvino-cpu,onnxruntime-cuda,torch-cuda,tensorrt",
    show_default=True,
    help="measured where available; the others are listed as skipped, with the reason",
)
@click.option("--precisions", default="fp32,fp16,int8", show_default=True)
@click.option("--batch-sizes", default="1,8,32,64,128,256,512", show_default=True)
@click.option("--seconds", type=float, default=1.0, show_default=True, help="per point")
@click.option("--streams", type=int, default=1, show_default=True, help="concurrent callers")
@click.option("--cuda-graphs/--no-cuda-graphs", default=True, show_default=True)
@click.option("--torch-compile", is_flag=True, help="torch-cuda: compile with TorchInductor")
@click.option("--engine-cache", type=click.Path(path_type=Path), default=Path("data/engines"))
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="torch-cuda only: profile the largest batch; kernel table to this file",
)
def embed_command(
    pack: Path,
    runtimes: str,
    precisions: str,
    batch_sizes: str,
    seconds: float,
    streams: int,
    cuda_graphs: bool,
    torch_compile: bool,
    engine_cache: Path,
    json_out: Path | None,
    plot: Path | None,
    profile: Path | None,
) -> None:
    """Recognizer faces/s and latency per runtime, precision and batch size."""
    from service.bench.embed import bench_embed, plot_embed

    if profile is not None:
        _profile(pack, _names(precisions)[0], max(_ints(batch_sizes)), profile, json_out)
        return

    click.echo(f"{'runtime':<17}{'prec':<6}{'batch':>5}{'p50 ms':>10}{'faces/s':>11}")
    result = bench_embed(
        pack,
        _names(runtimes),
        _names(precisions),
        _ints(batch_sizes),
        seconds=seconds,
        streams=streams,
        cuda_graphs=cuda_graphs,
        engine_cache=engine_cache,
        compile_model=torch_compile,
        progress=click.echo,
    )
    for skip in result["skipped"]:
        click.echo(f"skipped {skip['runtime']} {skip['precision']}: {skip['reason']}")
    if result["untrained"]:
        click.echo("recognizer UNTRAINED: speed figures hold, similarities mean nothing")
    _save(result, json_out)
    if plot is not None:
        from service.bench.machine import describe_machine

        plot_embed({"machine": describe_machine(), **result}, plot)
        click.echo(f"wrote {plot}")


def _profile(pack: Path, precision: str, batch: int, table: Path, out: Path | None) -> None:
    from service.bench.profile import profile_torch
    from service.models.loading import build_embedder
    from service.models.packs import load_pack

    embedder = build_embedder(
        load_pack(pack), "cuda:0", max_batch=batch, runtime="torch", precision=precision
    )
    result = profile_torch(embedder, batch, table)
    for key, value in result.items():
        click.echo(f"{key:<22}{value}")
    click.echo(f"wrote {table}")
    _save({"profile": result}, out)


@bench_group.command("detect")
@click.option(
    "--pack",
    "packs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    multiple=True,
    help="repeat to compare detectors in one run (ratios against the first)",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="folder of photos (default: insightface's t1.jpg)",
)
@click.option("--sizes", default="640x480,1280x720,1920x1080", show_default=True)
@click.option("--batch-sizes", default="1,4,8", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--seconds", type=float, default=1.0, show_default=True, help="per point")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def detect_command(
    packs: tuple[Path, ...],
    images: Path | None,
    sizes: str,
    batch_sizes: str,
    device: str,
    seconds: float,
    json_out: Path | None,
) -> None:
    """Detector images/s by input size and batch."""
    from service.bench.detect import bench_detect
    from service.vision.decode import decode_image

    try:
        dims = [tuple(int(v) for v in s.lower().split("x")) for s in _names(sizes)]
    except ValueError:
        raise click.BadParameter(f"sizes are WxH, comma-separated; got {sizes!r}") from None
    if any(len(d) != 2 or min(d) < 16 for d in dims):
        raise click.BadParameter(f"sizes are WxH of at least 16 pixels; got {sizes!r}")
    photos = [decode_image(p.read_bytes()) for p in _photos(images)]
    click.echo(
        f"{'detector':<12}{'size':<11}{'batch':>6}{'p50 ms':>10}{'images/s':>11}{'faces':>7}"
        f"{'ratio':>9}"
    )
    result = bench_detect(
        list(packs),
        photos,
        [(d[0], d[1]) for d in dims],
        _ints(batch_sizes),
        device=device,
        seconds=seconds,
        progress=click.echo,
    )
    _save(result, json_out)


@bench_group.command("landmarks")
@click.option(
    "--pack", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="folder of photos (default: insightface's t1.jpg)",
)
@click.option("--mtcnn/--no-mtcnn", default=True, show_default=True, help="MTCNN beside it")
@click.option("--json-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def landmarks_command(pack: Path, images: Path | None, mtcnn: bool, json_out: Path | None) -> None:
    """Landmark jitter under 1–16 px shifts and 5 % rescales: the detector's own landmarks,
    O-Net's on its boxes, and MTCNN's."""
    from service.bench.landmarks import SCALES, SHIFTS, measure
    from service.models.loading import build_detector
    from service.models.packs import load_pack
    from service.vision.decode import decode_image
    from service.vision.detectors.base import Detector, DetectorConfig

    loaded = load_pack(pack)
    photos = [decode_image(p.read_bytes()) for p in _photos(images)]
    config = DetectorConfig(min_face_size=0)
    detectors: list[Detector] = [build_detector(loaded, config, "cpu", "detector")]
    if loaded.manifest.detector.kind != "mtcnn":
        detectors.append(build_detector(loaded, config, "cpu", "onet"))
    if mtcnn and loaded.manifest.detector.kind != "mtcnn":
        from service.vision.detectors.mtcnn import MTCNN

        detectors.append(MTCNN(config))
    click.echo(f"{len(photos)} photos, {len(SHIFTS)} shifts, scales {SCALES}")
    click.echo(
        f"{'detector':<14}{'shift mean px':>14}{'p95 px':>8}{'max px':>8}{'mean/eye':>10}"
        f"{'rescale mean':>14}{'max px':>8}{'ms/photo':>10}"
    )
    rows = []
    for detector in detectors:
        row = measure(detector, photos)
        rows.append(row)
        sh, rs = row["shifts"], row["rescales"]
        click.echo(
            f"{row['detector']:<14}{sh['mean_px']:>14.2f}{sh['p95_px']:>8.2f}{sh['max_px']:>8.2f}"
            f"{sh['mean_of_eye_distance']:>10.3f}{rs['mean_px']:>14.2f}{rs['max_px']:>8.2f}"
            f"{row['ms_per_photo']:>10.1f}"
        )
    _save(
        {
            "pack": str(pack),
            "images": [p.name for p in _photos(images)],
            "shifts": [list(s) for s in SHIFTS],
            "scales": list(SCALES),
            "rows": rows,
        },
        json_out,
    )


def _photos(images: Path | None) -> list[Path]:
    if images is None:
        return _default_images()
    found = sorted(p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not found:
        raise click.UsageError(f"no .jpg/.jpeg/.png photos in {images}")
    return found
