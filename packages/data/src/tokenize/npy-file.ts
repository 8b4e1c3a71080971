import { randomBytes } from "node:crypto";
import { open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { TokenizeError } from "./tokenize-error.js";

/** The NumPy dtypes this module reads and writes. */
export type NpyDtype = "<i4" | "<i8";
type NpyArray = Int32Array | BigInt64Array;

/** Fixed header size, so the shape can be written last (a multiple of 64, as NumPy aligns it). */
const HEADER_BYTES = 128;
const FLUSH_BYTES = 1 << 22;

function header(dtype: NpyDtype, shape: number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const room = HEADER_BYTES - 10 - 1;
  if (dict.length > room) throw new Error(`npy header too long for shape ${shapeText}`);
  dict = dict.padEnd(room, " ") + "\n";
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.write("\x93NUMPY", 0, "latin1");
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(HEADER_BYTES - 10, 8);
  buf.write(dict, 10, "latin1");
  return buf;
}

/**
 * Streams a 1-D or 2-D little-endian integer array into a `.npy` file: rows are appended, the shape is
 * written when it is known, and the file appears under its name only once complete (temp name + rename).
 *
 * @example
 * const w = await NpyWriter.create("out/input_ids.npy", "<i4", 4096);
 * await w.append(row); // Int32Array(4096)
 * await w.close();
 */
export class NpyWriter {
  #chunks: Buffer[] = [];
  #pending = 0;
  #position = HEADER_BYTES;
  #elements = 0;

  private constructor(
    readonly path: string,
    readonly dtype: NpyDtype,
    /** Row length for a 2-D array; undefined for 1-D. */
    readonly rowLength: number | undefined,
    private readonly tmp: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(path: string, dtype: NpyDtype, rowLength?: number): Promise<NpyWriter> {
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const fh = await open(tmp, "w");
    return new NpyWriter(path, dtype, rowLength, tmp, fh);
  }

  /** Appends elements (a whole number of rows for a 2-D array). */
  async append(values: NpyArray): Promise<void> {
    if ((this.dtype === "<i4") !== values instanceof Int32Array) throw new TypeError(`dtype ${this.dtype} needs ${this.dtype === "<i4" ? "Int32Array" : "BigInt64Array"}`);
    if (this.rowLength !== undefined && values.length % this.rowLength !== 0) throw new RangeError(`row of ${values.length} elements, expected ${this.rowLength}`);
    // Copy: callers may reuse their arrays. Node is little-endian on every platform it supports.
    this.#chunks.push(Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)));
    this.#pending += values.byteLength;
    this.#elements += values.length;
    if (this.#pending >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.#pending === 0) return;
    const data = Buffer.concat(this.#chunks, this.#pending);
    this.#chunks = [];
    this.#pending = 0;
    await this.fh.write(data, 0, data.length, this.#position);
    this.#position += data.length;
  }

  /** Shape so far. */
  get shape(): number[] {
    return this.rowLength === undefined ? [this.#elements] : [this.#elements / this.rowLength, this.rowLength];
  }

  /** Writes the header, closes and renames the file into place. */
  async close(): Promise<{ path: string; shape: number[]; dtype: NpyDtype }> {
    await this.flush();
    await this.fh.write(header(this.dtype, this.shape), 0, HEADER_BYTES, 0);
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.path);
    return { path: this.path, shape: this.shape, dtype: this.dtype };
  }

  /** Removes the partial file. */
  async abort(): Promise<void> {
    await this.fh.close().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** A `.npy` array read into memory. */
export interface NpyData {
  dtype: string;
  shape: number[];
  data: Int32Array | BigInt64Array;
}

/**
 * Reads a little-endian int32 / int64 C-order `.npy` file (versions 1–3).
 *
 * @example
 * const { shape, data } = await readNpy("packed/input_ids.npy");
 */
export async function readNpy(path: string): Promise<NpyData> {
  const buf = await readFile(path);
  if (buf.length < 10 || buf.toString("latin1", 0, 6) !== "\x93NUMPY") {
    throw new TokenizeError("input_invalid", `${path} is not a .npy file. Fix: point at a folder written by nexa data pack`);
  }
  const major = buf[6]!;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const dict = buf.toString(major === 3 ? "utf8" : "latin1", start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(dict)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (!descr || fortran !== "False" || shapeText === undefined) {
    throw new TokenizeError("input_invalid", `${path}: unsupported npy header ${dict.trim()}. Fix: write C-order int32/int64 arrays`);
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + hlen;
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset + offset, buf.length - offset).slice();
  if (descr === "<i4" && bytes.byteLength === count * 4) return { dtype: descr, shape, data: new Int32Array(bytes.buffer) };
  if (descr === "<i8" && bytes.byteLength === count * 8) return { dtype: descr, shape, data: new BigInt64Array(bytes.buffer) };
  throw new TokenizeError("input_invalid", `${path}: dtype ${descr} with ${bytes.byteLength} data bytes does not match shape (${shape.join(", ")}). Fix: re-run nexa data pack`);
}
