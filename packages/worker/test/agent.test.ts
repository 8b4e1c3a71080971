import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startForge, waitDone, type Forge } from "./helpers.js";

const sha = (s: string | Buffer) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

let forge: Forge;
beforeAll(async () => {
  forge = await startForge();
});
afterAll(async () => {
  await forge?.close();
});

describe("WorkerAgent against a real control plane", () => {
  it("runs a command job: inputs from the cache, logs, metrics, outputs as artifacts, manifest, usage", async () => {
    const { admin } = forge;
    const { agent, workdir } = await forge.worker({ labels: { zone: "test" } });
    const a = await admin.putBlob(new TextEncoder().encode("alpha\n"), { mediaType: "text/plain" });
    const bBlob = await admin.putBlob(new TextEncoder().encode("beta\n"));
    const bArt = await admin.createArtifact({ name: "inputs/b", kind: "dataset", digest: bBlob.digest });

    const script = [
      'cat "$NEXA_INPUTS_DIR/a.txt" "$NEXA_INPUTS_DIR/nested/b.txt"',
      'echo "mode=$(stat -c %a "$NEXA_INPUTS_DIR/a.txt")"',
      'mkdir -p "$NEXA_OUTPUTS_DIR/sub"',
      'printf result > "$NEXA_OUTPUTS_DIR/result.txt"',
      `printf '{"ok":true}' > "$NEXA_OUTPUTS_DIR/sub/data.json"`,
      `for i in 1 2 3; do echo "{\\"step\\":$i,\\"loss\\":$((10 - i))}" >> "$NEXA_METRICS_FILE"; done`,
      "echo to-stderr >&2",
    ].join("; ");
    const submitted = await admin.submitJob({
      type: "command",
      name: "e2e-basic",
      spec: { argv: ["sh", "-c", script], inputs: { "a.txt": a.digest, "nested/b.txt": bArt.id } },
      requirements: { labels: { zone: "test" } },
    });
    const job = await waitDone(admin, submitted.id);
    expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
    expect(Object.keys(job.outputs ?? {}).sort()).toEqual(["result.txt", "sub/data.json"]);
    const result = job.outputs?.["result.txt"];
    expect(result).toMatchObject({ digest: sha("result"), size: 6, media_type: "text/plain" });
    expect(job.outputs?.["sub/data.json"]).toMatchObject({ digest: sha('{"ok":true}'), media_type: "application/json" });

    const art = await admin.getArtifact(result?.artifact_id ?? "missing");
    expect(art).toMatchObject({ name: "e2e-basic/result.txt", kind: "other", digest: sha("result"), producer_job_id: job.id });
    expect(art.parents).toEqual([bArt.id]);
    expect(await (await admin.getBlob(art.digest)).text()).toBe("result");

    const logs = await admin.getLogs(job.id);
    const lines = logs.map((l) => `${l.stream}:${l.line}`);
    expect(lines).toEqual(expect.arrayContaining(["stdout:alpha", "stdout:beta", "stdout:mode=444", "stderr:to-stderr"]));
    expect(logs.every((l) => l.attempt === 1)).toBe(true);

    const metrics = await admin.getMetrics(job.id);
    expect(metrics.series.loss?.map((p) => [p.step, p.value])).toEqual([
      [1, 9],
      [2, 8],
      [3, 7],
    ]);

    const manifest = await admin.getManifest(job.id);
    const m = manifest.attempts.at(-1);
    expect(m?.inputs).toEqual({ "a.txt": a.digest, "nested/b.txt": bBlob.digest });
    expect(m?.outputs["result.txt"]?.digest).toBe(sha("result"));
    expect(m?.worker.cpus).toBeGreaterThan(0);
    expect(m?.worker.cpu_model).toBeTruthy();
    expect(m?.worker.id).toBe(agent.id);
    expect(m?.software.node).toBe(process.versions.node);
    expect(m?.software.forge).toBe("0.1.0");
    expect(m?.exit).toEqual({ status: "succeeded", code: 0, signal: null });
    expect(m?.timings.claimed_at).toBeTruthy();
    expect(job.usage.wall_s).toBeGreaterThan(0);

    // Inputs came through the worker's digest cache, stored under their digest.
    const cached = join(workdir, "cache", "sha256", a.digest.slice("sha256:".length));
    expect(await readFile(cached, "utf8")).toBe("alpha\n");
    expect((await stat(cached)).mode & 0o777).toBe(0o444);
    // The attempt's workspace is gone.
    await expect(stat(join(workdir, `${job.id}-1`))).rejects.toThrow(/ENOENT/);
  });
});
