import {
  DEFAULT_PRICES,
  estimateTrainingMemory,
  ForgeError,
  formatDuration,
  gpuHourPrice,
  matchRequirements,
  modelParameterCount,
  modelShape,
  preflightTrainSpec,
  worstStatus,
  type Capabilities,
  type JobSubmission,
  type PreflightCheckReport,
  type PreflightEstimate,
  type PreflightMemory,
  type PreflightReport,
  type PriceTable,
  type Requirements,
  type TrainingMemoryEstimate,
  type TrainSpec,
} from "@nexa/core";
import type { Kysely } from "kysely";
import type { FileBlobStore } from "./blobs/file-blob-store.js";
import { json } from "./rows.js";
import type { Database } from "./store/index.js";
import type { WorkersTable } from "./store/schema.js";

/** What preflight reads: the store (blobs, artifacts, workers), the blob files and the price table. */
export interface PreflightDeps {
  db: Kysely<Database>;
  blobs: FileBlobStore;
  prices: PriceTable;
}

/** Bytes of a dataset read to check its records. */
const HEAD_BYTES = 1 << 20;
/** Records of a dataset checked at most. */
const HEAD_RECORDS = 1000;
/** Largest `tokenizer.json` parsed (real ones are 2–20 MB). */
const TOKENIZER_MAX_BYTES = 64 << 20;
/** Characters per token assumed for the dataset token count (OpenAI's rule of thumb for English under cl100k). */
const CHARS_PER_TOKEN = 4;
/**
 * Sustained training FLOP/s per CPU core assumed for CPU training (fp32 PyTorch, `6 · parameters`
 * FLOPs per token). Measured: 26 GFLOP/s per thread for the 1.1 M-parameter tiny GPT of
 * examples/tiny-gpt (2 threads, 8 × 128 tokens, AdamW) on the shared 2-core CI machine.
 */
const CPU_FLOPS_PER_CORE = 20e9;
/** Share of a worker's memory above which a fitting CPU estimate still warns (as the GPU check does). */
const TIGHT_FIT = 0.9;
const GIB = 1024 ** 3;

/**
 * tiktoken encodings the worker's data stage loads by name, with their vocabulary sizes (`n_vocab`).
 * The server may not import `@nexa/data` (DESIGN.md package map), so the list is repeated here.
 */
const TIKTOKEN_VOCAB: Readonly<Record<string, number>> = { cl100k_base: 100_277, o200k_base: 200_019 };
/** Roles the data stage accepts in a chat record (its default `roles`). */
const CHAT_ROLES = new Set(["system", "user", "assistant", "tool"]);
/** HF config fields the estimator reads, by family; the first name is the one to write. */
const SIZE_FIELDS = {
  gpt2: [["n_embd", "hidden_size"], ["n_layer", "num_hidden_layers"], ["n_head", "num_attention_heads"], ["vocab_size"], ["n_positions", "max_position_embeddings"], ["n_inner"]],
  llama: [["hidden_size"], ["num_hidden_layers"], ["num_attention_heads"], ["intermediate_size"], ["vocab_size"], ["num_key_value_heads"], ["head_dim"], ["max_position_embeddings"]],
} as const;
/** Fields a model type other than gpt2 / llama must give: the estimator's defaults are those two families'. */
const REQUIRED_OTHER = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"] as const;

const isDigest = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s);
const isArtifactId = (s: string) => /^art_[0-9A-Za-z]+$/.test(s);
const isRef = (s: string) => isDigest(s) || isArtifactId(s);
const gib = (bytes: number) => `${(bytes / GIB).toFixed(bytes < GIB ? 2 : 1)} GiB`;
const count = (n: number) => Math.round(n).toLocaleString("en-US");
const check = (name: string, status: PreflightCheckReport["status"], message: string, details?: Record<string, unknown>): PreflightCheckReport =>
  details === undefined ? { name, status, message } : { name, status, message, details };

/** A data reference resolved in an org: the blob it names, or why it names none. */
type Resolved = { ok: true; digest: string; size: number; via: string } | { ok: false; message: string };

async function resolveRef(deps: PreflightDeps, orgId: string, ref: string): Promise<Resolved> {
  let digest = ref;
  let via = ref;
  if (isArtifactId(ref)) {
    const art = await deps.db.selectFrom("artifacts").select(["digest", "name", "version"]).where("org_id", "=", orgId).where("id", "=", ref).executeTakeFirst();
    if (!art) return { ok: false, message: `artifact ${ref} not found` };
    digest = art.digest;
    via = `${ref} (${art.name} v${art.version})`;
  }
  const owned = await deps.db.selectFrom("blob_owners").select("digest").where("org_id", "=", orgId).where("digest", "=", digest).executeTakeFirst();
  // Another org's blob is reported exactly like a missing one: its existence is not revealed.
  const size = owned ? await deps.blobs.size(digest) : undefined;
  if (size === undefined) return { ok: false, message: `blob ${digest} not found${digest === ref ? "" : ` (named by ${ref})`}: upload it with PUT /v1/blobs` };
  return { ok: true, digest, size, via };
}

