/**
 * Splits a `text/event-stream` body into the data payloads of its events (multi-line `data:`
 * fields joined by newlines; comments and other fields skipped), as the SSE spec defines.
 *
 * @example
 * for await (const data of sseData(res.body)) { if (data === "[DONE]") break; … }
 */
export async function* sseData(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  let data: string[] = [];
  const flushLine = function* (line: string): Generator<string> {
    if (line === "") {
      if (data.length > 0) {
        yield data.join("\n");
        data = [];
      }
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
  };
  for await (const chunk of body) {
    buf += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let idx: number;
    while ((idx = buf.search(/\r\n|\r|\n/)) !== -1) {
      const line = buf.slice(0, idx);
      const sepLen = buf.startsWith("\r\n", idx) ? 2 : 1;
      // A lone "\r" at the end of a chunk may be the first half of "\r\n": wait for more.
      if (sepLen === 1 && buf[idx] === "\r" && idx === buf.length - 1) break;
      buf = buf.slice(idx + sepLen);
      yield* flushLine(line);
    }
  }
  buf += decoder.decode();
  if (buf !== "") yield* flushLine(buf);
  yield* flushLine("");
}
