"""torch threads on this CPU: B-scans per second on the sample scan at the count octfluid chooses
(``devices.choose_threads``, for the command line and, in their worker, the widgets alike), and every count from 1
to the CPUs this process has, in rounds that interleave the counts so that a change of load (other programs) hits
every count alike.

    python benchmarks/bench_threads.py [--rounds 3] [--weights PATH] [--batch-size 4]

Prints figures; asserts nothing (a shared machine's load changes by the minute: compare within one run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from napari_octfluid._sample_data import SAMPLE_SCAN
from napari_octfluid.devices import choose_threads, free_cores, usable_cpus
from napari_octfluid.events import run_to_end
from napari_octfluid.inference import predict
from napari_octfluid.io import read_volume
from napari_octfluid.model import load_model
from napari_octfluid.weights import default_weights_path


def bscans_per_second(model, volume, threads: int, batch_size: int) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    run_to_end(predict(volume, model, "cpu", batch_size))
    return len(volume) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    model, _ = load_model(args.weights or default_weights_path())
    volume = read_volume(SAMPLE_SCAN).data
    counts = list(range(1, len(usable_cpus()) + 1))
    print(f"sample: {volume.shape[0]} x {volume.shape[1]} x {volume.shape[2]}, batch {args.batch_size}, cpu only")
    print(f"torch's default: {torch.get_num_threads()} threads; CPUs this process may use: {len(counts)}")
    bscans_per_second(model, volume[: args.batch_size], 1, args.batch_size)  # warm-up
    rates: dict[int, list[float]] = {count: [] for count in counts}
    chosen: list[tuple[int, float]] = []
    for round_number in range(1, args.rounds + 1):
        free = free_cores()
        command_line = choose_threads()
        print(f"round {round_number}: {free:.2f} cores free; threads chosen: {command_line}")
        for count in counts:
            rates[count].append(bscans_per_second(model, volume, count, args.batch_size))
            print(f"  {count} thread(s): {rates[count][-1]:.2f} B-scans/s")
        chosen.append((command_line, rates[command_line][-1]))
    print("median over rounds:")
    for count in counts:
        print(f"  {count} thread(s): {statistics.median(rates[count]):.2f} B-scans/s")
    mean = statistics.mean(rate for _, rate in chosen)
    print(f"  octfluid's choice ({', '.join(str(count) for count, _ in chosen)} threads): {mean:.2f} B-scans/s")


if __name__ == "__main__":
    main()
