"""The benchmarks run and write their figures with the machine (speed is not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from service.cli import cli


def test_bench_pipeline_reports_ours_and_insightfaces_path(
    test_pack: Path, tmp_path: Path, insightface_images: Path
) -> None:
    out = tmp_path / "pipeline.json"
    args = [
        "bench",
        "pipeline",
        "--pack",
        str(test_pack),
        "--repeat",
        "1",
        "--concurrency",
        "2",
        "--rounds",
        "2",
        "--threads",
        "1",
        "--spinning",
        "--json-out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "end_to_end ratio" in result.output
    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] >= 1
    assert data["detector"] == "yunet+onet" and data["rounds"] == 2
    assert data["threads"] == 1 and data["spinning"] is True
    assert data["min_cosine_ours_vs_insightface"] > 0.9999  # the same FP32 file on both
    for stage in ("end_to_end", "recognition_only"):
        assert data[stage]["ours"]["faces"] == data[stage]["insightface"]["faces"] == 12
        assert data[stage]["ratio"] > 0 and len(data[stage]["ratios_per_round"]) == 2


def test_bench_search_reports_latency_memory_and_recall(tmp_path: Path) -> None:
    out = tmp_path / "search.json"
    args = [
        "bench",
        "search",
        "--gallery",
        "5000",
        "--queries",
        "16",
        "--batch-sizes",
        "1,8",
        "--backends",
        "faiss-ivf,faiss-flat,torch-fp16",
        "--json-out",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    measured = {b["backend"]: b for b in data["backends"]}
    assert next(iter(measured)) == "faiss-flat"  # exact first: the others' recall is against it
    flat = measured["faiss-flat"]
    assert [r["batch"] for r in flat["latency"]] == [1, 8]
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in flat["latency"])
    assert flat["recall_at_1_vs_exact"] == 1.0 and flat["mate_at_1"] == 1.0
    assert 0 <= measured["faiss-ivf"]["recall_at_1_vs_exact"] <= 1
    assert flat["rss_after_build_mb"] > 0 and data["machine"]["cpu"]
    skipped = {s["backend"] for s in data["skipped"]}
    assert ("torch-fp16" in skipped) != ("torch-fp16" in measured)


def test_bench_embed_measures_or_explains_every_runtime(test_pack: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "embed.json", tmp_path / "embed.png"
    args = ["bench", "embed", "--pack", str(test_pack), "--batch-sizes", "1,4"]
    args += ["--seconds", "0.05", "--json-out", str(out), "--plot", str(plot)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    cpu = [r for r in data["rows"] if r["runtime"] == "onnxruntime-cpu"]
    assert [r["batch"] for r in cpu] == [1, 4]
    assert all(r["faces_per_s"] > 0 and r["min_cosine_vs_cpu_fp32"] > 0.9999 for r in cpu)
    measured = {(r["runtime"], r["precision"]) for r in data["rows"]}
    explained = {(s["runtime"], s["precision"]) for s in data["skipped"]}
    assert len(measured | explained) == 5 * 3 and not measured & explained
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_detect_by_size_and_batch(
    test_pack: Path, tmp_path: Path, insightface_images: Path
) -> None:
    out = tmp_path / "detect.json"
    args = ["bench", "detect", "--pack", str(test_pack), "--sizes", "320x240,640x480"]
    args += ["--batch-sizes", "1,2", "--seconds", "0.05", "--json-out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["width"], r["batch"]) for r in rows] == [(320, 1), (320, 2), (640, 1), (640, 2)]
    assert all(r["images_per_s"] > 0 and r["vs_first_pack"] == 1.0 for r in rows)
    assert rows[-1]["faces_per_call"] == 2 * rows[-2]["faces_per_call"] > 0


def test_bench_detect_compares_packs_in_one_run(
    test_pack: Path, mtcnn_test_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "detect.json"
    args = ["bench", "detect", "--pack", str(test_pack), "--pack", str(mtcnn_test_pack)]
    args += ["--sizes", "640x480", "--batch-sizes", "1,2", "--seconds", "0.05"]
    result = CliRunner().invoke(cli, [*args, "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["detectors"] == ["yunet+onet", "mtcnn"]
    rows = data["rows"]
    assert [(r["detector"], r["batch"]) for r in rows] == [
        ("yunet+onet", 1),
        ("mtcnn", 1),
        ("yunet+onet", 2),
        ("mtcnn", 2),
    ]
    for first, other in zip(rows[::2], rows[1::2], strict=True):
        assert first["vs_first_pack"] == 1.0
        assert other["vs_first_pack"] == round(other["images_per_s"] / first["images_per_s"], 2)
        assert first["faces_per_call"] == other["faces_per_call"] > 0  # the same faces found


def test_bench_landmarks_reports_jitter_per_landmark_source(
    test_pack: Path, tmp_path: Path
) -> None:
    out = tmp_path / "landmarks.json"
    args = ["bench", "landmarks", "--pack", str(test_pack), "--no-mtcnn", "--json-out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["detector"] for r in rows] == ["yunet", "yunet+onet"]
    for row in rows:
        assert row["shifts"]["faces"] >= 6 * 10 and row["rescales"]["faces"] >= 6
        assert 0 < row["shifts"]["mean_px"] <= row["shifts"]["max_px"]
