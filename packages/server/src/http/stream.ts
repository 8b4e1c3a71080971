import type { FastifyReply, FastifyRequest } from "fastify";
import type { AppContext } from "./context.js";

/** A hijacked streaming response that ends when the client leaves or the server stops. */
export interface OpenStream {
  signal: AbortSignal;
  write(text: string): Promise<void>;
  end(): void;
}

/** Takes over the raw response for NDJSON or SSE. */
export function openStream(req: FastifyRequest, reply: FastifyReply, ctx: AppContext, contentType: string): OpenStream {
  const ctl = new AbortController();
  const onShutdown = () => ctl.abort();
  ctx.shutdown.addEventListener("abort", onShutdown, { once: true });
  req.raw.on("close", () => ctl.abort());
  reply.raw.on("close", () => ctl.abort());
  reply.hijack();
  reply.raw.writeHead(200, {
    "content-type": contentType,
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  reply.raw.flushHeaders();
  return {
    signal: ctl.signal,
    write: (text) =>
      new Promise<void>((resolve) => {
        if (ctl.signal.aborted || reply.raw.destroyed) return resolve();
        if (reply.raw.write(text)) resolve();
        else reply.raw.once("drain", () => resolve());
      }),
    end: () => {
      ctx.shutdown.removeEventListener("abort", onShutdown);
      if (!reply.raw.writableEnded) reply.raw.end();
    },
  };
}

/**
 * A promise that resolves at the next bus event of the given kinds for one job, or when the
 * stream ends. Subscribe before reading the database so no change between read and wait is lost.
 */
export function waitForChange(ctx: AppContext, jobId: string, kinds: ("logs" | "job")[], signal: AbortSignal): { promise: Promise<void>; cancel: () => void } {
  let done: () => void = () => {};
  const offs: (() => void)[] = [];
  const promise = new Promise<void>((resolve) => {
    done = () => {
      for (const off of offs) off();
      signal.removeEventListener("abort", done);
      resolve();
    };
  });
  for (const k of kinds) offs.push(ctx.bus.on(k, jobId, () => done()));
  if (signal.aborted) done();
  else signal.addEventListener("abort", done, { once: true });
  return { promise, cancel: done };
}
