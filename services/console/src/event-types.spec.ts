import { readdirSync } from 'node:fs';
import path from 'node:path';
import { FEED_EVENT_TYPES, describeEventType } from './event-types';

describe('the live feed event types', () => {
  it("are exactly the repository event types of the published schemas (docs/events), so the feed misses none", () => {
    // Audit events (io.lading.audit.*) are published under the partition key _audit, no repository anyone may pull:
    // the live feed never carries them.
    const published = readdirSync(path.join(__dirname, '..', '..', '..', 'docs', 'events'))
      .filter((file) => file.startsWith('io.lading.') && !file.startsWith('io.lading.audit.'))
      .map((file) => file.replace(/\.schema\.json$/, ''));
    expect([...FEED_EVENT_TYPES].sort()).toEqual(published.sort());
  });

  it('read as noun and verb', () => {
    expect(describeEventType('io.lading.manifest.pushed')).toBe('manifest pushed');
  });
});
