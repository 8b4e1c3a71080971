import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizer } from "./load-tokenizer.js";
import { processBatch, type LineBatch } from "./record-batch.js";
import { RecordFormatter, type FormatOptions } from "./record-formatter.js";
import { TokenizeError } from "./tokenize-error.js";

/** What {@link TokenizePool} passes to each worker thread. */
export interface TokenizeWorkerData {
  tokenizer: string;
  format: FormatOptions;
  seqLen?: number;
}

const port = parentPort;
if (port) {
  const data = workerData as TokenizeWorkerData;
  const ready = loadTokenizer(data.tokenizer).then((tok) => new RecordFormatter(tok, data.format));
  port.on("message", (batch: LineBatch) => {
    ready
      .then((formatter) => {
        const out = processBatch(formatter, batch, data.seqLen);
        port.postMessage({ ok: out }, [out.ids.buffer as ArrayBuffer, out.labels.buffer as ArrayBuffer, out.offsets.buffer as ArrayBuffer]);
      })
      .catch((err: unknown) => {
        const e = err instanceof TokenizeError ? err : new TokenizeError("record_invalid", (err as Error).message ?? String(err));
        port.postMessage({ fail: { seq: batch.seq, error: { code: e.code, message: e.message, record: e.record } } });
      });
  });
}