async function readHead(blobs: FileBlobStore, digest: string, size: number, limit: number): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of blobs.read(digest, { start: 0, end: Math.min(size, limit) - 1 })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What the dataset check learned: the token estimate and whether chat records need a template. */
interface DatasetFacts {
  tokens: number;
  chatRecords: number;
}

/**
 * The head of a JSONL dataset, checked the way the train data stage reads it: one JSON object per
 * line (blank lines skipped), each with a string `fields.text` or a non-empty `fields.messages`
 * list of `{role, content}` strings with a known role.
 */
async function checkDataset(deps: PreflightDeps, orgId: string, spec: TrainSpec): Promise<{ check: PreflightCheckReport; facts?: DatasetFacts }> {
  const r = await resolveRef(deps, orgId, spec.dataset);
  if (!r.ok) return { check: check("dataset", "fail", `input spec.dataset: ${r.message}`, { field: "spec.dataset", ref: spec.dataset }) };
  const head = await readHead(deps.blobs, r.digest, r.size, HEAD_BYTES);
  const where = { field: "spec.dataset", ref: spec.dataset, digest: r.digest };
  if (head.length === 0) return { check: check("dataset", "fail", `input spec.dataset (${r.via}) is empty: the train data stage needs JSONL records`, where) };
  if (head[0] === 0x1f && head[1] === 0x8b) {
    return { check: check("dataset", "fail", `input spec.dataset (${r.via}) is gzip-compressed: the train data stage reads plain JSONL; upload it decompressed`, where) };
  }
  const textField = spec.fields?.text ?? "text";
  const messagesField = spec.fields?.messages ?? "messages";
  const lines = new TextDecoder().decode(head).split("\n");
  const whole = head.length >= r.size;
  // A head that stops inside a line leaves a partial last line: not the record's fault.
  if (!whole) lines.pop();
  let text = 0;
  let chat = 0;
  let chars = 0;
  let bytesChecked = 0;
  const bad = (line: number, field: string, message: string) => ({
    check: check("dataset", "fail", `input spec.dataset (${r.via}), line ${line}: ${message}`, { ...where, line, record_field: field }),
  });
  for (const [i, raw] of lines.entries()) {
    if (text + chat >= HEAD_RECORDS) break;
    bytesChecked += Buffer.byteLength(raw) + 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") continue;
    const n = i + 1;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (err) {
      return bad(n, "(line)", `not valid JSON (${(err as Error).message}); one JSON object per line`);
    }
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) return bad(n, "(line)", `not a JSON object; each line needs a string "${textField}" or a "${messagesField}" list`);
    const o = rec as Record<string, unknown>;
    const messages = o[messagesField];
    if (messages !== undefined) {
      if (!Array.isArray(messages) || messages.length === 0) return bad(n, messagesField, `field "${messagesField}" must be a non-empty list of {role, content}`);
      for (const [j, m] of messages.entries()) {
        const msg = m as { role?: unknown; content?: unknown } | null;
        if (msg === null || typeof msg !== "object" || typeof msg.role !== "string" || typeof msg.content !== "string") {
          return bad(n, `${messagesField}.${j}`, `field "${messagesField}" item ${j} is not {role: string, content: string}`);
        }
        if (!CHAT_ROLES.has(msg.role)) return bad(n, `${messagesField}.${j}.role`, `field "${messagesField}" item ${j} has unknown role "${msg.role}" (one of ${[...CHAT_ROLES].join(", ")})`);
        chars += msg.content.length;
      }
      chat++;
      continue;
    }
    const t = o[textField];
    if (typeof t !== "string") {
      const fix = spec.fields === undefined ? `; name the field with spec.fields.text / spec.fields.messages` : "";
      return bad(n, textField, `field "${textField}" is ${t === undefined ? "missing" : `a ${Array.isArray(t) ? "list" : typeof t}, not a string`} (and there is no "${messagesField}" list)${fix}`);
    }
    text++;
    chars += t.length;
  }
  if (text + chat === 0) return { check: check("dataset", "fail", `input spec.dataset (${r.via}) has no records in its first ${count(head.length)} bytes`, where) };
  // Scale what the checked lines hold to the whole file.
  const tokens = Math.round(((whole && text + chat < HEAD_RECORDS ? chars : (chars * r.size) / Math.max(1, bytesChecked)) / CHARS_PER_TOKEN));
  const scope = whole && text + chat < HEAD_RECORDS ? `all ${count(text + chat)} records` : `the first ${count(text + chat)} records (${count(bytesChecked)} of ${count(r.size)} bytes)`;
  const message = `${r.via}: ${scope} parse (${count(text)} "${textField}", ${count(chat)} "${messagesField}"); ≈ ${count(tokens)} tokens at ${CHARS_PER_TOKEN} characters per token`;
  return {
    check: check("dataset", "pass", message, { ...where, size: r.size, records_checked: text + chat, text_records: text, chat_records: chat, estimated_tokens: tokens }),
    facts: { tokens, chatRecords: chat },
  };
}

