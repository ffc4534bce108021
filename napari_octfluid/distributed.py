"""Running as one of several processes started by ``torchrun`` (torch.distributed): which process this is, and the
process group the processes share.

``torchrun`` starts one process per GPU (or per share of a CPU) and tells each who it is through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, and ``MASTER_ADDR``/``MASTER_PORT`` for the rendezvous); a process started
any other way is the only one (rank 0 of 1) and needs no process group: every method here then does the work of one
process without communicating, so callers need no second code path.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import torch

Item = TypeVar("Item")


class DistributedSetupError(RuntimeError):
    """The environment that torchrun sets is incomplete or contradicts itself."""


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the processes of one run: ``rank`` of ``world_size`` in all, ``local_rank`` on
    its machine (which GPU it takes)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> "DistributedContext":
        """The context torchrun describes in the environment; one process alone when ``RANK`` and ``WORLD_SIZE``
        are not both set."""
        environment = os.environ if environment is None else environment
        if "RANK" not in environment or "WORLD_SIZE" not in environment:
            return cls()
        try:
            rank, world_size = int(environment["RANK"]), int(environment["WORLD_SIZE"])
            local_rank = int(environment.get("LOCAL_RANK", rank))
        except ValueError as error:
            raise DistributedSetupError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers: {error}") from None
        if not (world_size >= 1 and 0 <= rank < world_size and 0 <= local_rank <= rank):
            raise DistributedSetupError(
                f"RANK {rank}, LOCAL_RANK {local_rank} and WORLD_SIZE {world_size} do not fit together: start "
                "several processes with torchrun, which sets them."
            )
        return cls(rank, world_size, local_rank)

    @property
    def active(self) -> bool:
        """Whether there are other processes to work with (torchrun with one process is a plain run)."""
        return self.world_size > 1

    @property
    def is_distributed(self) -> bool:
        """The same as :attr:`active`."""
        return self.active

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports progress and writes the results."""
        return self.rank == 0

    def describe(self) -> str:
        return f"process {self.rank + 1} of {self.world_size}"

    def device(self, device: torch.device | str) -> torch.device:
        """The device this process works on: ``device`` (a torch device, or a choice such as "auto" that
        :func:`~napari_octfluid.devices.resolve_device` resolves), on this process's own GPU (by ``local_rank``) when
        it is CUDA and several processes share the machine's GPUs."""
        if isinstance(device, str):
            from .devices import resolve_device

            device = resolve_device(device)
        if self.active and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def init(self, device: torch.device | str | None = None, timeout: timedelta | None = None) -> None:
        """Join the process group (env:// rendezvous, as torchrun sets it up): NCCL for CUDA tensors, gloo for
        CPU ones. Nothing to do for one process, or when the group is already set up."""
        if not self.active or torch.distributed.is_initialized():
            return
        if device is None:
            device_type = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            device_type = self.device(device).type
        if device_type == "cuda":
            torch.cuda.set_device(self.local_rank)  # NCCL expects each process on its own GPU
        options = {} if timeout is None else {"timeout": timeout}
        backend = "nccl" if device_type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, rank=self.rank, world_size=self.world_size, **options)

    def close(self) -> None:
        """Leave the process group (safe to call when it was never set up)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    @contextlib.contextmanager
    def process_group(self, device: torch.device | str | None = None, timeout: timedelta | None = None) -> Iterator:
        """The process group for the time of a ``with`` block (:meth:`init`), left at its end, also on an error."""
        self.init(device, timeout)
        try:
            yield self
        finally:
            self.close()

    def shard(self, items: Sequence[Item]) -> list[Item]:
        """This process's share of ``items``: ``rank``, ``rank + world_size``, ... (all of them for one process)."""
        return list(items[self.rank :: self.world_size])

    def run_on_main(self, work: Callable[[], Item]) -> Item:
        """``work()`` done once, by rank 0, and its result (picklable) handed to every process."""
        if not self.active:
            return work()
        result = [work() if self.is_main else None]
        torch.distributed.broadcast_object_list(result, src=0)
        return result[0]

    def all_gather_object(self, value: Any) -> list[Any]:
        """``value`` of every process (picklable), in rank order."""
        if not self.active:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.active:
            torch.distributed.barrier()
