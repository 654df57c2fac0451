"""The trained models at deployment speed (issue 24): the recommended model, its distilled students, and the
narrow model on clip labels, on the 2 CPU cores of this machine.

    python benchmarks/deployment_speed.py            # about 15 minutes on 2 quiet CPU cores
    python benchmarks/deployment_speed.py --quick    # fewer repeats, no 1 h file

Run ``python recipes/soundscapes/distill.py`` first: the models are its seed-0 trials (trained weights, so event
decoding finds as many events as it would in use), and the accuracy columns are its paired test trials.

* Throughput on 10 s clips (WAV files on disk at the model's sample rate: 44.1 kHz for the recommended model's
  aisfx, 16 kHz for the others), batch 1 and 32, of each model on
  PyTorch; onnxruntime with the front end in the graph (``weaktag export``); onnxruntime with the graph starting
  at the log-mel (``--no-frontend``: the front end in PyTorch); and onnxruntime's dynamic int8 copy
  (``weaktag export --int8``): ``inference_speed.py``'s :func:`bench_throughput`, end to end (``weaktag tag`` on
  the folder: tags + events, and clip tags only) against the bare forward (the same network and front end on
  the same clips in memory).
* Peak memory (VmHWM, a fresh process each) tagging one file of 1 min, 10 min and 1 h with each model (PyTorch).
* int8's accuracy: ``weaktag evaluate --onnx`` of the float export and of its int8 copy on the test_final split,
  for each of the teacher's trials and each student's seed 0 (the same audio path as ``weaktag tag``).
* MACs per 10 s and parameters (:mod:`weaktag.models.cost`).

Writes ``benchmarks/results/deployment_speed.json`` and ``.md`` (and ``deployment_summary.md``, README's table) and
prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference_speed as speed  # noqa: E402  (throughput and memory measurements)

from weaktag.checkpoint import load_checkpoint  # noqa: E402
from weaktag.experiments.evaluation import evaluate_checkpoint  # noqa: E402
from weaktag.inference.export import export_onnx, quantize_onnx  # noqa: E402
from weaktag.models.cost import macs_per_audio, parameter_count  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "recipes" / "soundscapes" / "work"
DISTILL = WORK / "distill"
DISTILL_RESULTS = ROOT / "recipes" / "soundscapes" / "results" / "distill" / "results.json"
TEST_FINAL = WORK / "soundscapes2" / "test_final" / "manifest.jsonl"
#: model -> its compare arm in distill.py
MODELS = {"recommended": "recommended:attention", "narrow": "narrow:attention",
          "narrow-distill": "narrow-distill:distill", "mobilenet-distill": "mobilenet-distill:distill"}
TEACHER = "recommended"
STUDENTS = ("narrow-distill", "mobilenet-distill")
BACKENDS = ("torch", "onnxruntime", "onnxruntime-logmel", "onnxruntime-int8")
TARGET_STUDENT_SPEED = 150.0
TARGET_RECOMMENDED_SPEED = 60.0
TARGET_E2E_RATIO = 1.15
TARGET_MEMORY_RATIO = 1.2
TARGET_MAP_SHARE = 0.97
TARGET_PSDS1_SHARE = 0.90
TARGET_INT8_MAP_DROP = 0.5  # points


def trial_checkpoint(arm: str, seed: int = 0) -> Path:
    recipe, scheme = arm.split(":")
    return DISTILL / "runs" / recipe / scheme / f"seed{seed}" / "model.pt"


def int8_exports(ckpt: Path, folder: Path) -> dict[str, Path]:
    """The float export (front end in the graph) and its int8 copy."""
    folder.mkdir(parents=True, exist_ok=True)
    with_frontend = export_onnx(ckpt, folder / "model.onnx").path
    return {"onnxruntime": with_frontend, "onnxruntime-int8": quantize_onnx(with_frontend).path}


def exports(ckpt: Path, folder: Path) -> dict[str, Path | None]:
    """The backends' files: none for PyTorch, the float export (front end in and out), the int8 copy."""
    return {"torch": None, **int8_exports(ckpt, folder),
            "onnxruntime-logmel": export_onnx(ckpt, folder / "logmel.onnx", frontend=False).path}


