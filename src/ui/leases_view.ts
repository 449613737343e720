/// <reference lib="dom" />
/** The leases view: every lease with its remaining and granted TTL and its key count, read every 2 s while shown. */
import type { V1LeaseResponse, V1LeasesResponse } from '../api/v1.js';
import { byId, errorText, getJson, h } from './dom.js';

const REFRESH_MS = 2000;
/** Leases whose TTLs are read per refresh at most. */
const MAX_SHOWN = 100;

export function startLeasesView(isShown: () => boolean): void {
  const refresh = async (): Promise<void> => {
    if (isShown()) {
      const note = byId('lease-note');
      try {
        const { leases } = await getJson<V1LeasesResponse>('/v1/leases');
        const shown = leases.slice(0, MAX_SHOWN);
        const details = await Promise.all(shown.map((l) => getJson<V1LeaseResponse>(`/v1/lease/${l.id}?keys`).catch(() => undefined)));
        byId('lease-rows').replaceChildren(
          ...shown.map((l, i) => {
            const d = details[i];
            return h(
              'tr',
              { 'data-lease': l.id_hex },
              h('td', {}, `0x${l.id_hex}`),
              h('td', { class: 'num', 'data-field': 'ttl' }, d ? String(d.ttl) : 'expired'),
              h('td', { class: 'num' }, d ? String(d.granted_ttl) : ''),
              h('td', { class: 'num' }, d ? String(d.keys.length) : ''),
            );
          }),
        );
        note.textContent = leases.length > MAX_SHOWN ? `showing ${MAX_SHOWN} of ${leases.length} leases` : `${leases.length} leases`;
      } catch (err) {
        note.textContent = `reading the leases failed: ${errorText(err)}`;
      }
    }
    setTimeout(() => void refresh(), REFRESH_MS);
  };
  void refresh();
}
