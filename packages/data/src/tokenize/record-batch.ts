import type { RecordFormatter } from "./record-formatter.js";
import { TokenizeError } from "./tokenize-error.js";

/** A batch of raw JSONL lines from one file. */
export interface LineBatch {
  seq: number;
  file: string;
  /** 1-based line number of `lines[0]`. */
  firstLine: number;
  lines: string[];
}

/** Tokenized documents of a batch, flat so they can be transferred between threads without copying. */
export interface TokenizedBatch {
  seq: number;
  ids: Int32Array;
  labels: Int32Array;
  /** `offsets[i]..offsets[i+1]` is document i. */
  offsets: Int32Array;
  /** Bytes of the `lines` (UTF-16 length, as a progress measure). */
  chars: number;
}

/** A failure inside a batch, passed back from a worker thread. */
export interface BatchFailure {
  seq: number;
  error: { code: TokenizeError["code"]; message: string; record?: string };
}

/**
 * Parses and formats the lines of a batch (blank lines are skipped). `minChatLen`: a chat record whose
 * template alone needs this many tokens cannot fit a sequence, which is an error naming the record.
 */
export function processBatch(formatter: RecordFormatter, batch: LineBatch, seqLen?: number): TokenizedBatch {
  const docs: { ids: Int32Array; labels: Int32Array }[] = [];
  let chars = 0;
  let total = 0;
  const overhead = seqLen === undefined ? undefined : formatter.templateOverhead();
  batch.lines.forEach((line, i) => {
    chars += line.length + 1;
    if (line.trim().length === 0) return;
    const where = `${batch.file}:${batch.firstLine + i}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      throw new TokenizeError("record_invalid", `is not valid JSON (${(err as Error).message}). Fix: one JSON object per line`, { record: where, cause: err });
    }
    if (seqLen !== undefined && overhead !== undefined && overhead >= seqLen && record && typeof record === "object" && formatter.options.messagesField in record) {
      throw new TokenizeError(
        "seq_len_too_small",
        `--seq-len ${seqLen} is too small: the chat template alone takes ${overhead} tokens. Fix: raise --seq-len above ${overhead}`,
        { record: where },
      );
    }
    const doc = formatter.format(record, where);
    docs.push(doc);
    total += doc.ids.length;
  });
  const ids = new Int32Array(total);
  const labels = new Int32Array(total);
  const offsets = new Int32Array(docs.length + 1);
  let at = 0;
  docs.forEach((d, i) => {
    ids.set(d.ids, at);
    labels.set(d.labels, at);
    at += d.ids.length;
    offsets[i + 1] = at;
  });
  return { seq: batch.seq, ids, labels, offsets, chars };
}