def int8_accuracy(ckpt: Path, files: dict[str, Path | None]) -> dict:
    """Test-final metrics of the float export and its int8 copy, through ``evaluate --onnx``."""
    row = {}
    for key in ("onnxruntime", "onnxruntime-int8"):
        report = evaluate_checkpoint(ckpt, TEST_FINAL, onnx_path=files[key])
        row[key] = {"mAP": float(report.tagging.mAP),
                    "psds1": None if report.events is None else float(report.events.psds1)}
    row["map_drop_points"] = 100 * (row["onnxruntime"]["mAP"] - row["onnxruntime-int8"]["mAP"])
    return row


def distill_accuracy() -> dict:
    """Each arm's test mAP and PSDS1 (mean over the paired trials) from distill.py's committed results."""
    if not DISTILL_RESULTS.exists():
        return {}
    summary = json.loads(DISTILL_RESULTS.read_text())["summary"]
    out = {}
    for model, arm in MODELS.items():
        if arm in summary:
            s = summary[arm]
            out[model] = {"mAP": s["mAP"]["mean"], "psds1": s.get("psds1", {}).get("mean"),
                          "trials": s["mAP"].get("n")}
    return out


def run(args: argparse.Namespace) -> dict:
    started, load_before = time.perf_counter(), speed._load()
    missing = [str(trial_checkpoint(arm)) for arm in MODELS.values() if not trial_checkpoint(arm).exists()]
    if missing:
        raise SystemExit(f"run recipes/soundscapes/distill.py first: missing {', '.join(missing)}")
    repeats = args.repeats or (1 if args.quick else 3)
    rows, memory, cost, int8 = [], {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="weaktag-deploy-") as tmp:
        work = Path(tmp)
        for model, arm in MODELS.items():
            ckpt = trial_checkpoint(arm)
            net = load_checkpoint(ckpt).model
            # files at the model's own rate, so that the bare forward sees the same 10 s (aisfx reads 44.1 kHz)
            rate = net.grid.sample_rate
            clips = speed._write_clips(work / f"clips{rate}", 32, sr=rate) if not (work / f"clips{rate}").exists() \
                else sorted((work / f"clips{rate}").glob("*.wav"))
            cost[model] = {"macs_per_10s": macs_per_audio(net, speed.CLIP_SECONDS), "parameters": parameter_count(net)}
            files = exports(ckpt, work / model)
            print(f"{model}: throughput on 10 s clips", flush=True)
            for backend in BACKENDS:
                for batch in (1, 32):
                    row = speed.bench_throughput(model, "torch" if backend == "torch" else "onnxruntime", batch, ckpt,
                                                 files[backend], clips, repeats, work / f"run_{model}_{backend}_{batch}")
                    rows.append({**row, "backend": backend})
            seeds = range(3) if model == TEACHER else range(1)
            # seed 0's exports are those timed above; the other seeds need only the float export and its int8 copy
            int8[model] = [int8_accuracy(trial_checkpoint(arm, s), files if s == 0 else
                                         int8_exports(trial_checkpoint(arm, s), work / model / f"seed{s}"))
                           for s in seeds if trial_checkpoint(arm, s).exists()]
            sizes = {k: v for k, v in speed.MEMORY_FILES.items() if not (args.quick and v > 600)}
            memory[model] = speed.bench_memory(ckpt, work, sizes)
    return {"machine": {"cpu": speed._cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
                        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                        "load_before": load_before, "load_after": speed._load()},
            "checkpoints": {m: str(trial_checkpoint(a).relative_to(ROOT)) for m, a in MODELS.items()},
            "throughput": rows, "memory": memory, "cost": cost, "int8": int8, "accuracy": distill_accuracy(),
            "repeats": repeats, "wall_seconds": time.perf_counter() - started}


