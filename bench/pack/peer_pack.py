"""Peer side of bench/pack: TRL's pack_dataset ("bfd", "wrapped") on the same document lengths.

usage: python peer_pack.py LENGTHS.json SEQ_LEN   → JSON {strategy: {sequences, tokens, efficiency, seconds}}
Efficiency = real tokens / (packed rows × seq_len), i.e. what a collator padding every row to seq_len feeds the GPU.
"""
import json
import sys
import time

import datasets
from datasets import Dataset
from trl import __version__ as trl_version
from trl.data_utils import pack_dataset

datasets.disable_progress_bars()
lengths = json.load(open(sys.argv[1]))
seq_len = int(sys.argv[2])
ds = Dataset.from_dict({"input_ids": [[1] * n for n in lengths]})
out = {"trl": trl_version, "datasets": datasets.__version__}
for strategy in ("bfd", "wrapped"):
    t0 = time.perf_counter()
    packed = pack_dataset(ds, seq_len, strategy=strategy)
    secs = time.perf_counter() - t0
    tokens = sum(len(x) for x in packed["input_ids"])
    out[strategy] = {"sequences": len(packed), "tokens": tokens, "efficiency": tokens / (len(packed) * seq_len), "seconds": secs}
print(json.dumps(out))