/** A tokenizer: a tiktoken name, or a blob / artifact holding a `tokenizer.json` (structure only), or a folder on the worker. */
async function checkTokenizer(deps: PreflightDeps, orgId: string, spec: TrainSpec): Promise<{ check: PreflightCheckReport; vocab?: number; kind: "tiktoken" | "json" | "folder" }> {
  const name = spec.pack?.tokenizer ?? "cl100k_base";
  const field = { field: "spec.pack.tokenizer", tokenizer: name };
  const known = TIKTOKEN_VOCAB[name];
  if (known !== undefined) return { check: check("tokenizer", "pass", `${name}: a tiktoken encoding (${count(known)} tokens)`, field), vocab: known, kind: "tiktoken" };
  if (!isRef(name)) {
    return {
      check: check("tokenizer", "warn", `${JSON.stringify(name)} is not ${Object.keys(TIKTOKEN_VOCAB).join(" / ")} nor a blob or artifact, so it must be a folder on the worker: the control plane cannot check it`, field),
      kind: "folder",
    };
  }
  const r = await resolveRef(deps, orgId, name);
  if (!r.ok) return { check: check("tokenizer", "fail", `spec.pack.tokenizer: ${r.message}`, field), kind: "json" };
  if (r.size > TOKENIZER_MAX_BYTES) return { check: check("tokenizer", "fail", `spec.pack.tokenizer (${r.via}) is ${count(r.size)} bytes: not a tokenizer.json (at most ${count(TOKENIZER_MAX_BYTES)})`, field), kind: "json" };
  let doc: unknown;
  try {
    doc = JSON.parse((await readHead(deps.blobs, r.digest, r.size, r.size)).toString("utf8"));
  } catch (err) {
    return { check: check("tokenizer", "fail", `spec.pack.tokenizer (${r.via}) is not a tokenizer.json: not valid JSON (${(err as Error).message})`, field), kind: "json" };
  }
  const model = (doc as { model?: unknown } | null)?.model;
  if (model === null || typeof model !== "object" || Array.isArray(model)) {
    return { check: check("tokenizer", "fail", `spec.pack.tokenizer (${r.via}) is not a Hugging Face tokenizer.json: it has no "model" section`, field), kind: "json" };
  }
  const m = model as { type?: unknown; vocab?: unknown };
  const vocabEntries = Array.isArray(m.vocab) ? m.vocab.length : m.vocab !== null && typeof m.vocab === "object" ? Object.keys(m.vocab).length : 0;
  const added = (doc as { added_tokens?: { id?: unknown }[] }).added_tokens;
  const maxAdded = Array.isArray(added) ? added.reduce((m, t) => (typeof t?.id === "number" && t.id > m ? t.id : m), -1) : -1;
  const vocab = Math.max(vocabEntries, maxAdded + 1);
  const type = typeof m.type === "string" ? m.type : "untyped";
  const message = `${r.via}: tokenizer.json parses and has a "model" section (${type}, ${count(vocab)} tokens); structure only: the control plane does not load tokenizers`;
  return { check: check("tokenizer", "pass", message, { ...field, model_type: type, vocab_size: vocab }), ...(vocab > 0 ? { vocab } : {}), kind: "json" };
}

