/** Tokenize, format (chat templates) and pack: training-ready sequences from any dataset. */
export { TokenizeError, type TokenizeErrorCode } from "./tokenize-error.js";
export type { EncodeOptions, TextTokenizer } from "./text-tokenizer.js";
export { TIKTOKEN_ENCODINGS, TiktokenTokenizer, type TiktokenEncodingName } from "./tiktoken-tokenizer.js";
export { HfTokenizer } from "./hf-tokenizer.js";
export { loadTokenizer } from "./load-tokenizer.js";
export { CHATML_TEMPLATE, ChatTemplate, type ChatMessage } from "./chat-template.js";
export { FormatOptions, IGNORE_INDEX, RecordFormatter, type FormattedDoc, type ResolvedFormatOptions } from "./record-formatter.js";
export { PackerOptions, PackStrategy, SequencePacker, type PackedSequence, type PackStats, type ResolvedPackerOptions } from "./sequence-packer.js";
export { NpyWriter, readNpy, type NpyData, type NpyDtype } from "./npy-file.js";
export { PACKED_FILES, PackDatasetOptions, packDataset, type PackManifest, type PackProgress } from "./pack-dataset.js";
export { jsonlLineBatches, type SourceDigest } from "./jsonl-lines.js";
export { processBatch, type LineBatch, type TokenizedBatch } from "./record-batch.js";
export { TokenizePool, tokenizeWorkerPath } from "./tokenize-pool.js";
