import { createInProcessBus } from './bus';
import { EVENT_TYPES, LadingEvent } from './event-types';

function event(id: string): LadingEvent {
  return {
    specversion: '1.0',
    id,
    source: '//test',
    type: EVENT_TYPES.blobUploaded,
    subject: 'repo@sha256:x',
    time: new Date(0).toISOString(),
    datacontenttype: 'application/json',
    partitionkey: 'repo',
    sequence: id.padStart(20, '0'),
    data: {
      repository: 'repo',
      namespace: '',
      digest: null,
      mediaType: null,
      artifactType: null,
      size: null,
      tag: null,
      previousDigest: null,
      references: [],
      subject: null,
      fromRepository: null,
      proxy: null,
      actor: { name: null, type: 'anonymous' },
      request: null,
    },
  };
}

describe('createInProcessBus', () => {
  it('delivers every event to every handler in publish order, across batches', async () => {
    const bus = createInProcessBus();
    const a: string[] = [];
    const b: string[] = [];
    await bus.subscribe(async (e) => {
      a.push(e.id);
    });
    await bus.subscribe((e) => {
      b.push(e.id);
    });
    await bus.publish([event('1'), event('2')]);
    await bus.publish([event('3')]);
    await bus.close();
    expect(a).toEqual(['1', '2', '3']);
    expect(b).toEqual(['1', '2', '3']);
  });

  it('hands each published batch whole to a batch handler, after the event handlers, and reports a failed batch once', async () => {
    const errors: Array<[string, string]> = [];
    const bus = createInProcessBus((err, e) => errors.push([(err as Error).message, e.id]));
    const order: string[] = [];
    await bus.subscribe((e) => {
      order.push(`event ${e.id}`);
    });
    await bus.subscribeBatches!((events) => {
      order.push(`batch ${events.map((e) => e.id).join(',')}`);
      if (events.length === 1) throw new Error('refused');
    });
    await bus.publish([event('1'), event('2')]);
    await bus.publish([event('3')]);
    await bus.close();
    expect(order).toEqual(['event 1', 'event 2', 'batch 1,2', 'event 3', 'batch 3']);
    expect(errors).toEqual([['refused', '3']]);
  });

  it('reports a handler error and still delivers that event and later ones to the other handlers', async () => {
    const reported: Array<[string, string]> = [];
    const bus = createInProcessBus((err, e) => reported.push([(err as Error).message, e.id]));
    const delivered: string[] = [];
    await bus.subscribe(() => {
      throw new Error('handler broke');
    });
    await bus.subscribe(async (e) => {
      delivered.push(e.id);
    });
    await bus.publish([event('1'), event('2')]);
    await bus.close();
    expect(delivered).toEqual(['1', '2']);
    expect(reported).toEqual([
      ['handler broke', '1'],
      ['handler broke', '2'],
    ]);
  });

  it('keeps delivering after a handler rejects asynchronously', async () => {
    const bus = createInProcessBus();
    const delivered: string[] = [];
    await bus.subscribe(async () => Promise.reject(new Error('async failure')));
    await bus.subscribe((e) => {
      delivered.push(e.id);
    });
    await bus.publish([event('1')]);
    await bus.publish([event('2')]);
    await bus.close();
    expect(delivered).toEqual(['1', '2']);
  });

  it('stops delivering to a handler once it unsubscribed', async () => {
    const bus = createInProcessBus();
    const delivered: string[] = [];
    let firstDelivered!: () => void;
    const first = new Promise<void>((resolve) => (firstDelivered = resolve));
    const unsubscribe = await bus.subscribe((e) => {
      delivered.push(e.id);
      firstDelivered();
    });
    await bus.publish([event('1')]);
    await first;
    await unsubscribe();
    await bus.publish([event('2')]);
    await bus.close();
    expect(delivered).toEqual(['1']);
  });

  it('does not let a later change to the published array alter what is delivered', async () => {
    const bus = createInProcessBus();
    const delivered: string[] = [];
    await bus.subscribe((e) => {
      delivered.push(e.id);
    });
    const batch = [event('1')];
    await bus.publish(batch);
    batch.push(event('2'));
    await bus.close();
    expect(delivered).toEqual(['1']);
  });

  it('runs handlers only after publish has resolved, as its TSDoc promises', async () => {
    const bus = createInProcessBus();
    let publishResolved = false;
    let resolvedWhenHandled: boolean | undefined;
    await bus.subscribe(() => {
      resolvedWhenHandled = publishResolved;
    });
    await bus.publish([event('1')]).then(() => {
      publishResolved = true;
    });
    await bus.close();
    expect(resolvedWhenHandled).toBe(true);
  });
});
