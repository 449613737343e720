// Preloaded into a member by `npm run bench:profile -- --heap` (node --require): the first
// SIGUSR2 starts V8's sampling heap profiler, counting objects the garbage collector has already
// freed too (node --heap-prof keeps only those still alive, which hides an allocation rate); the
// second stops it and writes heap-<pid>.json (the DevTools protocol's SamplingHeapProfile) into
// QKV_HEAP_PROFILE_DIR.
const inspector = require('node:inspector');
const { writeFileSync } = require('node:fs');
const path = require('node:path');

const session = new inspector.Session();
session.connect();
let sampling = false;
process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return;
  }
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) throw err;
    const file = path.join(process.env.QKV_HEAP_PROFILE_DIR, `heap-${process.pid}.json`);
    writeFileSync(file, JSON.stringify(result.profile));
  });
});
