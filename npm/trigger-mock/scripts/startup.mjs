// Start-up time: from startTriggerMock() to the first answered request, over
// N starts (default 20). Prints the median and the maximum in milliseconds.
//   node scripts/startup.mjs [BINARY] [N]
import { startTriggerMock } from "../index.js";

const binaryPath = process.argv[2] || undefined;
const n = Number(process.argv[3] ?? 20);
const times = [];
for (let i = 0; i < n; i++) {
  const t0 = performance.now();
  const mock = await startTriggerMock({ binaryPath });
  await mock.admin.health();
  times.push(performance.now() - t0);
  await mock.stop();
}
times.sort((a, b) => a - b);
const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
console.log(`${n} starts: median ${median.toFixed(1)} ms, max ${times[n - 1].toFixed(1)} ms, min ${times[0].toFixed(1)} ms`);
