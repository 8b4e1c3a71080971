"""Loads a folder written by `nexa data pack` (npy format) with numpy, memory-mapped, and checks it.

    NEXA_PACKED_DIR=path/to/packed python -m pytest packages/data/test/python

The Vitest suite (packages/data/test/tokenize/pack-dataset.test.ts) packs a fixture and runs this with the
interpreter in NEXA_PYTHON. Without NEXA_PACKED_DIR the test is skipped.
"""
import json
import os

import numpy as np
import pytest

DIR = os.environ.get("NEXA_PACKED_DIR")


@pytest.mark.skipif(not DIR, reason="NEXA_PACKED_DIR not set")
def test_packed_folder_loads_with_numpy():
    manifest = json.load(open(os.path.join(DIR, "manifest.json"), encoding="utf-8"))
    n, seq_len = manifest["sequences"], manifest["seq_len"]
    arrays = {name: np.load(os.path.join(DIR, f"{name}.npy"), mmap_mode="r") for name in ("input_ids", "labels", "position_ids")}
    for name, a in arrays.items():
        assert a.dtype == np.int32, name
        assert a.shape == (n, seq_len), name
        assert a.flags["C_CONTIGUOUS"], name
    cu = np.load(os.path.join(DIR, "cu_seqlens.npy"), mmap_mode="r")
    offsets = np.load(os.path.join(DIR, "cu_seqlens_offsets.npy"), mmap_mode="r")
    assert cu.dtype == np.int32 and cu.ndim == 1
    assert offsets.dtype == np.int64 and offsets.shape == (n + 1,)
    assert offsets[0] == 0 and offsets[-1] == cu.shape[0]

    ids, labels, pos = arrays["input_ids"], arrays["labels"], arrays["position_ids"]
    real = 0
    for i in range(n):
        b = np.asarray(cu[offsets[i]:offsets[i + 1]])
        assert b[0] == 0 and np.all(np.diff(b) > 0) and b[-1] <= seq_len
        # position ids restart at every document boundary: they are 0 exactly at the boundaries (and at the padding start)
        starts = set(np.flatnonzero(pos[i] == 0).tolist())
        assert set(b[:-1].tolist()) <= starts
        assert starts - set(b[:-1].tolist()) <= {int(b[-1])}
        assert np.all(labels[i, b[-1]:] == -100)
        assert np.all(labels[i, b[:-1]] == -100)
        trained = labels[i, : b[-1]] != -100
        assert np.all(labels[i, : b[-1]][trained] == ids[i, : b[-1]][trained])
        real += int(b[-1])
    assert real == manifest["tokens"]
    assert abs(manifest["efficiency"] - real / (n * seq_len)) < 1e-9
    assert int((labels != -100).sum()) == manifest["trained_tokens"]
