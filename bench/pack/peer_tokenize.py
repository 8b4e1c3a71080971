"""Peer side of bench/pack: Python tiktoken and Hugging Face tokenizers throughput on the same corpus.

usage: RAYON_NUM_THREADS=N python peer_tokenize.py CORPUS.jsonl --threads N --npm-encoders DIR --hf name=tokenizer.json ...
Prints one JSON object on stdout. Only encode calls are timed; each measurement is the fastest of --reps passes (as in the shared RESULTS.md methodology),
by wall clock (MB_per_s) and by process CPU time (MB_per_cpu_s: throughput per core, less sensitive to a busy machine):
1 thread: tiktoken encode_ordinary per doc; HF encode_batch in batches of 256.
N threads: tiktoken encode_ordinary_batch(num_threads=N); HF encode_batch with RAYON_NUM_THREADS=N.
The .tiktoken rank files are rebuilt offline from the npm `tiktoken` package's ranks and checked against
OpenAI's published SHA-256 before use.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

EXPECTED = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}


def build_cache(npm_dir):
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or tempfile.mkdtemp(prefix="tiktoken-cache-")
    for name, exp in EXPECTED.items():
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        path = os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())
        if os.path.exists(path):
            continue
        d = json.load(open(os.path.join(npm_dir, f"{name}.json")))
        ranks = {}
        for line in d["bpe_ranks"].split("\n"):
            if not line:
                continue
            _, off, *toks = line.split(" ")
            for i, t in enumerate(toks):
                ranks[t] = int(off) + i
        body = "".join(f"{t} {r}\n" for t, r in sorted(ranks.items(), key=lambda kv: kv[1])).encode()
        if hashlib.sha256(body).hexdigest() != exp:
            sys.exit(f"rebuilt {name} ranks do not match OpenAI's sha256")
        open(path, "wb").write(body)
    os.environ["TIKTOKEN_CACHE_DIR"] = cache


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--npm-encoders", required=True)
    ap.add_argument("--hf", action="append", default=[])
    ap.add_argument("--reps", type=int, default=3, help="passes per measurement; the fastest is reported")
    args = ap.parse_args()
    build_cache(args.npm_encoders)
    import tiktoken
    import tokenizers
    from tokenizers import Tokenizer

    texts = [json.loads(l)["text"] for l in open(args.corpus, encoding="utf-8") if l.strip()]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    out = {"tiktoken": tiktoken.__version__, "tokenizers": tokenizers.__version__, "threads": args.threads, "bytes": nbytes, "runs": {}}
    for name in ("cl100k_base", "o200k_base"):
        enc = tiktoken.get_encoding(name)
        enc.encode_ordinary("warm up 123 !!")
        best = best_cpu = None
        for _ in range(args.reps):
            c0 = time.process_time()
            if args.threads == 1:
                tokens, secs = 0, 0.0
                for t in texts:
                    t0 = time.perf_counter()
                    tokens += len(enc.encode_ordinary(t))
                    secs += time.perf_counter() - t0
            else:
                t0 = time.perf_counter()
                tokens = sum(len(x) for x in enc.encode_ordinary_batch(texts, num_threads=args.threads))
                secs = time.perf_counter() - t0
            cpu = time.process_time() - c0
            best = secs if best is None else min(best, secs)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        out["runs"][f"tiktoken/{name}"] = {"tokens": tokens, "seconds": best, "MB_per_s": nbytes / 1e6 / best, "cpu_seconds": best_cpu, "MB_per_cpu_s": nbytes / 1e6 / best_cpu}
    for spec in args.hf:
        name, path = spec.split("=", 1)
        tok = Tokenizer.from_file(path)
        tok.encode_batch(["warm up"])
        best = best_cpu = None
        for _ in range(args.reps):
            tokens, secs = 0, 0.0
            c0 = time.process_time()
            for i in range(0, len(texts), 256):
                t0 = time.perf_counter()
                encs = tok.encode_batch(texts[i:i + 256])
                secs += time.perf_counter() - t0
                tokens += sum(len(e.ids) for e in encs)
            cpu = time.process_time() - c0
            best = secs if best is None else min(best, secs)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        out["runs"][f"hf/{name}"] = {"tokens": tokens, "seconds": best, "MB_per_s": nbytes / 1e6 / best, "cpu_seconds": best_cpu, "MB_per_cpu_s": nbytes / 1e6 / best_cpu}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
