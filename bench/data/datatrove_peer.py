#!/usr/bin/env python3
"""Run HuggingFace datatrove's quality filters as a peer benchmark for the Nexa Forge data engine.

This file contains no datatrove code. It imports datatrove from a source tree given with
--datatrove-src DIR (DIR/src goes on sys.path) and drives its filters over a JSONL corpus,
the way /work/shared/fixtures/data/RESULTS.md section 2 describes the reference measurement:

- single process; each filter is called through ``filter()`` on a fresh ``Document`` holding the
  doc's original text;
- ``datatrove.utils.text.split_into_parts`` (lru_cache(5)) is cleared before each doc in the
  single-filter stages, so every filter pays for its own tokenization;
- ``fineweb_chain`` is examples/fineweb.py's order GopherRepetition -> GopherQuality -> C4 ->
  FineWebQuality; documents flow through it, C4's text edits are passed on, the cache is left on,
  and the verdict is "<filter>:<reason>" of the first filter that drops the doc;
- ``c4`` uses FineWeb's settings, ``C4QualityFilter(filter_no_terminal_punct=False)``;
- only the filter loop is timed (time.perf_counter / time.process_time): reading the JSONL,
  importing datatrove, building the filters and spaCy's lazy ``blank("en")`` pipeline are not.

Output: one JSON object on stdout
  {"stage", "docs", "mb", "seconds", "mb_per_s", "cpu_seconds", "datatrove_commit", ...}
and, with --verdicts OUT.jsonl, one row per doc in golden_filters.jsonl's format:
  {"id": ..., "<stage>": true | "<reason>"}  (+ "c4_text_sha256" for the c4 stage when C4 kept the
  doc and changed its text).

Example:
  /tmp/dt-venv/bin/python bench/data/datatrove_peer.py --datatrove-src /tmp/datatrove-src \
      --corpus packages/data/test/fixtures/datatrove/corpus_sample.jsonl --stage gopher_quality \
      --verdicts /tmp/dt_gopher_quality.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata  # noqa: F401  (datatrove's _import_utils relies on importlib submodules being loaded)
import importlib.util  # noqa: F401
import json
import os
import subprocess
import sys
import time

STAGES = ("gopher_quality", "gopher_repetition", "c4", "fineweb", "fineweb_chain")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datatrove-src", required=True, help="datatrove source checkout; DIR/src is put on sys.path")
    p.add_argument("--corpus", required=True, help="JSONL corpus (fields: text, id)")
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--verdicts", help="write one JSON row per doc here")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id")
    p.add_argument("--limit", type=int, default=0, help="only the first N docs (0 = all)")
    p.add_argument(
        "--golden",
        help="golden_filters.jsonl: report agreement of this stage's verdicts (and c4_text_sha256 for c4) with it",
    )
    return p.parse_args(argv)


def datatrove_commit(src_dir: str) -> str:
    """The checkout's HEAD if DIR is the top of a git checkout, else the content of DIR/DATATROVE_COMMIT, else 'unknown'."""
    try:
        # Only DIR's own repository: git -C would also answer for a repository DIR happens to sit in.
        out = subprocess.run(
            ["git", "-C", src_dir, "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        lines = out.stdout.split()
        if out.returncode == 0 and len(lines) == 2 and os.path.realpath(lines[0]) == os.path.realpath(src_dir):
            return lines[1]
    except (OSError, subprocess.SubprocessError):
        pass
    marker = os.path.join(src_dir, "DATATROVE_COMMIT")
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            return f.read().strip()
    return "unknown"


def load_corpus(path: str, text_field: str, id_field: str, limit: int):
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            docs.append((str(row[id_field]), row[text_field]))
            if limit and len(docs) >= limit:
                break
    return docs


def verdict(result) -> bool | str:
    """datatrove filters return True, False or (False, reason)."""
    if isinstance(result, tuple):
        ok, reason = result
        return True if ok else (reason if reason else False)
    return bool(result)


def main(argv=None) -> int:
    args = parse_args(argv)
    src = os.path.abspath(args.datatrove_src)
    sys.path.insert(0, os.path.join(src, "src"))

    docs = load_corpus(args.corpus, args.text_field, args.id_field, args.limit)
    total_bytes = sum(len(t.encode("utf-8")) for _, t in docs)

    # --- imports and construction: not timed ---
    from datatrove.data import Document
    from datatrove.pipeline.filters.c4_filters import C4QualityFilter
    from datatrove.pipeline.filters.fineweb_quality_filter import FineWebQualityFilter
    from datatrove.pipeline.filters.gopher_quality_filter import GopherQualityFilter
    from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter
    from datatrove.utils import text as dt_text

    clear_cache = getattr(getattr(dt_text, "split_into_parts", None), "cache_clear", lambda: None)

    def make(name):
        if name == "gopher_quality":
            return GopherQualityFilter()
        if name == "gopher_repetition":
            return GopherRepetitionFilter()
        if name == "c4":
            return C4QualityFilter(filter_no_terminal_punct=False)  # FineWeb's settings (examples/fineweb.py)
        if name == "fineweb":
            return FineWebQualityFilter()
        raise ValueError(name)

    chain_order = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
    names = chain_order if args.stage == "fineweb_chain" else (args.stage,)
    filters = [(n, make(n)) for n in names]
    # spaCy's blank("en") + sentencizer is built lazily on first use; build it outside the timed loop.
    for _, flt in filters:
        tok = getattr(flt, "tokenizer", None)
        if tok is not None and hasattr(tok, "tokenizer"):
            tok.tokenizer  # noqa: B018

    results: list[dict] = []
    append = results.append

    # --- timed loop ---
    if args.stage == "fineweb_chain":
        clear_cache()
        t0, c0 = time.perf_counter(), time.process_time()
        for doc_id, text in docs:
            doc = Document(text=text, id=doc_id)
            out = True
            for name, flt in filters:
                v = verdict(flt.filter(doc))
                if v is not True:
                    out = f"{name}:{v}"
                    break
            append({"id": doc_id, "fineweb_chain": out})
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    else:
        (name, flt), = filters
        is_c4 = name == "c4"
        t0, c0 = time.perf_counter(), time.process_time()
        for doc_id, text in docs:
            clear_cache()
            doc = Document(text=text, id=doc_id)
            v = verdict(flt.filter(doc))
            row = {"id": doc_id, name: v}
            if is_c4 and v is True and doc.text != text:
                row["c4_text_sha256"] = doc.text  # hashed after the timed loop
            append(row)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if is_c4:
            for row in results:
                if "c4_text_sha256" in row:
                    row["c4_text_sha256"] = hashlib.sha256(row["c4_text_sha256"].encode("utf-8")).hexdigest()

    if args.verdicts:
        with open(args.verdicts, "w", encoding="utf-8") as f:
            for row in results:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    kept = sum(1 for r in results if r[args.stage] is True)
    mb = total_bytes / 1e6
    report = {
        "stage": args.stage,
        "docs": len(docs),
        "kept": kept,
        "mb": round(mb, 6),
        "seconds": round(seconds, 3),
        "mb_per_s": round(mb / seconds, 3) if seconds > 0 else None,
        "cpu_seconds": round(cpu, 3),
        "docs_per_s": round(len(docs) / seconds, 1) if seconds > 0 else None,
        "datatrove_commit": datatrove_commit(src),
        "python": sys.version.split()[0],
        "spacy": _version("spacy"),
        "corpus": os.path.abspath(args.corpus),
    }
    if args.golden:
        report["agreement"] = compare_golden(results, args.golden, args.stage)
    print(json.dumps(report))
    return 0


def compare_golden(results: list[dict], golden_path: str, stage: str) -> dict:
    golden = {}
    with open(golden_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                golden[str(row["id"])] = row
    same, diffs, missing = 0, [], 0
    for row in results:
        g = golden.get(row["id"])
        if g is None or stage not in g:
            missing += 1
            continue
        ok = g[stage] == row[stage]
        if ok and stage == "c4":
            ok = g.get("c4_text_sha256") == row.get("c4_text_sha256")
        if ok:
            same += 1
        else:
            diffs.append({"id": row["id"], "ours": row[stage], "golden": g[stage]})
    return {"same": same, "compared": len(results) - missing, "missing": missing, "diffs": diffs[:20]}


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
