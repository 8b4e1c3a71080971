// The add→start loop of bench/queue (run.mjs, segments.mjs): one idle worker long-polls for jobs,
// and a no-op job is submitted every 20–70 ms; each sample is the time from sending the submission
// to the worker's claim answer arriving.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const job = (i) => ({ type: "command", spec: { argv: ["true", String(i)] } });

/**
 * `call(method, path, body)` answers `{status, json}` (and `t`, when the client stamps the moment a
 * response ended); `now` is the clock the samples are on. Answers `[{t0, t1}]`, in order.
 */
export async function addToStartSamples(call, samples, now = () => performance.now()) {
  const { json: worker } = await call("POST", "/v1/workers", { name: "idle", capabilities: { cpus: 4, memory_gb: 8, gpus: [], labels: {} } });
  const started = new Map();
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const res = await call("POST", `/v1/workers/${worker.id}/claim`, { wait_s: 5, max_jobs: 1 });
      if (res.status === 204) continue;
      const t1 = res.t ?? now();
      started.get(Number(res.json.job.spec.argv[1]))?.(t1);
      await call("POST", `/v1/leases/${res.json.lease.id}/complete`, {});
    }
  })();
  // Let the worker's first long-poll reach the server, so every sample measures an idle, waiting worker.
  await sleep(1000);
  const out = [];
  for (let i = 0; i < samples; i++) {
    // Spaced submissions: each one finds the worker idle in its long-poll again.
    await sleep(20 + Math.random() * 50);
    const got = new Promise((r) => started.set(i, r));
    const t0 = now();
    const [t1] = await Promise.all([got, call("POST", "/v1/jobs", job(i))]);
    out.push({ t0, t1 });
  }
  stop = true;
  await call("POST", "/v1/jobs", job(-1)); // wake the last long-poll
  await loop;
  return out;
}
