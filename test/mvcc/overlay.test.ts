import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { curKey, evtKey, grantKey, histKey, REC_PUT, tableEnd, tableStart, T_CUR, T_EVT, T_HIST } from '../../src/mvcc/keys.js';
import { Overlay } from '../../src/mvcc/overlay.js';
import { b } from './helpers.js';

/** Replays writeTo into a map, as a LevelDB batch applies its ops: in order, the last one wins. */
function written(o: Overlay): Map<string, string | null> {
  const m = new Map<string, string | null>();
  o.writeTo({
    put: (k, v) => m.set(k.toString('hex'), v.toString('hex')),
    del: (k) => m.set(k.toString('hex'), null),
  });
  return m;
}

// Keys of every table the overlay treats differently: indexed (CURRENT, GRANTS) and logged
// until a read needs them (HISTORY, EVENTS).
const KEYS = [curKey(b('a')), curKey(b('b')), histKey(b('a'), 5, 0, REC_PUT), histKey(b('a'), 4, 1, REC_PUT), evtKey(5, 0), evtKey(6, 2), grantKey(3)];

describe('Overlay', () => {
  it('reads and writes the last write of each key, whatever the mix of writes and reads', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), k: fc.nat(KEYS.length - 1), v: fc.nat(9) }),
      fc.record({ kind: fc.constant('del' as const), k: fc.nat(KEYS.length - 1) }),
      fc.record({ kind: fc.constant('lookup' as const), k: fc.nat(KEYS.length - 1) }),
      fc.record({ kind: fc.constantFrom('rangeHist' as const, 'rangeEvt' as const, 'rangeCur' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const o = new Overlay();
        const model = new Map<string, string | null>(); // hex key -> hex value / null
        const hex = (x: Buffer): string => x.toString('hex');
        for (const x of ops) {
          if (x.kind === 'put') {
            const v = b(`v${x.v}`);
            o.put(KEYS[x.k]!, v);
            model.set(hex(KEYS[x.k]!), hex(v));
          } else if (x.kind === 'del') {
            o.del(KEYS[x.k]!);
            model.set(hex(KEYS[x.k]!), null);
          } else if (x.kind === 'lookup') {
            const got = o.lookup(KEYS[x.k]!);
            const want = model.get(hex(KEYS[x.k]!));
            expect(got === undefined || got === null ? got : hex(got)).toBe(want);
          } else {
            const t = x.kind === 'rangeHist' ? T_HIST : x.kind === 'rangeEvt' ? T_EVT : T_CUR;
            const got = o.range(tableStart(t), tableEnd(t)).map((e) => [hex(e.key), e.value === null ? null : hex(e.value)]);
            const want = [...model].filter(([k]) => Buffer.from(k, 'hex')[0] === t).sort(([p], [q]) => (p < q ? -1 : p > q ? 1 : 0));
            expect(got).toEqual(want);
          }
        }
        expect(written(o)).toEqual(model);
      }),
    );
  });
});
