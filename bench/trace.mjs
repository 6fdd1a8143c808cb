// BENCH_TRACE=prefix: a launcher's timeline, to see why a run is slower than its limit. Written
// to <prefix>.<pid>.txt when the launcher stops: one line per launch statement (when it returned,
// its duration, whether it claimed, the outcomes it wrote, and the slots, held rows and unwritten
// outcomes just before its result was handled), one per claim (rows it brought), and a summary
// of the slots sampled every millisecond: how often a slot stood free with no held row to start.
import { writeFileSync } from 'node:fs';

export function startTrace(runner, concurrency, file) {
  const lines = ['# ms since start | statement ms | claim | outcomes | starts | running | held | unwritten'];
  const begun = performance.now();
  const since = () => (performance.now() - begun).toFixed(1);
  runner.events.on('launch:statement', (event) => {
    const { running, held, unwritten } = runner.stats;
    lines.push(
      [
        since(),
        event.durationMs.toFixed(2),
        event.claim ? 1 : 0,
        event.outcomes,
        event.starts,
        running,
        held,
        unwritten,
      ].join(' '),
    );
  });
  runner.events.on('task:claimed', (event) => lines.push(`# ${since()} claimed ${event.ids.length}`));
  let samples = 0;
  let starved = 0;
  let busy = 0;
  const sampler = setInterval(() => {
    const { running, held, unwritten } = runner.stats;
    if (running === 0 && held === 0 && unwritten === 0) return; // no load: not counted
    samples++;
    if (running < concurrency && held === 0) starved++;
    if (running === concurrency) busy++;
  }, 1);
  sampler.unref();
  return {
    write() {
      clearInterval(sampler);
      const share = (n) => (samples === 0 ? '-' : `${((100 * n) / samples).toFixed(1)}%`);
      lines.push(
        `# samples ${samples}: every slot busy ${share(busy)}; a slot free with no held row ${share(starved)}`,
      );
      writeFileSync(file, lines.join('\n') + '\n');
    },
  };
}