def best_e2e(report: dict, model: str) -> dict:
    return max((r for r in report["throughput"] if r["model"] == model), key=lambda r: r["e2e_x_real_time"])


def targets(report: dict) -> list[dict]:
    out = []
    acc = report["accuracy"]
    teacher = acc.get(TEACHER)
    for student in STUDENTS:
        best = best_e2e(report, student)
        out.append({"target": f"{student} >= {TARGET_STUDENT_SPEED:.0f}x real time end to end (tags + events)",
                    "measured": f"{best['e2e_x_real_time']:.0f}x ({best['backend']}, batch {best['batch']})",
                    "met": best["e2e_x_real_time"] >= TARGET_STUDENT_SPEED})
        if teacher and student in acc:
            s = acc[student]
            share = s["mAP"] / teacher["mAP"]
            out.append({"target": f"{student} >= {TARGET_MAP_SHARE:.0%} of its teacher's test mAP",
                        "measured": f"{100 * s['mAP']:.1f} vs {100 * teacher['mAP']:.1f} = {share:.1%} "
                                    f"({s['trials']} paired trials)", "met": share >= TARGET_MAP_SHARE})
            if s["psds1"] is not None and teacher["psds1"]:
                share = s["psds1"] / teacher["psds1"]
                out.append({"target": f"{student} >= {TARGET_PSDS1_SHARE:.0%} of its teacher's PSDS1",
                            "measured": f"{100 * s['psds1']:.1f} vs {100 * teacher['psds1']:.1f} = {share:.1%}",
                            "met": share >= TARGET_PSDS1_SHARE})
    best = best_e2e(report, TEACHER)
    out.append({"target": f"recommended >= {TARGET_RECOMMENDED_SPEED:.0f}x real time end to end",
                "measured": f"{best['e2e_x_real_time']:.0f}x ({best['backend']}, batch {best['batch']})",
                "met": best["e2e_x_real_time"] >= TARGET_RECOMMENDED_SPEED})
    drops = [r["map_drop_points"] for r in report["int8"].get(TEACHER, [])]
    if drops:
        out.append({"target": f"recommended int8: test mAP drop < {TARGET_INT8_MAP_DROP} points",
                    "measured": "drops " + ", ".join(f"{d:+.2f}" for d in drops) + f" (mean {np.mean(drops):+.2f})",
                    "met": float(np.mean(drops)) < TARGET_INT8_MAP_DROP})
    worst = max(report["throughput"], key=lambda r: r["e2e_over_bare"])
    out.append({"target": f"end to end / bare forward <= {TARGET_E2E_RATIO} on every row",
                "measured": f"worst {worst['e2e_over_bare']:.2f} ({worst['model']}, {worst['backend']}, batch "
                            f"{worst['batch']})", "met": worst["e2e_over_bare"] <= TARGET_E2E_RATIO})
    for model, rows in report["memory"].items():
        mem = {r["file"]: r["peak_rss_mb"] for r in rows}
        if "1 h" in mem:
            ratio = mem["1 h"] / mem["1 min"]
            out.append({"target": f"{model}: peak memory of a 1 h file <= {TARGET_MEMORY_RATIO}x a 1 min file's",
                        "measured": f"{mem['1 h']:.0f} MB vs {mem['1 min']:.0f} MB = {ratio:.2f}x",
                        "met": ratio <= TARGET_MEMORY_RATIO})
    return out


