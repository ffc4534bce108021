"""Load torch's large shared libraries without holding Python's interpreter lock, before the warm-up imports torch.

Python loads an extension module (``torch._C``) with the interpreter lock held, and the dynamic loader then maps
libtorch_cpu and runs its static initialisers (every operator registers itself): 0.3-0.4 s on a 2-core CPU during
which no other thread runs Python, napari's interface thread included (measured: the event loop stalled 374-400 ms
while a background thread imported torch, 100 ms with these libraries loaded first). A call through ``ctypes``
releases the lock, so ``dlopen`` made through ``ctypes`` does the same loading while the interface runs on; the
import then finds the libraries loaded. The flags are the ones Python's own import uses (``RTLD_NOW``, local
symbols), so nothing becomes visible to other libraries that torch's import would not have made visible.

libtorch_python is left to the import: its loading is short, and it is the library that talks to Python.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

# in the order the loader needs them (each depends on the ones before); a CUDA build's libraries where present
LIBRARIES = ("libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so")


def preload_torch_libraries() -> list[str]:
    """Load torch's shared libraries with the interpreter lock released (Linux only; elsewhere, or if torch is
    absent or a library does not load, nothing happens and the import loads them as usual). Returns the names
    loaded."""
    if not sys.platform.startswith("linux") or "torch" in sys.modules:
        return []
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "lib"
    try:
        dlopen = ctypes.CDLL(None).dlopen
    except (OSError, AttributeError):  # a C library without dlopen among its symbols (not glibc, not musl)
        return []
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    loaded = []
    for name in LIBRARIES:
        path = folder / name
        # ctypes releases the interpreter lock for the call; a failure (NULL) leaves the loading to the import
        if path.is_file() and dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL):
            loaded.append(name)
    return loaded
