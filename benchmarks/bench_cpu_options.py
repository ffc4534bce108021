"""CPU inference options tried for issue 22, side by side: the network's forward pass on a batch of the sample scan.

    python benchmarks/bench_cpu_options.py [--threads 1] [--batch 4] [--rounds 7] [--compile]

Each variant runs the same batch (the first ``--batch`` B-scans of the sample scan, normalised), interleaved round
by round; printed: B-scans per second of wall-clock time and per second of CPU time (the steadier figure on a
shared machine, with one thread), the median of the per-round speed-ups against prediction before issue 22, and the
pixels whose mask (at the model's decision threshold) differs from it. Variants:

- ``before``: the network as it was (``nn.ConvTranspose2d`` upsamplers), run as it is;
- ``inference copy``: what ``inference.predict`` runs now (``model.fused_for_inference``: BatchNorm folded,
  channels_last, upsamplers folded into the decoder's convolutions, ReLU fused into the convolutions);
- ``+ jit.freeze``: that copy traced, frozen and ``torch.jit.optimize_for_inference``-d (for one B-scan size);
- ``+ bf16 autocast``: that copy under ``torch.autocast("cpu", torch.bfloat16)`` (oneDNN's bf16 kernels);
- ``+ mkldnn off``: that copy with ``torch.backends.mkldnn`` disabled;
- ``+ torch.compile`` (with ``--compile``): inductor, compiled for this B-scan size (the compile time is printed, and
  whether a second size compiles).

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import warnings

import torch
from bench_inference import old_model_of

from napari_octfluid._malloc import tune_glibc_malloc
from napari_octfluid._sample_data import SAMPLE_SCAN
from napari_octfluid.inference import labels_and_fluid
from napari_octfluid.io import read_volume
from napari_octfluid.model import fused_for_inference, load_model
from napari_octfluid.preprocess import normalize_bscans
from napari_octfluid.weights import default_weights_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compile", action="store_true", help="also torch.compile (tens of seconds)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # said by torch.backends.mkldnn.flags on every entry, about Intel GPUs
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
    tune_glibc_malloc()  # as inference.predict does
    model = load_model(args.weights or default_weights_path())[0]
    threshold = model.decision_threshold
    x = torch.from_numpy(normalize_bscans(read_volume(SAMPLE_SCAN).data[: args.batch])).unsqueeze(1)
    copy = fused_for_inference(model)
    variants = {
        "before": (old_model_of(model), contextlib.nullcontext),
        "inference copy": (copy, contextlib.nullcontext),
    }
    with torch.inference_mode():
        start = time.perf_counter()
        # traced with oneDNN's fused calls off (the tracer cannot type their empty argument lists): the trace then
        # holds each convolution and ReLU, which optimize_for_inference fuses itself
        with torch.backends.mkldnn.flags(enabled=False):
            traced = torch.jit.trace(copy, x, check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        print(f"jit trace + freeze + optimize_for_inference: {time.perf_counter() - start:.1f} s")
    variants["+ jit.freeze"] = (frozen, contextlib.nullcontext)
    variants["+ bf16 autocast"] = (copy, lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    variants["+ mkldnn off"] = (copy, lambda: torch.backends.mkldnn.flags(enabled=False))
    if args.compile:
        # a cold cache, as on a user's first run: inductor keeps compiled kernels on disk between runs
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="octfluid_inductor_")
        compiled = torch.compile(copy, dynamic=False)
        with torch.inference_mode():
            start = time.perf_counter()
            compiled(x)
            print(f"torch.compile, first B-scan size: {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            try:
                compiled(x[:, :, :480, :512])
                print(f"torch.compile, a second B-scan size: {time.perf_counter() - start:.1f} s more")
            except Exception as error:  # reported, not raised: the other variants still count
                print(f"torch.compile, a second B-scan size failed: {type(error).__name__}: {str(error)[:200]}")
        variants["+ torch.compile"] = (compiled, contextlib.nullcontext)

    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    labels = {}
    with torch.inference_mode():
        for name, (network, context) in variants.items():
            with context():
                labels[name] = labels_and_fluid(network(x).float(), threshold)[0]
        for round_index in range(args.rounds):
            order = list(variants.items())
            for name, (network, context) in order if round_index % 2 == 0 else reversed(order):
                with context():
                    started_wall, started_cpu = time.perf_counter(), time.process_time()
                    network(x)
                    wall[name].append(time.perf_counter() - started_wall)
                    cpu[name].append(time.process_time() - started_cpu)
    print(f"{args.threads} thread(s), batch {args.batch} of {tuple(x.shape[-2:])}, {args.rounds} rounds")
    for name in variants:
        speedup = statistics.median(before / this for before, this in zip(cpu["before"], cpu[name]))
        differing = int((labels[name] != labels["before"]).sum())
        print(
            f"{name:18s} {args.batch / statistics.median(wall[name]):6.2f} B-scans/s, "
            f"{args.batch / statistics.median(cpu[name]):6.2f} B-scans/CPU-s: {speedup:.3f}x in CPU time; "
            f"{differing} of {labels[name].numel():,} mask pixels differ from 'before'"
        )


if __name__ == "__main__":
    main()