def summary_table(report: dict) -> list[str]:
    """Per model: speed, memory, MACs, accuracy side by side (README's table)."""
    lines = ["| model | best end to end, tags + events (x real time) | peak memory, 1 h file (MB) | MACs per 10 s (G) "
             "| parameters (M) | test mAP | test PSDS1 |", "|---|---|---:|---:|---:|---:|---:|"]
    for model in MODELS:
        best = best_e2e(report, model)
        mem = {r["file"]: r["peak_rss_mb"] for r in report["memory"][model]}
        acc = report["accuracy"].get(model, {})
        fmt = (lambda v: "–" if v is None else f"{100 * v:.1f}")
        lines.append(f"| {model} | {best['e2e_x_real_time']:.0f}x ({best['backend']}, batch {best['batch']}) | "
                     f"{mem.get('1 h', mem.get('10 min', float('nan'))):.0f} | "
                     f"{report['cost'][model]['macs_per_10s'] / 1e9:.2f} | "
                     f"{report['cost'][model]['parameters'] / 1e6:.2f} | {fmt(acc.get('mAP'))} | {fmt(acc.get('psds1'))} |")
    return lines


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# Deployment speed of the trained models (`benchmarks/deployment_speed.py`)", "",
             f"{m['cpu']}, {m['cpus']} CPU cores, torch {m['torch']} ({m['torch_threads']} threads); load average "
             f"{m['load_before']:.1f} before, {m['load_after']:.1f} after. Models: the seed-0 trials of "
             "`recipes/soundscapes/distill.py`; accuracy: its paired test_final trials (mean). 10 s clips, WAV files "
             f"at each model's sample rate; throughput: best of {report['repeats']} repeats; ratio: median over repeats of back-to-back "
             "end-to-end / bare.", "", *summary_table(report), "",
             "| model | backend | batch | bare forward (x RT) | end to end, tags + events (x RT) | ratio to bare | "
             "events/clip | clip tags only (x RT) | ratio to bare |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["throughput"]:
        lines.append(f"| {r['model']} | {r['backend']} | {r['batch']} | {r['bare_x_real_time']:.0f} | "
                     f"{r['e2e_x_real_time']:.0f} | {r['e2e_over_bare']:.2f} | {r['events_per_clip']:.1f} | "
                     f"{r['e2e_tags_only_x_real_time']:.0f} | {r['e2e_tags_only_over_bare']:.2f} |")
    lines += ["", "Peak memory tagging one long file (PyTorch, 44.1 kHz WAV, default chunks):", "",
              "| model | " + " | ".join(r["file"] for r in next(iter(report["memory"].values()))) + " |",
              "|---|" + "---:|" * len(next(iter(report["memory"].values())))]
    for model, rows in report["memory"].items():
        lines.append(f"| {model} | " + " | ".join(f"{r['peak_rss_mb']:.0f} MB" for r in rows) + " |")
    lines += ["", "int8 (onnxruntime dynamic quantisation) against the float export, test_final, `weaktag evaluate "
              "--onnx`:", "", "| model | trial | float mAP | int8 mAP | drop (points) | float PSDS1 | int8 PSDS1 |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for model, trials in report["int8"].items():
        for seed, r in enumerate(trials):
            f, q = r["onnxruntime"], r["onnxruntime-int8"]
            ps = (lambda v: "–" if v is None else f"{100 * v:.1f}")
            lines.append(f"| {model} | seed {seed} | {100 * f['mAP']:.2f} | {100 * q['mAP']:.2f} | "
                         f"{r['map_drop_points']:+.2f} | {ps(f['psds1'])} | {ps(q['psds1'])} |")
    lines += ["", "Targets:", ""]
    for t in targets(report):
        lines.append(f"- {t['target']}: {t['measured']} -> **{'met' if t['met'] else 'MISSED'}**")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat, no 1 h file")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the JSON")
    parser.add_argument("--out", default=str(speed.RESULTS))
    args = parser.parse_args()
    out = Path(args.out)
    path = out / "deployment_speed.json"
    if args.markdown_only:
        report = json.loads(path.read_text())
        report["accuracy"] = distill_accuracy() or report["accuracy"]
    else:
        report = run(args)
    report["targets"] = targets(report)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    text = to_markdown(report)
    (out / "deployment_speed.md").write_text(text)
    # README's table (recipes/soundscapes/tables.py fills it from this file)
    (out / "deployment_summary.md").write_text("\n".join(summary_table(report)) + "\n")
    print(text)


if __name__ == "__main__":
    main()
