#!/usr/bin/env python3
"""How the data files of this example were made (they are committed; running this is not needed).

    python prepare.py /path/to/corpus_sample.jsonl

Reads the fixture corpus sample (documents recorded from text that ships with Debian 12) and keeps
its public-domain part: chapters of the King James Bible and two letters of Ambrose Bierce's
"The Devil's Dictionary". Malachi 1-4 are held out of the training corpus: their verses become the
eval set (the first words of a verse are the prompt, the rest of the verse is the reference).
Then trains a 2,048-token byte-level BPE (Hugging Face `tokenizers`) on the training corpus only.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELD_OUT = ("kjv/Mal1", "kjv/Mal2", "kjv/Mal3", "kjv/Mal4")
EVAL_SAMPLES = 24


def main(sample: str) -> None:
    docs = [json.loads(line) for line in open(sample, encoding="utf-8")]
    keep = [d for d in docs if d["id"].startswith(("kjv/", "devil/"))]
    train = [d for d in keep if d["id"] not in HELD_OUT]
    held = [d for d in keep if d["id"] in HELD_OUT]
    with open(os.path.join(HERE, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d in train:
            f.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")

    rows = []
    for d in held:
        for line in d["text"].splitlines():
            words = line.split()
            # "12 And ye shall ...": keep the verse number and the next six words as the prompt.
            if len(words) < 14 or not words[0].isdigit():
                continue
            rows.append({"id": f"{d['id']}:{words[0]}", "prompt": " ".join(words[:7]), "answer": " ".join(words[7:])})
    step = max(1, len(rows) // EVAL_SAMPLES)
    rows = rows[::step][:EVAL_SAMPLES]
    with open(os.path.join(HERE, "eval.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator((d["text"] for d in train), trainer=trainer)
    tok.save(os.path.join(HERE, "tokenizer.json"))
    print(f"{len(train)} training documents, {sum(len(d['text']) for d in train)} characters; {len(rows)} eval rows; vocab {tok.get_vocab_size()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "data", "corpus_sample.jsonl"))