/** Whether the model config gives what the estimator needs; the field to fix when not. */
function checkModelConfig(spec: TrainSpec, tokenizerVocab: number | undefined): { check: PreflightCheckReport; estimable: boolean } {
  const config = spec.model.config;
  const seqLen = spec.pack?.seq_len ?? 2048;
  if (config === undefined) {
    if (spec.model.weights === undefined) {
      return { check: check("model_config", "fail", "spec.model needs a config (a Hugging Face config with model_type and sizes) or weights", { field: "spec.model.config" }), estimable: false };
    }
    return { check: check("model_config", "warn", "no spec.model.config: the sizes come from the weights' config.json on the worker, so memory, duration and cost are not estimated; add the model's config to check them", { field: "spec.model.config" }), estimable: false };
  }
  const fail = (field: string, message: string) => ({ check: check("model_config", "fail", `spec.model.config.${field}: ${message}`, { field: `spec.model.config.${field}` }), estimable: false });
  if (spec.model.weights !== undefined) {
    // With weights, the config only overrides the saved one: the sizes it leaves out are the weights', not a default's.
    const sizes = config.model_type === "gpt2" ? ["n_embd", "n_layer", "n_head", "vocab_size"] : REQUIRED_OTHER;
    const missing = typeof config.model_type === "string" ? sizes.find((f) => config[f] === undefined) : "model_type";
    if (missing !== undefined) {
      return {
        check: check("model_config", "warn", `spec.model.config overrides the config of the weights, and does not give ${missing}: the sizes come from the weights on the worker, so memory, duration and cost are not estimated; give model_type and the sizes to check them`, { field: `spec.model.config.${missing}` }),
        estimable: false,
      };
    }
  }
  const type = config.model_type;
  if (typeof type !== "string" || type === "") return fail("model_type", `needs a model_type (e.g. "gpt2", "llama", "qwen2") to give a parameter count`);
  const family = type === "gpt2" ? "gpt2" : "llama";
  for (const names of SIZE_FIELDS[family]) {
    for (const f of names) {
      const v = config[f];
      if (v !== undefined && v !== null && !(typeof v === "number" && Number.isInteger(v) && v > 0)) return fail(f, `expected a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (type !== "gpt2" && type !== "llama" && spec.model.weights === undefined) {
    const missing = REQUIRED_OTHER.find((f) => config[f] === undefined);
    if (missing !== undefined) return fail(missing, `missing: a "${type}" config must give ${REQUIRED_OTHER.join(", ")} for a parameter count (defaults are only known for gpt2 and llama)`);
  }
  const s = modelShape(config);
  if (!Number.isInteger(s.headDim)) return fail(family === "gpt2" ? "n_head" : "num_attention_heads", `${s.heads} heads do not divide the hidden size ${s.hidden}`);
  if (s.kvHeads > s.heads || s.heads % s.kvHeads !== 0) return fail("num_key_value_heads", `${s.kvHeads} key/value heads must divide the ${s.heads} attention heads`);
  // transformers' LlamaConfig defaults to 2,048 positions; other types' defaults are not known here.
  const given = typeof config.max_position_embeddings === "number" ? config.max_position_embeddings : undefined;
  const positions = family === "gpt2" ? s.positions : (given ?? (type === "llama" ? 2048 : undefined));
  if (positions !== undefined && seqLen > positions) {
    return { check: check("model_config", "fail", `spec.pack.seq_len ${seqLen} exceeds the model's ${positions} positions: lower seq_len or raise ${family === "gpt2" ? "n_positions" : "max_position_embeddings"}`, { field: "spec.pack.seq_len" }), estimable: false };
  }
  const params = modelParameterCount(config);
  const details = { model_type: type, parameters: params, layers: s.layers, hidden: s.hidden, heads: s.heads, vocab_size: s.vocab };
  const message = `${type}: ${s.layers} layers × ${s.hidden} hidden, ${s.heads} heads, vocab ${count(s.vocab)}: ${count(params)} parameters (fields not given take transformers' ${family} defaults)`;
  if (tokenizerVocab !== undefined && tokenizerVocab > s.vocab) {
    return {
      check: check("model_config", "warn", `${message}; the tokenizer has ${count(tokenizerVocab)} tokens but vocab_size is ${count(s.vocab)}: a token id ≥ ${count(s.vocab)} in the data fails the run — set vocab_size to at least ${count(tokenizerVocab)}`, { ...details, field: "spec.model.config.vocab_size" }),
      estimable: true,
    };
  }
  return { check: check("model_config", "pass", message, details), estimable: true };
}

/** A registered worker as preflight sees it. */
interface FleetWorker {
  name: string;
  online: boolean;
  caps: Capabilities;
  accepts: string[];
}

/** The org's registered workers, one per name (the online registration, else the latest). */
async function fleetOf(db: Kysely<Database>, orgId: string): Promise<FleetWorker[]> {
  const rows: WorkersTable[] = await db.selectFrom("workers").selectAll().where("org_id", "=", orgId).orderBy("last_seen_at", "desc").limit(10_000).execute();
  const byName = new Map<string, FleetWorker>();
  for (const r of rows) {
    const prev = byName.get(r.name);
    if (prev && (prev.online || r.status !== "online")) continue;
    byName.set(r.name, { name: r.name, online: r.status === "online", caps: json(r.capabilities, { cpus: 1, memory_gb: 0, gpus: [], labels: {} } as Capabilities), accepts: json(r.accepts, []) });
  }
  return [...byName.values()];
}

/** Workers that accept the type and meet the requirements, and why each other one does not. */
function candidates(fleet: FleetWorker[], type: string, req: Requirements): { ok: FleetWorker[]; reasons: string[] } {
  const ok: FleetWorker[] = [];
  const reasons: string[] = [];
  for (const w of fleet) {
    const m = matchRequirements({ ...w.caps, gpus: w.caps.gpus ?? [], labels: w.caps.labels ?? {} }, w.accepts, type, req);
    if (m.ok) ok.push(w);
    else reasons.push(`${w.name}${w.online ? "" : " (offline)"}: ${m.reason}`);
  }
  return { ok, reasons };
}

/** GPUs a job takes, as the queue and the worker count them. */
function gpusOf(req: Requirements): number {
  return req.gpus ?? (req.gpu_type !== undefined || req.gpu_memory_gb !== undefined ? 1 : 0);
}

/** The generic "some worker can run it" check (also the fall-back of the train memory check). */
function checkWorkers(fleet: FleetWorker[], type: string, req: Requirements): PreflightCheckReport {
  const { ok, reasons } = candidates(fleet, type, req);
  const online = ok.filter((w) => w.online);
  if (online.length > 0) return check("workers", "pass", `online worker ${online.map((w) => w.name).slice(0, 3).join(", ")}${online.length > 3 ? ` and ${online.length - 3} more` : ""} can run it`, { workers: online.map((w) => w.name) });
  if (ok.length > 0) return check("workers", "warn", `only offline worker ${ok.map((w) => w.name).slice(0, 3).join(", ")} could run it: the job waits until one is back`, { workers: ok.map((w) => w.name) });
  if (fleet.length === 0) return check("workers", "warn", "no worker is registered in this org yet: the job waits for one that accepts it and meets its requirements");
  return check("workers", "fail", `no registered worker can run it (${reasons.slice(0, 5).join("; ")})`, { reasons });
}

/**
 * The estimate on the wire. Its overhead is 1 GiB plus 10% slack: the CUDA context on a GPU; on the
 * CPU the Python / PyTorch process itself (measured: 0.5 GiB of RSS beyond the tensors for a tiny GPT).
 */
function memoryOf(m: TrainingMemoryEstimate, per: "gpu" | "host", gpus: number): PreflightMemory {
  const overhead = m.overhead;
  const total = m.total;
  return {
    per,
    gpus,
    parameters: m.parameters,
    trainable_parameters: m.trainableParameters,
    weights_bytes: m.weights,
    gradients_bytes: m.gradients,
    optimizer_bytes: m.optimizer,
    activations_bytes: m.activations,
    overhead_bytes: overhead,
    total_bytes: total,
    total_gib: Math.round((total / GIB) * 1000) / 1000,
  };
}

/** Tokens a run trains on: `max_steps` × tokens per step, or epochs × the dataset's tokens. */
function trainTokens(spec: TrainSpec, gpus: number, datasetTokens: number | undefined): number | undefined {
  const hp = spec.hyperparameters;
  const seqLen = spec.pack?.seq_len ?? 2048;
  if (hp?.max_steps !== undefined) return hp.max_steps * hp.micro_batch_size * hp.grad_accum * Math.max(1, gpus) * seqLen;
  return datasetTokens === undefined ? undefined : (hp?.epochs ?? 1) * datasetTokens;
}

/** Duration, cost and token checks against the submission's limits. */
function limitChecks(seconds: number, costUsd: number, tokens: number, how: string, price: string, limits: JobSubmission["limits"]): PreflightCheckReport[] {
  const out: PreflightCheckReport[] = [];
  const dur = `≈ ${formatDuration(seconds)} for ${count(tokens)} tokens at ${how}`;
  out.push(
    limits.max_runtime_s !== undefined && seconds > limits.max_runtime_s
      ? check("duration", "warn", `${dur}; over limits.max_runtime_s ${limits.max_runtime_s}: the guardrail will stop the run early (after a final checkpoint)`, { time_s: seconds, field: "limits.max_runtime_s" })
      : check("duration", "pass", dur, { time_s: seconds }),
  );
  const cost = `≈ $${costUsd.toFixed(2)} at ${price}`;
  out.push(
    limits.max_cost_usd !== undefined && costUsd > limits.max_cost_usd
      ? check("cost", "warn", `${cost}; over limits.max_cost_usd ${limits.max_cost_usd}: the guardrail will stop the run early (after a final checkpoint)`, { cost_usd: costUsd, field: "limits.max_cost_usd" })
      : check("cost", "pass", cost, { cost_usd: costUsd }),
  );
  if (limits.max_tokens !== undefined && tokens > limits.max_tokens) {
    out.push(check("tokens", "warn", `${count(tokens)} tokens to train on; over limits.max_tokens ${count(limits.max_tokens)}: the guardrail will stop the run early`, { tokens, field: "limits.max_tokens" }));
  }
  return out;
}

/** The memory, duration and cost checks of a `train` job on GPUs (`requirements.gpus` ≥ 1). */
function gpuChecks(spec: TrainSpec, sub: JobSubmission, fleet: FleetWorker[], datasetTokens: number | undefined, prices: PriceTable): { checks: PreflightCheckReport[]; estimate: PreflightEstimate } {
  const req = sub.requirements;
  const n = gpusOf(req);
  const { ok, reasons } = candidates(fleet, "train", req);
  // Only the GPUs the requirements allow count for the fit.
  const usable = (w: FleetWorker) => ({
    name: w.name,
    gpus: (w.caps.gpus ?? []).filter((g) => (req.gpu_type === undefined || g.name.toLowerCase().includes(req.gpu_type.toLowerCase())) && (req.gpu_memory_gb === undefined || g.memory_gb >= req.gpu_memory_gb)),
  });
  const run = (ws: FleetWorker[]) =>
    preflightTrainSpec(spec, { workers: ws.map(usable), gpus: n, ...(datasetTokens !== undefined ? { datasetTokens } : {}), prices, limits: sub.limits });
  const onlineRun = run(ok.filter((w) => w.online));
  let r = onlineRun;
  let fitWorkers = ok.filter((w) => w.online);
  const fit = onlineRun.checks[0]!;
  let gpuCheck: PreflightCheckReport;
  if (ok.length === 0) {
    const needs = r.memory ? `needs ${gib(r.memory.total)} per GPU on ${n} GPU(s)` : "memory not estimated";
    gpuCheck =
      fleet.length === 0
        ? check("gpu_memory", "warn", `${needs}; no worker is registered in this org yet to check against: the job waits for one`)
        : check("gpu_memory", "fail", `${needs}; no registered worker meets the requirements (${reasons.slice(0, 5).join("; ")})`, { reasons });
  } else if (fit.status === "fail" && ok.some((w) => !w.online)) {
    const offline = ok.filter((w) => !w.online);
    const offlineRun = run(offline);
    if (offlineRun.checks[0]!.status !== "fail") {
      r = offlineRun;
      fitWorkers = offline;
      const why = ok.some((w) => w.online) ? fit.reason : "no online worker meets the requirements";
      gpuCheck = check("gpu_memory", "warn", `only an offline worker could hold it: ${offlineRun.checks[0]!.reason}; online: ${why}`);
    } else gpuCheck = check("gpu_memory", "fail", fit.reason);
  } else gpuCheck = check("gpu_memory", fit.status, fit.reason);
  const memory = r.memory ? memoryOf(r.memory, "gpu", n) : null;
  if (memory) gpuCheck.details = { ...gpuCheck.details, total_bytes: memory.total_bytes, gpus: n };
  const checks = [gpuCheck];
  const tokens = trainTokens(spec, n, datasetTokens) ?? null;
  if (r.time && tokens !== null && memory) {
    const gpu = smallestFitting(memory.total_bytes, fitWorkers.map(usable), n) ?? "GPU";
    const price = `$${gpuHourPrice(prices, gpu)}/GPU-hour × ${n}`;
    checks.push(...limitChecks(r.time.seconds, r.time.costUsd, tokens, `${count(r.time.tokensPerS)} tokens/s on ${n} × ${gpu} (35% of its peak bf16 FLOP/s, ${spec.model.lora ? 4 : 6} FLOPs per parameter per token)`, price, sub.limits));
    return { checks, estimate: { memory, tokens, tokens_per_s: r.time.tokensPerS, time_s: r.time.seconds, cost_usd: r.time.costUsd, device: gpu } };
  }
  if (gpuCheck.status !== "fail" && memory) {
    checks.push(tokens === null ? check("duration", "warn", "the number of tokens is not known (no hyperparameters.max_steps and no dataset estimate): duration and cost not estimated") : check("duration", "warn", "no GPU to estimate the duration on: duration and cost not estimated"));
  }
  return { checks, estimate: { memory, tokens, tokens_per_s: null, time_s: null, cost_usd: null, device: null } };
}

/** The smallest GPU that holds `bytes` on some worker with `n` such GPUs: the one the estimator times the run on. */
function smallestFitting(bytes: number, workers: { gpus: { name: string; memory_gb: number }[] }[], n: number): string | undefined {
  let best: { name: string; memory_gb: number } | undefined;
  for (const w of workers) {
    const nth = [...w.gpus].sort((x, y) => y.memory_gb - x.memory_gb)[n - 1];
    if (nth && nth.memory_gb * GIB >= bytes && (!best || nth.memory_gb < best.memory_gb)) best = nth;
  }
  return best?.name;
}

/**
 * The memory, duration and cost checks of a `train` job on the CPU (`requirements.gpus` 0 or
 * absent, no GPU type or memory asked for): the replica must fit the worker's memory.
 */
function cpuChecks(spec: TrainSpec, sub: JobSubmission, fleet: FleetWorker[], datasetTokens: number | undefined, prices: PriceTable): { checks: PreflightCheckReport[]; estimate: PreflightEstimate } {
  const hp = spec.hyperparameters;
  const est = estimateTrainingMemory({
    config: spec.model.config ?? {},
    precision: spec.model.precision,
    seqLen: spec.pack?.seq_len ?? 2048,
    microBatch: hp?.micro_batch_size ?? 1,
    gradientCheckpointing: hp?.gradient_checkpointing ?? false,
    ...(spec.model.lora ? { lora: spec.model.lora } : {}),
  });
  const memory = memoryOf(est, "host", 0);
  const need = memory.total_bytes;
  const { ok, reasons } = candidates(fleet, "train", sub.requirements);
  const best = (ws: FleetWorker[]) => [...ws].sort((a, b) => b.caps.memory_gb - a.caps.memory_gb)[0];
  const online = best(ok.filter((w) => w.online));
  const offline = best(ok.filter((w) => !w.online));
  const share = (w: FleetWorker) => need / (w.caps.memory_gb * GIB);
  const needs = `CPU training needs ${gib(need)} of memory`;
  let memCheck: PreflightCheckReport;
  let where: FleetWorker | undefined;
  if (online && share(online) <= 1) {
    where = online;
    const pct = `${(share(online) * 100).toFixed(0)}%`;
    memCheck = share(online) > TIGHT_FIT
      ? check("cpu_memory", "warn", `${needs}: fits ${online.name} (${online.caps.memory_gb} GiB) with little headroom (${pct} of its memory)`, { worker: online.name })
      : check("cpu_memory", "pass", `${needs}: fits ${online.name} (${online.caps.memory_gb} GiB, ${pct} of its memory)`, { worker: online.name });
  } else if (offline && share(offline) <= 1) {
    where = offline;
    memCheck = check("cpu_memory", "warn", `${needs}: only offline worker ${offline.name} (${offline.caps.memory_gb} GiB) could hold it${online ? `; the largest online one, ${online.name}, has ${online.caps.memory_gb} GiB` : ""}`, { worker: offline.name });
  } else if (ok.length > 0) {
    const largest = best(ok)!;
    memCheck = check("cpu_memory", "fail", `${needs}; the largest worker, ${largest.name}, has ${largest.caps.memory_gb} GiB: use LoRA, gradient checkpointing, a smaller micro-batch, or GPUs (requirements.gpus)`);
  } else if (fleet.length === 0) {
    memCheck = check("cpu_memory", "warn", `${needs}; no worker is registered in this org yet to check against: the job waits for one`);
  } else {
    memCheck = check("cpu_memory", "fail", `${needs}; no registered worker meets the requirements (${reasons.slice(0, 5).join("; ")})`, { reasons });
  }
  memCheck.details = { ...memCheck.details, total_bytes: need };
  const checks = [memCheck];
  const tokens = trainTokens(spec, 0, datasetTokens) ?? null;
  if (!where || tokens === null) {
    if (memCheck.status !== "fail") checks.push(check("duration", "warn", tokens === null ? "the number of tokens is not known (no hyperparameters.max_steps and no dataset estimate): duration and cost not estimated" : "no worker to estimate the duration on"));
    return { checks, estimate: { memory, tokens, tokens_per_s: null, time_s: null, cost_usd: null, device: "cpu" } };
  }
  const cpus = where.caps.cpus;
  const tokensPerS = (cpus * CPU_FLOPS_PER_CORE) / ((spec.model.lora ? 4 : 6) * est.parameters);
  const seconds = tokens / tokensPerS;
  const costUsd = (seconds / 3600) * cpus * prices.cpu_hour;
  checks.push(...limitChecks(seconds, costUsd, tokens, `${count(tokensPerS)} tokens/s on ${cpus} CPU cores of ${where.name} (${CPU_FLOPS_PER_CORE / 1e9} GFLOP/s per core assumed)`, `$${prices.cpu_hour}/CPU-hour × ${cpus}`, sub.limits));
  return { checks, estimate: { memory, tokens, tokens_per_s: tokensPerS, time_s: seconds, cost_usd: costUsd, device: "cpu" } };
}

const NO_ESTIMATE: PreflightEstimate = { memory: null, tokens: null, tokens_per_s: null, time_s: null, cost_usd: null, device: null };

/** Every blob digest or artifact id in a spec, with its dotted path. */
function refsIn(value: unknown, path: string, out: { path: string; ref: string }[] = [], depth = 0): { path: string; ref: string }[] {
  if (typeof value === "string") {
    if (isRef(value)) out.push({ path, ref: value });
  } else if (value !== null && typeof value === "object" && depth < 16) {
    for (const [k, v] of Object.entries(value)) refsIn(v, `${path}.${k}`, out, depth + 1);
  }
  return out;
}

async function checkInputs(deps: PreflightDeps, orgId: string, spec: unknown): Promise<PreflightCheckReport> {
  const refs = refsIn(spec, "spec");
  if (refs.length === 0) return check("inputs", "pass", "the spec names no blob or artifact inputs");
  const missing: { path: string; message: string }[] = [];
  for (const { path, ref } of refs.slice(0, 1000)) {
    const r = await resolveRef(deps, orgId, ref);
    if (!r.ok) missing.push({ path, message: r.message });
  }
  if (missing.length > 0) return check("inputs", "fail", `input ${missing.map((m) => `${m.path}: ${m.message}`).slice(0, 5).join("; ")}`, { missing });
  return check("inputs", "pass", `${refs.length} input(s) found: ${refs.map((r) => r.path).slice(0, 5).join(", ")}${refs.length > 5 ? ", …" : ""}`);
}

/**
 * Preflight of a job submission (already validated by `JobSubmission`): whether it can run and
 * what it will take. A `train` job: its dataset exists and parses, its tokenizer resolves, its
 * model config gives a parameter count, the memory estimate fits a registered worker (GPU, or
 * host memory for CPU training), and duration and cost from the token count, a throughput
 * assumption and the price table. Other types: their inputs exist and a worker can run them.
 *
 * @example
 * const report = await preflightSubmission({ db, blobs, prices }, orgId, JobSubmission.parse(body));
 * report.status; // "pass" | "warn" | "fail"
 */
export async function preflightSubmission(deps: PreflightDeps, orgId: string, sub: JobSubmission): Promise<PreflightReport> {
  const checks: PreflightCheckReport[] = [];
  let estimate = NO_ESTIMATE;
  const fleet = await fleetOf(deps.db, orgId);
  if (sub.type === "train") {
    const spec = sub.spec;
    checks.push(
      spec.backend === "command" && spec.argv === undefined
        ? check("spec", "fail", "spec.argv: backend command needs argv, the trainer to run", { field: "spec.argv" })
        : spec.backend === "axolotl" && spec.model.weights === undefined
          ? check("spec", "fail", "spec.model.weights: backend axolotl fine-tunes a base model: give its weights (a folder on the worker or a model.tar artifact)", { field: "spec.model.weights" })
          : check("spec", "pass", `the train spec is valid (backend ${spec.backend})`),
    );
    const [dataset, tokenizer] = await Promise.all([checkDataset(deps, orgId, spec), checkTokenizer(deps, orgId, spec)]);
    checks.push(dataset.check, tokenizer.check);
    if (dataset.facts && dataset.facts.chatRecords > 0 && spec.pack?.chat_template === undefined && tokenizer.kind !== "folder") {
      checks.push(check("chat_template", "fail", `the dataset has "${spec.fields?.messages ?? "messages"}" records but ${tokenizer.kind === "tiktoken" ? "a tiktoken encoding" : "a bare tokenizer.json"} has no chat template: set spec.pack.chat_template ("chatml", or a Jinja template)`, { field: "spec.pack.chat_template" }));
    }
    if (spec.model.weights !== undefined && isRef(spec.model.weights)) {
      const w = await resolveRef(deps, orgId, spec.model.weights);
      checks.push(w.ok ? check("weights", "pass", `spec.model.weights ${w.via}: ${count(w.size)} bytes`) : check("weights", "fail", `spec.model.weights: ${w.message}`, { field: "spec.model.weights" }));
    }
    const model = checkModelConfig(spec, tokenizer.vocab);
    checks.push(model.check);
    if (model.estimable) {
      const r = gpusOf(sub.requirements) > 0 ? gpuChecks(spec, sub, fleet, dataset.facts?.tokens, deps.prices) : cpuChecks(spec, sub, fleet, dataset.facts?.tokens, deps.prices);
      checks.push(...r.checks);
      estimate = r.estimate;
    } else {
      checks.push(checkWorkers(fleet, sub.type, sub.requirements));
    }
  } else {
    checks.push(check("spec", "pass", `the ${sub.type} spec is valid`));
    checks.push(await checkInputs(deps, orgId, sub.spec));
    checks.push(checkWorkers(fleet, sub.type, sub.requirements));
  }
  const status = worstStatus(checks);
  return { ok: status !== "fail", status, checks, estimate };
}

/** The header that skips preflight at submit, as an alternative to `"preflight": false` in the body. */
export const SKIP_PREFLIGHT_HEADER = "x-nexa-skip-preflight";

/**
 * Preflight at submission: runs only for a `train` job not skipped (`preflight: false`, or the
 * skip header) and not the repeat of an idempotent submission, costing nothing for other types. A `fail` throws 422 `preflight_failed` with the
 * checks in `details`; otherwise the report, to record on the job.
 */
export async function preflightAtSubmit(deps: PreflightDeps, orgId: string, sub: JobSubmission, skipHeader?: string | string[], idempotencyKey?: string): Promise<PreflightReport | undefined> {
  if (sub.type !== "train" || sub.preflight === false || skipHeader === "1" || skipHeader === "true") return undefined;
  // A repeat of an accepted submission returns that job, whatever the fleet looks like now.
  if (idempotencyKey !== undefined) {
    const existing = await deps.db.selectFrom("jobs").select("id").where("org_id", "=", orgId).where("idempotency_key", "=", idempotencyKey).executeTakeFirst();
    if (existing) return undefined;
  }
  const report = await preflightSubmission(deps, orgId, sub);
  if (!report.ok) throw preflightFailed(report);
  return report;
}

/** The 422 a failed preflight answers a submission with. */
export function preflightFailed(report: PreflightReport): ForgeError {
  const failed = report.checks.filter((c) => c.status === "fail");
  return new ForgeError(
    "preflight_failed",
    `preflight failed: ${failed.map((c) => `${c.name}: ${c.message}`).join("; ")}. Fix the submission, or submit with "preflight": false (or header X-Nexa-Skip-Preflight: 1) to queue it anyway`,
    { details: report.checks },
  );
}

/** Records a submission's preflight on the job: a `preflight` event (read back by the run manifest). */
export async function recordPreflight(db: Kysely<Database>, orgId: string, jobId: string, report: PreflightReport): Promise<void> {
  // A worker may have claimed the job since it was submitted: the event carries the job's status
  // and attempt as they are now, so a client following events never sees it go back to queued.
  await db
    .insertInto("job_events")
    .columns(["job_id", "org_id", "ts", "type", "status", "attempt", "data"])
    .expression((eb) =>
      eb
        .selectFrom("jobs")
        .select((s) => [
          "jobs.id as job_id",
          "jobs.org_id as org_id",
          s.val(Date.now()).as("ts"),
          s.val("preflight").as("type"),
          "jobs.status as status",
          "jobs.attempt as attempt",
          s.val(JSON.stringify(report)).as("data"),
        ])
        .where("jobs.id", "=", jobId)
        .where("jobs.org_id", "=", orgId),
    )
    .execute();
}

/** The preflight recorded on a job at submission, if any. */
export async function recordedPreflight(db: Kysely<Database>, jobId: string): Promise<PreflightReport | undefined> {
  const row = await db.selectFrom("job_events").select("data").where("job_id", "=", jobId).where("type", "=", "preflight").orderBy("seq", "desc").limit(1).executeTakeFirst();
  return row?.data ? json<PreflightReport | undefined>(row.data, undefined) : undefined;
}

/** Preflight's dependencies from the control plane's parts. */
export function preflightDeps(ctx: { db: Kysely<Database>; blobs: FileBlobStore; options: { prices: PriceTable } }): PreflightDeps {
  return { db: ctx.db, blobs: ctx.blobs, prices: ctx.options.prices ?? DEFAULT_PRICES };
}
