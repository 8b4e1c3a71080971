import { z } from "zod";

/** A content address: `sha256:` and 64 lowercase hex digits. */
export const Digest = z.string().regex(/^sha256:[0-9a-f]{64}$/, "expected sha256:<64 lowercase hex digits>");
export type Digest = z.infer<typeof Digest>;

/** A reference to stored data: a blob digest or an artifact id (`art_…`). */
export const DataRef = z.union([Digest, z.string().regex(/^art_[0-9A-Za-z]+$/, "expected an artifact id art_…")], {
  error: "expected a blob digest (sha256:<hex>) or an artifact id (art_…)",
});
export type DataRef = z.infer<typeof DataRef>;

/** RFC 3339 timestamp as sent on the wire. */
export const Timestamp = z.string();
export type Timestamp = z.infer<typeof Timestamp>;

/** A short name: letters, digits, `._-`, 1–128 characters. */
export const Name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-', starting with a letter or digit");
export type Name = z.infer<typeof Name>;

/** Paging cursor result. */
export function page<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}
